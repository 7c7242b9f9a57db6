#!/usr/bin/env python3
"""The ceiling of 50 connections x 1 request in flight on this machine.

The store benchmark's load generator (bench/loadgen.c, CPU 0) drives, in
turn: a server that does nothing but answer every SET (bench/floor_server.c,
with epoll as Redis does, and with io_uring where liburing is installed),
redis-server and a panal node, each on CPU 1; alternating, after the idle
wait. For each: ops/s, the server's CPU per request, and the share of its
CPU the load generator used. When the load generator uses its whole CPU
for all of them, the figure is its ceiling, not the servers'.

  bench/floor_bench.py BUILD_DIR [--rounds 3] [--requests 300000]
"""
import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

import store_bench as sb
from bench_util import free_port, redis_server, wait_idle

HERE = Path(__file__).resolve().parent


def floor_binary(build):
    """The floor server, with io_uring if liburing links; (path, modes)."""
    binary = build / "floor_server"
    source = HERE / "floor_server.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        with_uring = subprocess.run(["cc", "-O2", "-DWITH_URING", "-o", str(binary), str(source), "-luring"],
                                    capture_output=True)
        if with_uring.returncode != 0:
            subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    modes = subprocess.run([str(binary), "--modes"], capture_output=True, text=True, timeout=10).stdout.split()
    return binary, modes


def drive(build, port, args, server_pid, redis=False):
    """Runs the load generator; adds server CPU per request and its own CPU share."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = sb.cpu_seconds(server_pid)
    t0 = time.monotonic()
    r = sb.loadgen(build, [port], args, redis=redis)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    r["cpu_us"] = (sb.cpu_seconds(server_pid) - cpu0) * 1e6 / int(r["ops"])
    r["loadgen_share"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall
    return r


def run_floor(build, binary, mode, args):
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", "1", str(binary), str(port), mode], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("ready")
        return drive(build, port, args, p.pid, redis=True)
    finally:
        p.kill()
        p.wait()


def run_redis(build, args):
    with redis_server() as port:
        pid = int(subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True,
                                 text=True).stdout.split("process_id:")[1].split()[0])
        return drive(build, port, args, pid, redis=True)


def run_panal(build, args):
    n = sb.PanalNodes(build, 1)
    try:
        return drive(build, n.ports[0], args, n.procs[0].pid)
    finally:
        n.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300_000)
    args = ap.parse_args()
    binary, modes = floor_binary(args.build)
    load = ["-t", "set", "-c", 50, "-P", 1, "-n", args.requests]
    arms = {f"floor ({m})": (lambda m=m: run_floor(args.build, binary, m, load)) for m in modes}
    arms["redis-server"] = lambda: run_redis(args.build, load)
    arms["panal"] = lambda: run_panal(args.build, load)
    runs = {k: [] for k in arms}
    for _ in range(args.rounds):
        for name, run in arms.items():
            wait_idle()
            runs[name].append(run())
    print(f"SET, 50 connections x 1 in flight, {args.requests:,} requests; server CPU 1, load generator CPU 0; "
          f"medians of {args.rounds} alternating rounds")
    print(f"{'server':>14} {'ops/s':>9} {'server us/req':>14} {'loadgen CPU':>12}   runs")
    for name, rs in runs.items():
        ops = statistics.median(float(r["ops_per_s"]) for r in rs)
        cpu = statistics.median(r["cpu_us"] for r in rs)
        share = statistics.median(r["loadgen_share"] for r in rs)
        print(f"{name:>14} {ops:>9,.0f} {cpu:>14.2f} {share:>11.0%}   {[round(float(r['ops_per_s'])) for r in rs]}")


if __name__ == "__main__":
    main()
