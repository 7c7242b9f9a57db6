#!/usr/bin/env python3
"""Server CPU per request by `perf stat -e task-clock -p SERVER` (finer than
store_bench's /proc ticks): panal builds (or one build with node options)
and Redis, alternating after the idle wait; server CPU 1, load generator
CPU 0. Each SPEC is BUILD_DIR or BUILD_DIR:"node options".

Usage: bench/cpu_ab.py SPEC[,SPEC...] OP REQUESTS CONNS IN_FLIGHT ROUNDS
  e.g. bench/cpu_ab.py /tmp/a,/tmp/b get 40000 1 1 9
       bench/cpu_ab.py "/tmp/b,/tmp/b:--spin-us 0" get 40000 1 1 9
"""
import subprocess, sys, time, os, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_bench as sb
from bench_util import redis_server, wait_idle
specs = sys.argv[1].split(",")
builds = [Path(b.split(":")[0]) for b in specs]
extra = {x: (x.split(":", 1)[1].split() if ":" in x else []) for x in specs}
op, n, c, P, rounds = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
node_args = sys.argv[7].split() if len(sys.argv) > 7 else []
def measure(pid, ports, redis, build):
    sb.loadgen(build, ports, ["--load", "-c", "8", "-P", "16"], redis=redis)
    wait_idle()
    perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "task-clock", "-p", str(pid)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    r = sb.loadgen(build, ports, ["-t", op, "-c", c, "-P", P, "-n", n], redis=redis)
    perf.send_signal(2); err = perf.communicate()[1]
    ms = [float(l.split(",")[0]) for l in err.splitlines() if "task-clock" in l][0]
    return float(r["ops_per_s"]), ms * 1000 / int(r["ops"])
res = {s: [] for s in specs}; res["redis"] = []
for rnd in range(rounds):
    for spec in specs:
        b = Path(spec.split(":")[0])
        nodes = sb.PanalNodes(b, 1, node_args=node_args + extra[spec])
        try: res[spec].append(measure(nodes.procs[0].pid, nodes.ports, False, b))
        finally: nodes.stop()
    with redis_server() as port:
        pid = int(subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True, text=True).stdout.split("process_id:")[1].split()[0])
        res["redis"].append(measure(pid, [port], True, builds[0]))
for k, v in res.items():
    print(f"{k:>14}: {statistics.median(x[0] for x in v):>10,.0f} ops/s  {statistics.median(x[1] for x in v):6.2f} us CPU/req   cpu runs {[round(x[1],2) for x in v]}")
