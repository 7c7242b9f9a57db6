#!/usr/bin/env python3
"""A/B of two builds of the test node (or of one build with two sets of node
options) on the store benchmark's cases: alternating, after the idle wait,
server CPU 1, load generator CPU 0.

Usage: bench/ab_bench.py BUILD_A BUILD_B [--rounds 3] [--requests 1000000] [--ops set,get]
                         [-c 50] [-P 16] [--a-args "--spin-us 0"] [--b-args ...] [--redis] [--nodes 2]
(each BUILD holds a panal_test_node; the load generator is built into it if missing)
"""
import argparse
import statistics
from pathlib import Path

import store_bench as sb
from bench_util import wait_idle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--ops", default="set,get")
    ap.add_argument("-c", type=int, default=50, help="connections")
    ap.add_argument("-P", type=int, default=16, help="requests in flight per connection")
    ap.add_argument("--a-args", default="", help="extra panal_test_node options for A")
    ap.add_argument("--b-args", default="", help="extra panal_test_node options for B")
    ap.add_argument("--redis", action="store_true", help="also run redis-server as a third arm (R)")
    ap.add_argument("--nodes", type=int, default=1, help="panal nodes (2: the load generator routes, --route)")
    args = ap.parse_args()
    builds = {"A": args.a, "B": args.b}
    node_args = {"A": args.a_args.split(), "B": args.b_args.split()}
    print(f"A = {args.a} {args.a_args}, B = {args.b} {args.b_args}; {args.c} x {args.P}, {args.requests:,} requests, "
          f"medians of {args.rounds} alternating rounds")
    for op in args.ops.split(","):
        arms = [*builds, "R"] if args.redis else list(builds)
        res = {k: [] for k in arms}
        for _ in range(args.rounds):
            for name in arms:
                wait_idle()
                if name == "R":
                    x = sb.run_redis(args.a, ["-t", op, "-c", args.c, "-P", args.P, "-n", args.requests])
                    res[name].append((float(x["ops_per_s"]), x["cpu_us"], float(x["p99_us"])))
                    continue
                build = builds[name]
                x = sb.run_panal(build, ["-t", op, "-c", args.c, "-P", args.P, "-n", args.requests,
                                         *(["--route"] if args.nodes > 1 else [])],
                                 nodes=args.nodes, node_args=node_args[name])
                res[name].append((float(x["ops_per_s"]), x["cpu_us"], float(x["p99_us"])))
        med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in res.items()}
        for k in arms:
            print(f"{op} {k}: {med[k][0]:>10,.0f} ops/s  {med[k][1]:.2f} us CPU/req  p99 {med[k][2]:,.0f} us  "
                  f"runs {[round(r[0]) for r in res[k]]}")
        print(f"{op} B / A: {med['B'][0] / med['A'][0]:.2f}")
        if args.redis:
            print(f"{op} A / R: {med['A'][0] / med['R'][0]:.2f}, B / R: {med['B'][0] / med['R'][0]:.2f}")


if __name__ == "__main__":
    main()
