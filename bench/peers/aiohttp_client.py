#!/usr/bin/env python3
"""Peer of bench_http_client: aiohttp's client as an asyncio service would use it, --conns
coroutines each sending GET --url again and again for --seconds through one ClientSession
whose TCPConnector keeps up to --conns keep-alive connections, each body read whole. Prints
"requests N seconds S errors E"; bench_http_client measures the process's CPU.

    aiohttp_client.py --url URL [--conns N] [--seconds S] [--ca FILE]
"""
import argparse
import asyncio
import ssl
import sys
import time

import aiohttp


async def main(a):
    ctx = ssl.create_default_context(cafile=a.ca) if a.ca else None
    conn = aiohttp.TCPConnector(limit=a.conns, limit_per_host=a.conns, ssl=ctx)
    counts = {"requests": 0, "errors": 0}
    end = time.monotonic() + a.seconds

    async def load(session):
        while time.monotonic() < end:
            try:
                async with session.get(a.url) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"status {r.status}")
                counts["requests"] += 1
            except Exception as e:  # noqa: BLE001 - counted and reported once
                counts["errors"] += 1
                if counts["errors"] == 1:
                    print(f"aiohttp_client: first error: {e!r}", file=sys.stderr)
                await asyncio.sleep(0.001)

    start = time.monotonic()
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(load(session) for _ in range(a.conns)))
    took = time.monotonic() - start
    print(f"requests {counts['requests']} seconds {took:.3f} errors {counts['errors']}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--ca")
    asyncio.run(main(p.parse_args()))
