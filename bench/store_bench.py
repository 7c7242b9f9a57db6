#!/usr/bin/env python3
"""Store throughput, latency and CPU: panal next to Redis, same machine, same
load generator (bench/loadgen.c), same run.

The server is pinned to CPU 1 (a panal node with one scheduler thread and one
data process; redis-server), the load generator to CPU 0. 16-byte keys,
32-byte values, a key space of 100,000 keys loaded first. Each case runs
both stores, alternating, ROUNDS times, each run after an idle-machine wait;
the figures are medians. Server CPU per request is the server process's user
+ system time over the requests answered.

  bench/store_bench.py BUILD_DIR [--rounds 3] [--quick]
"""
import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from bench_util import free_port, node_env, redis_server, wait_idle

HERE = Path(__file__).resolve().parent
KEYS = 100_000


def loadgen_binary(build):
    binary = build / "loadgen"
    if not binary.exists() or binary.stat().st_mtime < (HERE / "loadgen.c").stat().st_mtime:
        subprocess.run(["cc", "-O2", "-o", str(binary), str(HERE / "loadgen.c")], check=True)
    return binary


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadgen(build, ports, args, redis=False):
    cmd = ["taskset", "-c", "0", str(loadgen_binary(build)), "-p", ",".join(map(str, ports)), "-r", str(KEYS),
           "-d", "32", *map(str, args)]
    if redis:
        cmd.insert(4, "--redis")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stdout} {out.stderr}")
    return dict(kv.split("=") for kv in out.stdout.split())


