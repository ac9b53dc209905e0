#!/usr/bin/env python3
"""Peer of bench_submit: asyncio.run_coroutine_threadsafe from a foreign thread.

A loop thread runs run_forever(); the main thread submits n coroutines
`async def f(i): return i`, then collects every .result() (throughput), and then does
`rt` one-at-a-time submit + .result() round trips. Prints one JSON line.
With --uvloop the loop is uvloop's (exit status 3 if uvloop is not importable).
"""
import argparse
import asyncio
import json
import sys
import threading
import time


async def f(i):
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--rt", type=int, default=2000)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()

    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit(3)
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    # Warm-up: the first submissions pay for imports and allocations.
    for i in range(1000):
        asyncio.run_coroutine_threadsafe(f(i), loop).result()

    t0 = time.perf_counter_ns()
    c0 = time.process_time_ns()
    futs = [asyncio.run_coroutine_threadsafe(f(i), loop) for i in range(args.n)]
    for i, fut in enumerate(futs):
        if fut.result() != i:
            sys.exit("wrong result")
    t1 = time.perf_counter_ns()
    c1 = time.process_time_ns()

    t2 = time.perf_counter_ns()
    c2 = time.process_time_ns()
    for i in range(args.rt):
        if asyncio.run_coroutine_threadsafe(f(i), loop).result() != i:
            sys.exit("wrong result")
    t3 = time.perf_counter_ns()
    c3 = time.process_time_ns()

    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
    print(json.dumps({
        "loop": "uvloop" if args.uvloop else "asyncio",
        "submit_per_s": args.n * 1e9 / (t1 - t0),
        "submit_cpu_ns": (c1 - c0) / args.n,
        "rt_us": (t3 - t2) / 1e3 / args.rt,
        "rt_cpu_us": (c3 - c2) / 1e3 / args.rt,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
