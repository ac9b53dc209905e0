#!/usr/bin/env python3
"""The redis-py baseline of bench_redis_client: redis.asyncio (python3-redis) on one event
loop, GET or SET of -d bytes over keys "key:%012d" of a keyspace, until killed or --seconds
pass. --tasks N: N tasks each one command at a time over a pool of N connections (the same
concurrency as redis-benchmark -c N); --pipeline N: one task sending pipelines of N
(transaction=False). The script measures the window (CPU from /proc, the server's count).
  redis_asyncio.py --port P [--tasks N | --pipeline N] [--cmd get|set] [--keyspace K]
                   [--datasize D] [--seconds S]
"""
import argparse
import asyncio
import random
import signal
import sys
import time

try:
    import redis.asyncio as aioredis
except ImportError:
    print("redis_asyncio.py: needs python3-redis (redis.asyncio)", file=sys.stderr)
    sys.exit(77)


async def main(a):
    pool = aioredis.ConnectionPool(host="127.0.0.1", port=a.port,
                                   max_connections=max(a.tasks, 1))
    r = aioredis.Redis(connection_pool=pool)
    value = b"x" * a.datasize
    end = time.monotonic() + a.seconds
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    done = 0

    async def one_at_a_time(seed):
        nonlocal done
        rnd = random.Random(seed)
        while not stop.is_set() and time.monotonic() < end:
            key = "key:%012d" % rnd.randrange(a.keyspace)
            if a.cmd == "set":
                await r.set(key, value)
            else:
                await r.get(key)
            done += 1

    async def pipelined():
        nonlocal done
        rnd = random.Random(1)
        while not stop.is_set() and time.monotonic() < end:
            p = r.pipeline(transaction=False)
            for _ in range(a.pipeline):
                key = "key:%012d" % rnd.randrange(a.keyspace)
                if a.cmd == "set":
                    p.set(key, value)
                else:
                    p.get(key)
            await p.execute()
            done += a.pipeline

    if a.pipeline:
        await pipelined()
    else:
        await asyncio.gather(*(one_at_a_time(i) for i in range(a.tasks)))
    print("redis_asyncio: ops=%d" % done)
    await pool.disconnect()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=0)
    ap.add_argument("--cmd", default="get")
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--datasize", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3600)
    asyncio.run(main(ap.parse_args()))