class PanalNodes:
    """`count` panal nodes on CPU 1, one data process each, replicas=1."""

    def __init__(self, build, count=1, threads=1, malloc="jemalloc", node_args=()):
        self.procs, self.ports = [], []
        names = []
        for i in range(count):
            port = free_port()
            name = f"bench{i}@127.0.0.1:{port}"
            # One thread: CPU 1 (the load generator has CPU 0); more: both
            # CPUs, shared with the load generator (this machine has two).
            cpus = "1" if threads == 1 else "0,1"
            p = subprocess.Popen(["taskset", "-c", cpus, str(build / "panal_test_node"), "--name", name, "--cookie",
                                  "bench", "--threads", str(threads), *node_args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                 env=node_env(malloc))
            assert p.stdout.readline().startswith("ready")
            self.procs.append(p)
            self.ports.append(port)
            names.append(name)
        for p in self.procs[1:]:
            assert self.cmd(p, f"connect {names[0]}") == "ok"
        assert self.cmd(self.procs[0], "server db replicas=1").startswith("ok")
        for p in self.procs:
            assert self.cmd(p, "data db 1").startswith("ok")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            slots = self.cmd(self.procs[0], "slots db").split()
            states = self.cmd(self.procs[0], "states db").split()[1:]
            if len(slots) > 2 and slots[2] == "0" and states == ["serving"] * count:
                break
            time.sleep(0.02)

    @staticmethod
    def cmd(p, line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def run_panal(build, args, nodes=1, malloc="jemalloc", threads=1, node_args=()):
    n = PanalNodes(build, nodes, threads=threads, malloc=malloc, node_args=node_args)
    try:
        loadgen(build, n.ports, ["--load", "-c", "8", "-P", "16"])
        cpu0 = n.cpu()
        r = loadgen(build, n.ports, args)
        r["cpu_us"] = (n.cpu() - cpu0) * 1e6 / int(r["ops"])
        return r
    finally:
        n.stop()


def run_redis(build, args):
    with redis_server() as port:
        pid = int(subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True,
                                 text=True).stdout.split("process_id:")[1].split()[0])
        loadgen(build, [port], ["--load", "-c", "8", "-P", "16"], redis=True)
        cpu0 = cpu_seconds(pid)
        r = loadgen(build, [port], args, redis=True)
        r["cpu_us"] = (cpu_seconds(pid) - cpu0) * 1e6 / int(r["ops"])
        return r


def med(runs, key):
    return statistics.median(float(r[key]) for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer requests per run")
    ap.add_argument("--compare-malloc", action="store_true", help="also run the panal node on glibc's malloc "
                    "(PANAL_MALLOC=system), alternately with jemalloc; its ratio is printed too")
    ap.add_argument("--json", type=Path, help="also write the medians there (bench/issue_table.py reads them)")
    ap.add_argument("--threads", type=int, default=1, help="scheduler threads of each panal node (default 1)")
    ap.add_argument("--cases", default="all", help="'all'; 'many': only the 50-connection cases, one node; "
                    "'nodes': one node at 50 x 16, then two nodes")
    args = ap.parse_args()
    scale = 0.2 if args.quick else 1.0
    cases = [  # (op, connections, in flight each, requests)
        ("get", 50, 1, 300_000), ("set", 50, 1, 300_000),
        ("get", 50, 16, 2_000_000), ("set", 50, 16, 2_000_000),
        ("get", 1, 1, 60_000), ("set", 1, 1, 60_000),
    ]
    print("server on CPU 1, loadgen on CPU 0; medians of", args.rounds, "alternating rounds")
    print(f"{'op':>4} {'conns':>5} {'P':>3} {'panal ops/s':>12} {'Redis ops/s':>12} {'ratio':>6} "
          f"{'p99 µs':>13} {'p99 ratio':>9} {'CPU µs/req':>14}")
    one_node = {}
    results = {"cases": {}, "two_nodes": {}, "threads": args.threads}
    if args.cases == "many":
        cases = [c for c in cases if c[1] == 50]
    if args.cases == "nodes":
        cases = [c for c in cases if c[1] == 50 and c[2] == 16]
    for op, conns, depth, n in cases:
        n = int(n * scale)
        a = ["-t", op, "-c", conns, "-P", depth, "-n", n]
        p_runs, r_runs, c_runs = [], [], []
        for _ in range(args.rounds):
            wait_idle()
            p_runs.append(run_panal(args.build, a, threads=args.threads))
            if args.compare_malloc:
                wait_idle()
                c_runs.append(run_panal(args.build, a, malloc="system"))
            wait_idle()
            r_runs.append(run_redis(args.build, a))
        p, r = med(p_runs, "ops_per_s"), med(r_runs, "ops_per_s")
        p99p, p99r = med(p_runs, "p99_us"), med(r_runs, "p99_us")
        cp, cr = med(p_runs, "cpu_us"), med(r_runs, "cpu_us")
        one_node[(op, conns, depth)] = p
        results["cases"][f"{op} {conns}x{depth}"] = {
            "panal": p, "redis": r, "ratio": p / r, "p99_panal": p99p, "p99_redis": p99r, "cpu_panal": cp,
            "cpu_redis": cr, "panal_runs": [float(x["ops_per_s"]) for x in p_runs],
            "redis_runs": [float(x["ops_per_s"]) for x in r_runs]}
        print(f"{op:>4} {conns:>5} {depth:>3} {p:>12,.0f} {r:>12,.0f} {p / r:>6.2f} {p99p:>6.0f}/{p99r:<6.0f} "
              f"{p99p / max(p99r, 1):>9.2f} {cp:>6.2f}/{cr:<6.2f}   runs {[round(float(x['ops_per_s'])) for x in p_runs]}"
              f" | {[round(float(x['ops_per_s'])) for x in r_runs]}")
        if c_runs:
            c, p99c, cc = med(c_runs, "ops_per_s"), med(c_runs, "p99_us"), med(c_runs, "cpu_us")
            print(f"{'':>4} {'':>5} {'':>3} {c:>12,.0f} {'':>12} {c / r:>6.2f} {p99c:>6.0f}{'':7} {'':>9} "
                  f"{cc:>6.2f}{'':7}   (glibc malloc) runs {[round(float(x['ops_per_s'])) for x in c_runs]}")
    if args.cases == "many":
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return
    print("\ntwo panal nodes on CPU 1 (one data process each), connections spread over both, 50 x 16;")
    print("routed: each key sent to its primary's node (loadgen --route, as panal.connect does);")
    print("any node: keys sent on any connection (half cross between the nodes)")
    for op in ("get", "set"):
        routed, anywhere = [], []
        for _ in range(args.rounds):
            a = ["-t", op, "-c", 50, "-P", 16, "-n", int(2_000_000 * scale)]
            wait_idle()
            routed.append(run_panal(args.build, [*a, "--route"], nodes=2))
            wait_idle()
            anywhere.append(run_panal(args.build, a, nodes=2))
        two, two_any = med(routed, "ops_per_s"), med(anywhere, "ops_per_s")
        one = one_node[(op, 50, 16)]
        results["two_nodes"][op] = {"ops": two, "of_one": two / one, "runs": [float(x["ops_per_s"]) for x in routed],
                                    "cpu_us": med(routed, "cpu_us"), "p99_us": med(routed, "p99_us"),
                                    "any_node_ops": two_any, "any_node_of_one": two_any / one,
                                    "any_node_runs": [float(x["ops_per_s"]) for x in anywhere]}
        print(f"{op:>4}: routed {two:,.0f} ops/s = {two / one:.2f} of one node, {med(routed, 'cpu_us'):.2f} µs CPU/req  "
              f"runs {[round(float(x['ops_per_s'])) for x in routed]}")
        print(f"{'':>4}  any node {two_any:,.0f} ops/s = {two_any / one:.2f} of one node, "
              f"{med(anywhere, 'cpu_us'):.2f} µs CPU/req  runs {[round(float(x['ops_per_s'])) for x in anywhere]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
