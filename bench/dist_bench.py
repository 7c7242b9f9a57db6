#!/usr/bin/env python3
"""Remote round trips between two panal nodes on loopback, next to a minimal
C TCP ping-pong (the floor of this machine), measured in the same run.

Each side is pinned to its own CPU with taskset (client CPU 0, server CPU 1),
the two systems alternate, and each figure is the median of ROUNDS runs.

  bench/dist_bench.py BUILD_DIR [--rounds 3]
"""
import argparse
import os
import statistics
import subprocess
from pathlib import Path

from bench_util import TestNode, free_port, wait_idle

HERE = Path(__file__).resolve().parent






def panal_round_trips(binary, n, pairs):
    server = TestNode(binary, 1, "server")
    client = TestNode(binary, 0, "client")
    try:
        assert client.cmd(f"connect {server.name}") == "ok"
        client.cmd(f"ping {server.name} 1000 {pairs}")  # warm-up
        out = client.cmd(f"ping {server.name} {n} {pairs}")
        return int(out.split()[1])
    finally:
        client.stop()
        server.stop()


def c_round_trips(binary, n, pairs, msg, spin):
    port = free_port()
    env = dict(os.environ, SPIN="1" if spin else "0")
    server = subprocess.Popen(["taskset", "-c", "1", str(binary), "server", str(port), str(msg)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().strip() == "ready"
        out = subprocess.run(["taskset", "-c", "0", str(binary), "client", str(port), str(msg), str(n), str(pairs)],
                             capture_output=True, text=True, check=True, timeout=300, env=env)
        return int(out.stdout.strip())
    finally:
        server.kill()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    node_bin = args.build / "panal_test_node"
    c_bin = args.build / "tcp_pingpong"
    if not c_bin.exists():
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(c_bin), str(HERE / "tcp_pingpong.c")], check=True)
    # A panal round trip here carries about 40 bytes of frame each way.
    msg = 40
    # (pairs, round trips per pair, C busy-polls?): spinning 32 threads on one
    # CPU would measure contention, so 32 pairs compare with blocking C only.
    cases = ((1, 20000, False), (1, 20000, True), (32, 2000, False))
    results = []
    for pairs, n, spin in cases:
        p_runs, c_runs = [], []
        for _ in range(args.rounds):
            wait_idle()
            p_runs.append(panal_round_trips(node_bin, n, pairs))
            wait_idle()
            c_runs.append(c_round_trips(c_bin, n, pairs, msg, spin))
        results.append((pairs, "busy-poll" if spin else "blocking", statistics.median(p_runs),
                        statistics.median(c_runs), p_runs, c_runs))
    print(f"{'pairs':>5} {'C mode':>10} {'panal rt/s':>12} {'C TCP rt/s':>12} {'panal/C':>8}   runs panal | C")
    for pairs, mode, p, c, pr, cr in results:
        print(f"{pairs:>5} {mode:>10} {p:>12,.0f} {c:>12,.0f} {p / c:>8.2f}   {pr} | {cr}")


if __name__ == "__main__":
    main()
