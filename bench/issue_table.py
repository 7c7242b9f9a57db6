#!/usr/bin/env python3
"""Prints issue #10's table (panal / Redis, same machine, same run) from the
--json files that store_bench.py, python_bench.py and memory_bench.py wrote.

Usage: bench/issue_table.py DIR   (DIR holds store.json, python.json, memory.json)
"""
import json
import sys
from pathlib import Path


def load(d, name):
    p = Path(d) / name
    return json.loads(p.read_text()) if p.exists() else None


def main():
    d = sys.argv[1]
    store, py, mem = load(d, "store.json"), load(d, "python.json"), load(d, "memory.json")
    rows = []
    if store:
        c = store["cases"]

        def ratio(*keys):
            return " / ".join(f"{c[k]['ratio']:.2f}" for k in keys if k in c)
        rows.append(("50 connections, 1 in flight each: ops/s (GET / SET)", ratio("get 50x1", "set 50x1"), ">= 1.3"))
        rows.append(("50 connections, 16 in flight each: ops/s (GET / SET)", ratio("get 50x16", "set 50x16"), ">= 1.3"))
        p99 = " / ".join(f"{c[k]['p99_panal'] / max(c[k]['p99_redis'], 1):.2f}x" for k in ("get 50x16", "set 50x16")
                         if k in c)
        rows.append(("the same, p99 latency vs Redis's (GET / SET)", p99, "<= 1.2x"))
        one = " / ".join(f"{c[k]['ratio']:.2f} at {c[k]['cpu_panal']:.1f} vs {c[k]['cpu_redis']:.1f} us CPU/req"
                         for k in ("get 1x1", "set 1x1") if k in c)
        rows.append(("one connection, one request: ops/s (GET / SET)", one, ">= 1.0 at no more CPU"))
        cpu = " / ".join(f"{c[k]['cpu_panal']:.2f} vs {c[k]['cpu_redis']:.2f} us" for k in ("get 50x16", "set 50x16")
                         if k in c)
        rows.append(("server CPU per request, 50 x 16 (GET / SET)", cpu, "<= Redis"))
        if store.get("two_nodes"):
            two = " / ".join(f"{v['of_one']:.2f}" for v in store["two_nodes"].values())
            rows.append(("two nodes on one machine, 50 x 16, routed, of one node (GET / SET)", two, ">= 0.9"))
            anywhere = " / ".join(f"{v['any_node_of_one']:.2f}" for v in store["two_nodes"].values()
                                  if "any_node_of_one" in v)
            if anywhere:
                rows.append(("  the same, each key on any node's connection (not routed)", anywhere, "(no goal)"))
    if py:
        rows.append(("Python mset / mget of 100 vs redis-py + hiredis",
                     f"{py['mset']['ratio']:.2f} / {py['mget']['ratio']:.2f}", ">= 1.2"))
        if "pipe" in py:
            rows.append(("Python pipeline of 100 (50 set + 50 get)", f"{py['pipe']['ratio']:.2f}", "(no goal)"))
        rows.append(("Python, sequential set / get", f"{py['set']['ratio']:.2f} / {py['get']['ratio']:.2f}", ">= 1.2"))
    if mem:
        rows.append((f"bytes per key, {mem['keys']:,} keys, data table (accounted / RSS)",
                     f"{mem['panal_accounted']:.1f} / {mem['panal_rss']:.1f} B vs Redis "
                     f"{mem['redis_used']:.1f} / {mem['redis_rss']:.1f} B", "<= 100 B"))
        if "node_r3_rss" in mem:
            rows.append(("  a whole node's RSS per key, replicas 1 / 3 (3 data processes)",
                         f"{mem['node_r1_rss']:.1f} / {mem['node_r3_rss']:.1f} B", "(report R=3)"))
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'workload':<{width}}  panal / Redis today  (goal)")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value}  ({goal})")


if __name__ == "__main__":
    main()
