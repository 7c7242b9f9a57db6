#!/usr/bin/env python3
"""Python clients: panal.connect next to redis-py (with hiredis), same run.

The server is pinned to CPU 1 (a panal node with one scheduler thread and
one data process; redis-server), this Python process to CPU 0. 16-byte str
keys, 32-character str values. Cases: mset and mget of 100 keys per call,
and sequential set and get, one call at a time. Each figure is the median
of ROUNDS alternating runs (keys per second).

  .venv/bin/python bench/python_bench.py BUILD_DIR [--rounds 3] [--node-args "--spin-us 0"]
"""
import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import panal
import redis

from bench_util import free_port, node_env, redis_server, wait_idle

BATCHES, SEQUENTIAL = 500, 20_000


def keys(n, prefix):
    return [f"{prefix}:{i:010d}"[:16].ljust(16, "k") for i in range(n)]


def run(client, kind):
    value = "v" * 32
    t0 = time.perf_counter()
    if kind == "mset":
        for b in range(BATCHES):
            client.mset({k: value for k in keys(100, f"b{b}")})
        n = BATCHES * 100
    elif kind == "mget":
        for b in range(BATCHES):
            client.mget(keys(100, f"b{b}"))
        n = BATCHES * 100
    elif kind == "pipe":
        # 50 sets and 50 gets of other keys, interleaved, in one pipeline
        # (redis-py: transaction=False, the same round trip without MULTI).
        for b in range(BATCHES):
            ks = keys(100, f"p{b}")
            p = client.pipeline(transaction=False) if isinstance(client, redis.Redis) else client.pipeline()
            for i in range(0, 100, 2):
                p.set(ks[i], value)
                p.get(ks[i + 1])
            p.execute()
        n = BATCHES * 100
    elif kind == "set":
        for k in keys(SEQUENTIAL, "s"):
            client.set(k, value)
        n = SEQUENTIAL
    else:
        for k in keys(SEQUENTIAL, "s"):
            client.get(k)
        n = SEQUENTIAL
    return n / (time.perf_counter() - t0)


def panal_round(build, kinds, node_args=()):
    port = free_port()
    node = subprocess.Popen(["taskset", "-c", "1", str(build / "panal_test_node"), "--name",
                             f"pybench@127.0.0.1:{port}", "--cookie", "bench", "--threads", "1", *node_args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            bufsize=1, env=node_env())
    try:
        assert node.stdout.readline().startswith("ready")
        for cmd in ("server db replicas=1", "data db 1"):
            node.stdin.write(cmd + "\n")
            node.stdin.flush()
            assert node.stdout.readline().startswith("ok")
        client = panal.connect(f"127.0.0.1:{port}", db="db", timeout=30)
        client.set("warm", 1)  # the first map has arrived
        return {k: run(client, k) for k in kinds}
    finally:
        node.kill()
        node.wait()


def redis_round(kinds):
    with redis_server() as port:
        client = redis.Redis(port=port)
        return {k: run(client, k) for k in kinds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the medians there (bench/issue_table.py reads them)")
    ap.add_argument("--node-args", default="", help="extra panal_test_node options, e.g. '--spin-us 0'")
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    kinds = ("mset", "mget", "pipe", "set", "get")
    p_runs, r_runs = [], []
    for _ in range(args.rounds):
        wait_idle()
        p_runs.append(panal_round(args.build, kinds, args.node_args.split()))
        wait_idle()
        r_runs.append(redis_round(kinds))
    parser = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "python"
    print(f"Python clients (keys/s), server on CPU 1, client on CPU 0; redis-py {redis.__version__} ({parser} parser)")
    print(f"{'case':>14} {'panal':>10} {'redis-py':>10} {'ratio':>6}")
    names = {"mset": "mset of 100", "mget": "mget of 100", "pipe": "pipeline of 100", "set": "set, one by one",
             "get": "get, one by one"}
    results = {}
    for k in kinds:
        p = statistics.median(r[k] for r in p_runs)
        r = statistics.median(x[k] for x in r_runs)
        print(f"{names[k]:>14} {p:>10,.0f} {r:>10,.0f} {p / r:>6.2f}")
        results[k] = {"panal": p, "redis": r, "ratio": p / r,
                      "panal_runs": [x[k] for x in p_runs], "redis_runs": [x[k] for x in r_runs]}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
