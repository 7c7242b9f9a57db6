#!/usr/bin/env python3
"""Store throughput: panal next to Redis, same machine, same run.

The server pinned to CPU 1 (a panal node with one scheduler thread running a
server and a data process; redis-server), the client pinned to CPU 0
(bench/client_bench.cc over panal's TCP client; redis-benchmark with one
connection). SET and GET of 16-byte keys with 32-byte values, one at a time
(pipeline 1) and 64 in flight (pipeline 64). The two stores alternate; each
figure is the median of ROUNDS runs, each after the machine is idle.

  bench/store_bench.py BUILD_DIR [--rounds 3]
"""
import argparse
import statistics
import subprocess
from pathlib import Path

from bench_util import free_port, redis_server, wait_idle






def panal_run(build, op, n, pipeline):
    port = free_port()
    name = f"bench@127.0.0.1:{port}"
    node = subprocess.Popen(["taskset", "-c", "1", str(build / "panal_test_node"), "--name", name, "--cookie", "bench",
                             "--threads", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    try:
        assert node.stdout.readline().startswith("ready")
        for cmd in ("server db", "data db 1"):
            node.stdin.write(cmd + "\n")
            node.stdin.flush()
            assert node.stdout.readline().startswith("ok")
        client = [str(build / "client_bench"), f"127.0.0.1:{port}", "db"]
        if op == "get":  # something to read
            subprocess.run(["taskset", "-c", "0", *client, "set", str(n), "64"], check=True, capture_output=True)
        out = subprocess.run(["taskset", "-c", "0", *client, op, str(n), str(pipeline)], check=True,
                             capture_output=True, text=True, timeout=600)
        return float(out.stdout.strip())
    finally:
        node.kill()
        node.wait()


def redis_run(op, n, pipeline):
    with redis_server() as port:
        out = subprocess.run(["taskset", "-c", "0", "redis-benchmark", "-p", str(port), "-t", op, "-n", str(n),
                              "-P", str(pipeline), "-c", "1", "-d", "32", "-r", "1000000", "--csv", "-q"],
                             check=True, capture_output=True, text=True, timeout=600).stdout
        # "SET","123.45",...  (first data line)
        line = [l for l in out.splitlines() if l.startswith('"' + op.upper())][0]
        return float(line.split(",")[1].strip('"'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cases = (("set", 20000, 1), ("get", 20000, 1), ("set", 200000, 64), ("get", 200000, 64))
    print(f"{'op':>4} {'pipeline':>8} {'panal ops/s':>12} {'Redis ops/s':>12} {'panal/Redis':>11}   runs panal | Redis")
    for op, n, pipeline in cases:
        p_runs, r_runs = [], []
        for _ in range(args.rounds):
            wait_idle()
            p_runs.append(panal_run(args.build, op, n, pipeline))
            wait_idle()
            r_runs.append(redis_run(op, n, pipeline))
        p, r = statistics.median(p_runs), statistics.median(r_runs)
        print(f"{op:>4} {pipeline:>8} {p:>12,.0f} {r:>12,.0f} {p / r:>11.2f}   "
              f"{[round(x) for x in p_runs]} | {[round(x) for x in r_runs]}")


if __name__ == "__main__":
    main()
