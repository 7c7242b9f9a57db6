#!/usr/bin/env python3
"""Bytes per key: panal's data table next to Redis, same keys, same run.

1,000,000 keys of 16 bytes ("key:%012d") with 32-byte values. panal: the
table's own accounting and its process's RSS growth (bench/store_memory_bench.cc).
Redis: used_memory (INFO memory) and RSS growth after the same SETs, loaded
with redis-cli --pipe; redis-server pinned to CPU 1, persistence off.

With --nodes: also a whole node (panal_test_node, 3 data processes) loaded
with the same keys by bench/loadgen at replicas = 1 and replicas = 3: the
node's RSS growth per key, everything included (tables, write logs,
replication state), so R=3 shows what the copies cost.

  bench/memory_bench.py BUILD_DIR [--keys 1000000] [--nodes]
"""
import argparse
import json
import subprocess
from pathlib import Path

from bench_util import free_port, node_env, redis_server




def info(port, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":")[1])
    raise RuntimeError(f"no {field} in INFO")


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        out.append(f"${len(a)}\r\n".encode() + a + b"\r\n")
    return b"".join(out)


def redis_bytes_per_key(keys):
    with redis_server() as port:
        used0, rss0 = info(port, "used_memory"), info(port, "used_memory_rss")
        payload = b"".join(resp(b"SET", b"key:%012d" % i, b"value:%026d" % i) for i in range(keys))
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=payload, capture_output=True, check=True)
        dbsize = int(subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True,
                                    text=True).stdout.strip())
        assert dbsize == keys, dbsize
        used1, rss1 = info(port, "used_memory"), info(port, "used_memory_rss")
        return (used1 - used0) / keys, (rss1 - rss0) / keys


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def node_bytes_per_key(build, keys, replicas):
    """RSS growth per key of one node with 3 data processes, `keys` loaded at `replicas`."""
    import store_bench
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", "1", str(build / "panal_test_node"), "--name", f"mem@127.0.0.1:{port}",
                          "--cookie", "bench", "--threads", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1, env=node_env())
    try:
        assert p.stdout.readline().startswith("ready")

        def cmd(line):
            p.stdin.write(line + "\n")
            p.stdin.flush()
            return p.stdout.readline().strip()
        assert cmd(f"server db replicas={replicas} write_acks={min(replicas, 2)}").startswith("ok")
        assert cmd("data db 3").startswith("ok")
        import time
        deadline = time.monotonic() + 30
        while cmd("states db").split()[1:] != ["serving"] * 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = rss_bytes(p.pid)
        cmdline = ["taskset", "-c", "0", str(store_bench.loadgen_binary(build)), "-p", str(port), "-r", str(keys),
                   "-d", "32", "--load", "-c", "8", "-P", "16"]
        subprocess.run(cmdline, check=True, capture_output=True, timeout=600)
        time.sleep(0.5)  # write logs trimmed by the next acknowledgements
        return (rss_bytes(p.pid) - before) / keys
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path, help="also write the results there (bench/issue_table.py reads them)")
    ap.add_argument("--nodes", action="store_true", help="also a whole node at replicas 1 and 3 (RSS per key)")
    args = ap.parse_args()
    out = subprocess.run(["taskset", "-c", "1", str(args.build / "store_memory_bench"), str(args.keys)],
                         capture_output=True, text=True, check=True).stdout
    panal = dict(line.split() for line in out.splitlines())
    redis_used, redis_rss = redis_bytes_per_key(args.keys)
    table, rss = float(panal["table_bytes_per_key"]), float(panal["rss_bytes_per_key"])
    print(f"{args.keys:,} keys of 16 bytes with 32-byte values (48 bytes of data per key)")
    print(f"{'':24} {'accounted':>10} {'RSS growth':>11}")
    print(f"{'panal data table':24} {table:>10.1f} {rss:>11.1f}   bytes/key")
    print(f"{'Redis':24} {redis_used:>10.1f} {redis_rss:>11.1f}   bytes/key (used_memory, used_memory_rss)")
    print(f"panal / Redis: {table / redis_used:.2f} (accounted), {rss / redis_rss:.2f} (RSS)")
    result = {"keys": args.keys, "panal_accounted": table, "panal_rss": rss, "redis_used": redis_used,
              "redis_rss": redis_rss}
    if args.nodes:
        r1 = node_bytes_per_key(args.build, args.keys, 1)
        r3 = node_bytes_per_key(args.build, args.keys, 3)
        print(f"a whole node, 3 data processes, RSS growth per key: replicas=1 {r1:.1f}, replicas=3 {r3:.1f} "
              f"({r3 / r1:.2f}x)")
        result.update({"node_r1_rss": r1, "node_r3_rss": r3})
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
