#!/usr/bin/env python3
"""python-kasa's CPU per verified on/off cycle, to set beside examples/plug_bench.rs.

usage: pykasa_bench.py HOST:PORT CYCLES [--klap USERNAME PASSWORD]

With --klap, the device is a SMART plug over KLAP v2 (a simulated P110, the
same one examples/klap_bench.rs measures): a cycle is set_device_info on,
get_device_info, set_device_info off, get_device_info on one session, and
the session setup (handshake1 + handshake2) is measured apart.

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


async def smart_cycle(plug):
    for on in (True, False):
        await plug.protocol.query({"set_device_info": {"device_on": on}})
        info = await plug.protocol.query({"get_device_info": None})
        if info["get_device_info"]["device_on"] != on:
            raise SystemExit(f"state mismatch: wanted {on}")


async def klap(host, port, n, username, password):
    from kasa import (
        Credentials,
        Device,
        DeviceConnectionParameters,
        DeviceEncryptionType,
        DeviceFamily,
    )

    def config():
        return DeviceConfig(
            host=host,
            port_override=port,
            timeout=5,
            credentials=Credentials(username, password),
            connection_type=DeviceConnectionParameters(
                DeviceFamily.SmartTapoPlug, DeviceEncryptionType.Klap, login_version=2
            ),
        )

    plug = await Device.connect(config=config())
    wall, cpu = await measure(plug, smart_cycle, n)
    print(f"klap: cpu_ms_per_cycle={cpu / n * 1e3:.4f} wall_ms_per_cycle={wall / n * 1e3:.4f}")
    await plug.disconnect()
    # The session setup alone: a fresh transport's first request minus a
    # request on an open session.
    rounds = max(10, n // 20)
    cpu0 = time.process_time()
    for _ in range(rounds):
        fresh = await Device.connect(config=config())
        await fresh.disconnect()
    first = (time.process_time() - cpu0) / rounds
    cpu0 = time.process_time()
    for _ in range(rounds):
        await plug.protocol.query({"get_device_info": None})
    again = (time.process_time() - cpu0) / rounds
    print(f"klap: connect_and_first_update_cpu_ms={(first - again) * 1e3:.4f} request_cpu_ms={again * 1e3:.4f}")
    print(f"cycles={n} wall_s={wall:.4f} cpu_s={cpu:.4f}")


async def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    if len(sys.argv) == 6 and sys.argv[3] == "--klap":
        await klap(host, int(port), n, sys.argv[4], sys.argv[5])
        return
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
