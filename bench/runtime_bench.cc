// Runtime micro-benchmarks: spawn+exit, and message round trips between two
// processes on one thread and across threads.
//
//   build/release/runtime_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include "runtime/this_process.h"

namespace panal {
namespace {

namespace tp = this_process;

// Runs `body` inside a process and waits for it (timing happens inside).
template <class F>
void run_in_process(runtime& rt, F body, int thread = 0) {
  inbox done = rt.open_inbox();
  const pid report = done.self();
  auto p = rt.spawn([body, report]() mutable {
    body();
    tp::send(report, true);
  }, {.thread = thread});
  if (!p || !done.receive_as<bool>()) std::abort();
}

void BM_SpawnExit(benchmark::State& state) {
  runtime rt({.threads = 1});
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) {
    run_in_process(rt, [batch] {
      for (int i = 0; i < batch; ++i) {
        if (!tp::spawn_monitor([] {}, {.thread = spawn_options::same_thread})) std::abort();
      }
      for (int i = 0; i < batch; ++i) tp::receive_as<down_msg>();
    });
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel("spawn + exit + DOWN");
}
BENCHMARK(BM_SpawnExit)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime();

void round_trips(benchmark::State& state, unsigned threads, int ponger_thread) {
  runtime rt({.threads = threads});
  auto ponger = rt.spawn([] {
    for (;;) {
      auto from = tp::receive_as<pid>();
      tp::send(*from, tp::self());
    }
  }, {.thread = ponger_thread});
  const pid target = *ponger;
  const long n = state.range(0);
  for (auto _ : state) {
    run_in_process(rt, [n, target] {
      for (long i = 0; i < n; ++i) {
        tp::send(target, tp::self());
        tp::receive_as<pid>();
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_RoundTripOneThread(benchmark::State& state) { round_trips(state, 1, 0); }
void BM_RoundTripAcrossThreads(benchmark::State& state) { round_trips(state, 2, 1); }
BENCHMARK(BM_RoundTripOneThread)->Arg(100000)->UseRealTime();
BENCHMARK(BM_RoundTripAcrossThreads)->Arg(10000)->UseRealTime();

}  // namespace
}  // namespace panal

BENCHMARK_MAIN();
