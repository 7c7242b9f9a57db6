#!/usr/bin/env python3
"""Replication: what it costs and how fast a lost copy comes back.

Three panal nodes (OS processes, one scheduler thread each) share CPU 1, one
data process on each; the client (bench/client_bench.cc over the TCP client)
runs on CPU 0. 16-byte keys, 32-byte values (the refill also with larger
values: --refill-values).

1. SET throughput with replicas=1 against replicas=3, write_acks=2, one at a
   time and 64 in flight; the two settings alternate, each figure the median
   of ROUNDS runs after an idle-machine wait.
2. Refill: with replicas=3 and KEYS keys loaded, the data process on the
   third node is killed; its supervisor restarts it (the same member) and it
   refills every slot it holds from the others while a client reads from the
   cluster. Reported: the time until every data process serves again, the
   keys and bytes (of keys and values) it received, and the reads/s meanwhile.

  bench/replication_bench.py BUILD_DIR [--rounds 3] [--keys 1000000]
                             [--refill-values 32,1000] [--refill-only]
"""
import argparse
import statistics
import subprocess
import threading
import time
from pathlib import Path

from bench_util import TestNode, wait_idle


def cluster(build, opts):
    nodes = [TestNode(build / "panal_test_node", 1, f"b{i}", "--tick-ms", "200", "--down-ms", "2000")
             for i in range(3)]
    for n in nodes[1:]:
        assert n.cmd(f"connect {nodes[0].name}") == "ok"
    assert nodes[0].cmd(f"server db {opts}").startswith("ok")
    for n in nodes:
        assert n.cmd("data db 1").startswith("ok")
    wait_settled(nodes[0], 3)
    return nodes


def wait_settled(node, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        slots = node.cmd("slots db").split()
        states = node.cmd("states db").split()[1:]
        if len(slots) > 2 and slots[2] == "0" and len(states) == count and set(states) == {"serving"}:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError("the cluster did not settle")


def client(build, node, *args, timeout=900):
    out = subprocess.run(["taskset", "-c", "0", str(build / "client_bench"), node.address, "db", *map(str, args)],
                         check=True, capture_output=True, text=True, timeout=timeout)
    return float(out.stdout.strip())


def throughput(build, opts, n, pipeline):
    nodes = cluster(build, opts)
    try:
        return client(build, nodes[0], "set", n, pipeline)
    finally:
        for x in nodes:
            x.stop()


def refill(build, keys, value_bytes):
    nodes = cluster(build, "replicas=3 write_acks=2")
    try:
        client(build, nodes[0], "set", keys, 64, value_bytes)
        wait_settled(nodes[0], 3)
        keys_before, bytes_before = map(int, nodes[0].cmd("moved db").split()[1:3])
        reads = {}

        def read_meanwhile():
            try:
                reads["rate"] = client(build, nodes[0], "get", 400_000, 16)
            except subprocess.CalledProcessError as e:  # e.g. a slot still syncing past the client's timeout
                reads["error"] = e.stderr.strip()

        reader = threading.Thread(target=read_meanwhile)
        t0 = time.monotonic()
        assert nodes[2].cmd("kill_data db 1") == "ok 1"
        reader.start()
        done = wait_settled(nodes[0], 3)
        keys_after, bytes_after = map(int, nodes[0].cmd("moved db").split()[1:3])
        reader.join()
        return done - t0, keys_after - keys_before, bytes_after - bytes_before, reads
    finally:
        for x in nodes:
            x.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--refill-values", default="32,1000", help="value sizes of the refill runs, comma-separated")
    ap.add_argument("--refill-only", action="store_true")
    args = ap.parse_args()
    if not args.refill_only:
        throughputs(args)
    for value_bytes in map(int, args.refill_values.split(",")):
        print(f"\nrefill of a restarted data process holding {args.keys:,} keys of {value_bytes}-byte values "
              f"(R=3, W=2)")
        for _ in range(args.rounds):
            wait_idle()
            secs, moved_keys, moved_bytes, reads = refill(args.build, args.keys, value_bytes)
            meanwhile = f"{reads['rate']:,.0f}/s" if "rate" in reads else f"failed: {reads.get('error')}"
            print(f"  {secs:.2f} s until all serve; {moved_keys:,} keys, {moved_bytes / 1e6:.1f} MB received "
                  f"({moved_keys / secs:,.0f} keys/s, {moved_bytes / secs / 1e6:.1f} MB/s); reads meanwhile "
                  f"{meanwhile}", flush=True)


def throughputs(args):
    print("SET throughput, 3 nodes on CPU 1, client on CPU 0")
    print(f"{'in flight':>9} {'R=1 ops/s':>11} {'R=3,W=2 ops/s':>14} {'ratio':>6}   runs R=1 | R=3")
    for n, pipeline in ((20_000, 1), (300_000, 64)):
        one, three = [], []
        for _ in range(args.rounds):
            wait_idle()
            one.append(throughput(args.build, "replicas=1 write_acks=1", n, pipeline))
            wait_idle()
            three.append(throughput(args.build, "replicas=3 write_acks=2", n, pipeline))
        a, b = statistics.median(one), statistics.median(three)
        print(f"{pipeline:>9} {a:>11,.0f} {b:>14,.0f} {b / a:>6.2f}   {[round(x) for x in one]} | "
              f"{[round(x) for x in three]}")


if __name__ == "__main__":
    main()
