#!/usr/bin/env python3
"""python-kasa's CPU per verified on/off cycle, to set beside examples/plug_bench.rs.

usage: pykasa_bench.py HOST:PORT CYCLES

A cycle is what plug_bench does: set on, read sysinfo back, check; set off, read
back, check; one kept-open connection, no sleeps. Two ways are measured:
`protocol` sends exactly the four requests plug_bench sends (IotProtocol.query),
`device` uses the device API (turn_on/turn_off + update()). The last line is
`cycles=N wall_s=X cpu_s=Y` for the protocol way (time.process_time()).
"""

import asyncio
import sys
import time

from kasa import DeviceConfig
from kasa.iot import IotPlug

SYSINFO = {"system": {"get_sysinfo": {}}}


def relay(on):
    return {"system": {"set_relay_state": {"state": 1 if on else 0}}}


async def protocol_cycle(plug):
    for on in (True, False):
        await plug.protocol.query(relay(on))
        info = await plug.protocol.query(SYSINFO)
        if bool(info["system"]["get_sysinfo"]["relay_state"]) != on:
            raise SystemExit(f"state mismatch: wanted {on}")


async def device_cycle(plug):
    for on in (True, False):
        await (plug.turn_on() if on else plug.turn_off())
        await plug.update()
        if plug.is_on != on:
            raise SystemExit(f"state mismatch: wanted {on}")


async def measure(plug, cycle, n):
    await cycle(plug)  # warm-up: connect, first update
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await cycle(plug)
    return time.perf_counter() - wall0, time.process_time() - cpu0


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    plug = IotPlug(host, config=DeviceConfig(host=host, port_override=int(port), timeout=5))
    await plug.update()
    dwall, dcpu = await measure(plug, device_cycle, n)
    print(f"device: cycles={n} wall_s={dwall:.4f} cpu_s={dcpu:.4f} cpu_ms_per_cycle={dcpu / n * 1e3:.4f}")
    wall, cpu = await measure(plug, protocol_cycle, n)
    print(f"protocol: cpu_ms_per_cycle={cpu / n * 1e3:.4f} wall_ms_per_cycle={wall / n * 1e3:.4f}")
    await plug.disconnect()
    print(f"cycles={n} wall_s={wall:.4f} cpu_s={cpu:.4f}")


if __name__ == "__main__":
    asyncio.run(main())
