#!/usr/bin/env bash
# Runs panal's benchmarks pinned to one CPU each where it matters, on an idle machine.
# Usage: scripts/bench.sh [build-dir]
set -euo pipefail
build=${1:-build/release}
"$(dirname "$0")/install-deps.sh" redis-server redis-tools

wait_idle() {
  # Wait (at most 60 s) until the 1-minute load average is below 0.5.
  for _ in $(seq 60); do
    awk '{exit !($1 < 0.5)}' /proc/loadavg && return
    sleep 1
  done
  echo "warning: machine not idle (load $(cut -d' ' -f1 /proc/loadavg))" >&2
}

wait_idle
echo "== runtime: spawn/exit and round trips (both scheduler threads on CPUs 0-1)"
taskset -c 0,1 "$build/runtime_bench" --benchmark_min_time=2

echo "== distribution: remote round trips vs a C TCP ping-pong (client CPU 0, server CPU 1)"
python3 "$(dirname "$0")/../bench/dist_bench.py" "$build"

echo "== store: throughput vs Redis (server CPU 1, client CPU 0)"
python3 "$(dirname "$0")/../bench/store_bench.py" "$build"

echo "== store: bytes per key vs Redis"
python3 "$(dirname "$0")/../bench/memory_bench.py" "$build"
