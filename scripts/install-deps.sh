#!/usr/bin/env bash
# Installs the Debian 12 packages panal needs; quick when all are present.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
  # build
  cmake g++ make ccache pkg-config
  # C++ libraries: Boost 1.74 (Debian's default; its -dev packages install
  # cleanly with libmsgpack-cxx-dev, Boost 1.81's conflict), msgpack-c
  libboost-dev libboost-fiber-dev libboost-context-dev libmsgpack-cxx-dev
  # HMAC-SHA256 for the cluster cookie handshake and TLS; XXH3 for key hashing
  # (openssl: the tests make their certificates with it)
  libssl-dev openssl libxxhash-dev
  # the allocator of panal's programs and of `panal node` (docs/benchmarks.md)
  libjemalloc-dev
  # C++ tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # Python module and tests (PyPI is not used: everything comes from apt)
  python3-dev python3-venv python3-pip python3-setuptools python3-wheel
  pybind11-dev python3-pybind11 python3-pytest python3-msgpack
  # the notebook example, executed by the tests
  python3-nbclient python3-nbformat python3-ipykernel
  # fault tests: a node whose clock runs behind (LD_PRELOAD)
  libfaketime
  # observability tests: a real Prometheus parser, and a headless browser
  # that loads the live page
  python3-prometheus-client chromium
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
