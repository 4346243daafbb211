#!/usr/bin/env python3
"""plugp100 6.0.2's TPAP client against a plug, for the TPAP interop gate and
examples/tpap_bench.rs.

usage: plugp100_tpap.py MODE HOST:PORT USERNAME PASSWORD [N]

  info      one session: get_device_info; prints {"model", "device_on", "nickname"}
  set on|off (MODE is "on" or "off"): switch, read back; prints the state read
  cycle     N verified on/off cycles on one session (survives session expiry)
  refused   expects the login to be refused; prints the error and exits 0
  bench     session setup + one get_device_info, N times, then N requests on
            one session; prints `plugp100 <what> n=N wall_us=X cpu_us=Y` lines
            (cpu: time.process_time(), the whole Python process)

Every line printed is JSON except bench's. Exit status 1 on any failure.
"""

import asyncio
import json
import sys
import time

import aiohttp

from plugp100.api.protocol.tpap import TpapProtocol
from plugp100.api.requests.tapo_request import TapoRequest
from plugp100.common.credentials import AuthCredential


def fail(msg):
    print(f"plugp100_tpap: {msg}", file=sys.stderr)
    sys.exit(1)


async def call(proto, request):
    result = await proto.send_request(request)
    if not result.is_success():
        raise RuntimeError(f"{request.method}: {result.error()!r}")
    return result.get().result


async def info(proto):
    r = await call(proto, TapoRequest.get_device_info())
    return {"model": r.get("model"), "device_on": r.get("device_on"), "nickname": r.get("nickname")}


async def switch(proto, on):
    await call(proto, TapoRequest.set_device_info({"device_on": on}))
    got = await info(proto)
    if got["device_on"] != on:
        fail(f"asked for {on}, read back {got['device_on']}")
    return got


async def main():
    if len(sys.argv) < 5:
        fail(__doc__)
    mode, addr, user, password = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    cred = AuthCredential(user, password)
    url = f"http://{addr}"
    async with aiohttp.ClientSession() as http:
        proto = TpapProtocol(cred, url, http)
        try:
            if mode == "info":
                print(json.dumps(await info(proto)))
            elif mode in ("on", "off"):
                print(json.dumps(await switch(proto, mode == "on")))
            elif mode == "cycle":
                for i in range(n):
                    await switch(proto, True)
                    await switch(proto, False)
                print(json.dumps({"cycles": n}))
            elif mode == "refused":
                try:
                    await info(proto)
                except Exception as e:  # noqa: BLE001 - any refusal is what we want
                    print(json.dumps({"refused": type(e).__name__, "error": str(e)}))
                    return
                fail("the login was accepted")
            elif mode == "bench":
                await info(proto)  # warm-up: imports, first connection
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(n):
                    await proto.reset()
                    await info(proto)
                wall = (time.perf_counter() - wall0) * 1e6 / n
                cpu = (time.process_time() - cpu0) * 1e6 / n
                print(f"plugp100 {'session setup + 1 request':<38} n={n:<6} wall_us={wall:>9.1f} cpu_us={cpu:>9.1f}")
                m = n * 10
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(m):
                    await info(proto)
                wall = (time.perf_counter() - wall0) * 1e6 / m
                cpu = (time.process_time() - cpu0) * 1e6 / m
                print(f"plugp100 {'request round trip (get_device_info)':<38} n={m:<6} wall_us={wall:>9.1f} cpu_us={cpu:>9.1f}")
            else:
                fail(f"unknown mode {mode}")
        finally:
            await proto.close()


asyncio.run(main())
