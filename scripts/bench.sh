#!/usr/bin/env bash
# Runs panal's benchmarks pinned to one CPU each where it matters, on an idle machine.
# Usage: scripts/bench.sh [build-dir]
set -euo pipefail
build=${1:-build/release}
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/install-deps.sh" redis-server redis-tools python3-redis python3-hiredis liburing-dev
python=${PYTHON:-$here/.venv/bin/python}
results="$build/bench-results"
mkdir -p "$results"

wait_idle() {
  # Wait (at most 60 s) until under 10% of the CPUs are busy over half a second.
  "$python" -c "import sys; sys.path.insert(0, '$here/bench'); import bench_util; bench_util.wait_idle()"
}

wait_idle
echo "== runtime: spawn/exit and round trips (both scheduler threads on CPUs 0-1)"
taskset -c 0,1 "$build/runtime_bench" --benchmark_min_time=2

echo "== distribution: remote round trips vs a C TCP ping-pong (client CPU 0, server CPU 1)"
python3 "$here/bench/dist_bench.py" "$build"

echo "== store: panal vs Redis, one load generator (bench/loadgen.c), server CPU 1, client CPU 0"
python3 "$here/bench/store_bench.py" "$build" --json "$results/store.json"

echo "== 50 x 1: the load generator's ceiling (a server that only answers), Redis and panal"
python3 "$here/bench/floor_bench.py" "$build"

echo "== Python clients: panal.connect vs redis-py + hiredis"
"$python" "$here/bench/python_bench.py" "$build" --json "$results/python.json"

echo "== replication: R=1 vs R=3/W=2, and the refill of a restarted data process"
python3 "$here/bench/replication_bench.py" "$build"

echo "== store: bytes per key vs Redis"
python3 "$here/bench/memory_bench.py" "$build" --nodes --json "$results/memory.json"

echo "== issue #10's table (medians above; $results holds every run)"
python3 "$here/bench/issue_table.py" "$results"
