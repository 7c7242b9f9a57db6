#!/usr/bin/env python3
"""A/B of two builds of the test node on the store benchmark's 50 x 16 cases:
alternating, after the idle wait, server CPU 1, load generator CPU 0.

Usage: bench/ab_bench.py BUILD_A BUILD_B [--rounds 3] [--requests 1000000] [--ops set,get]
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
    args = ap.parse_args()
    builds = {"A": args.a, "B": args.b}
    print(f"A = {args.a}, B = {args.b}; 50 x 16, {args.requests:,} requests, medians of {args.rounds} alternating rounds")
    for op in args.ops.split(","):
        res = {k: [] for k in builds}
        for _ in range(args.rounds):
            for name, build in builds.items():
                wait_idle()
                x = sb.run_panal(build, ["-t", op, "-c", 50, "-P", 16, "-n", args.requests])
                res[name].append((float(x["ops_per_s"]), x["cpu_us"], float(x["p99_us"])))
        med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in res.items()}
        for k in builds:
            print(f"{op} {k}: {med[k][0]:>10,.0f} ops/s  {med[k][1]:.2f} us CPU/req  p99 {med[k][2]:,.0f} us  "
                  f"runs {[round(r[0]) for r in res[k]]}")
        print(f"{op} B / A: {med['B'][0] / med['A'][0]:.2f}")


if __name__ == "__main__":
    main()
