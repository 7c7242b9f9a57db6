# panal: `make demo` and `make test` do all set-up on a fresh Debian 12 machine.
VENV     := .venv
PY       := $(abspath $(VENV))/bin/python
BUILD    := build/release
ASAN     := build/asan
JOBS     ?= 2
CMAKE_COMMON := -DPython_EXECUTABLE=$(PY)

.PHONY: all deps venv build build-asan python test test-cpp test-asan test-python demo bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

$(PY): | deps
	/usr/bin/python3 -m venv --system-site-packages $(VENV)

venv: deps $(PY)

build: venv
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANAL_TESTS=ON -DPANAL_BENCH=ON \
	  -DPANAL_PYTHON=ON $(CMAKE_COMMON) > /dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan: venv
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DPANAL_TESTS=ON -DPANAL_SANITIZE=ON $(CMAKE_COMMON) > /dev/null
	cmake --build $(ASAN) -j$(JOBS)

# The Python package, built through setup.py's CMake build_ext; it reuses
# $(BUILD) so that nothing is compiled twice.
python: build
	PANAL_BUILD_DIR=$(abspath $(BUILD)) $(PY) -m pip install --no-build-isolation --no-index -q .
	PYDEVD_DISABLE_FILE_VALIDATION=1 $(PY) -Xfrozen_modules=off -m ipykernel install --sys-prefix --name panal \
	  --display-name "Python (panal)" > /dev/null

test-cpp: build
	cd $(BUILD) && ctest --output-on-failure

test-asan: build-asan
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

# Python tests, and the multi-node tests (real node processes on 127.0.0.1).
test-python: python
	cd tests && PANAL_BUILD_DIR=$(abspath $(BUILD)) $(PY) -m pytest -q python cluster

test: test-cpp test-asan test-python

demo: python
	$(PY) examples/quickstart.py
	$(PY) examples/cluster.py

# libFuzzer over the frame reader and the handshake, node-protocol and
# client-protocol decoders, for FUZZ_SECONDS (default 60) in FUZZ_JOBS
# parallel jobs (default 1; logs in fuzz-N.log when more).
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz:
	@scripts/install-deps.sh clang libclang-rt-14-dev
	CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPANAL_FUZZ=ON > /dev/null
	cmake --build build/fuzz -j$(JOBS)
	mkdir -p build/fuzz/corpus
	build/fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	  $(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)) build/fuzz/corpus tests/fuzz/corpus

bench: build
	scripts/bench.sh $(BUILD)

clean:
	rm -rf build $(VENV) python/panal/_core*.so *.egg-info python/*.egg-info
