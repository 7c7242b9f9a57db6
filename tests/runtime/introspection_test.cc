// runtime::processes and runtime::thread_loads: what the node's metrics and
// `panal top` are made of.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>

#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

TEST(Introspection, ListsEveryProcessWithItsMailboxAndMessagesReceived) {
  runtime rt({.threads = 2});
  // A process that never reads: its mailbox only grows.
  auto sleeper = rt.spawn([] {
    (void)tp::register_name("sleeper");
    for (;;) tp::sleep_for(1h);
  });
  ASSERT_TRUE(sleeper);
  ASSERT_TRUE(rt.await_name("sleeper", test::kWait));
  for (int i = 0; i < 7; ++i) rt.send(*sleeper, i);
  // Sends from outside are delivered on the sleeper's thread, soon.
  std::vector<process_info> all;
  for (int tries = 0; tries < 500; ++tries) {
    all = rt.processes();
    auto it = std::find_if(all.begin(), all.end(), [&](const process_info& p) { return p.self == *sleeper; });
    ASSERT_NE(it, all.end());
    if (it->mailbox == 7) break;
    std::this_thread::sleep_for(2ms);
  }
  auto it = std::find_if(all.begin(), all.end(), [&](const process_info& p) { return p.self == *sleeper; });
  EXPECT_EQ(it->name, "sleeper");
  EXPECT_EQ(it->mailbox, 7u);
  EXPECT_EQ(it->received, 7u);
}

TEST(Introspection, WorksFromInsideAProcess) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto asker = rt.spawn([me] { tp::send(me, tp::current_runtime().processes().size()); });
  ASSERT_TRUE(asker);
  auto n = in.receive_as<std::size_t>(test::kWait);
  ASSERT_TRUE(n);
  EXPECT_GE(*n, 2u);  // the asker and the inbox
}

TEST(Introspection, ThreadLoadsCountBusyAndIdleTime) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  // Keeps one thread busy for 100 ms without yielding.
  auto spinner = rt.spawn([me] {
    const auto until = clock::now() + 100ms;
    while (clock::now() < until) {
    }
    tp::send(me, true);
  });
  ASSERT_TRUE(spinner);
  ASSERT_TRUE(in.receive_as<bool>(test::kWait));
  std::this_thread::sleep_for(50ms);
  const auto loads = rt.thread_loads();
  ASSERT_EQ(loads.size(), 2u);
  std::uint64_t busiest = 0;
  for (const auto& l : loads) {
    busiest = std::max(busiest, l.busy_ns);
    EXPECT_GT(l.idle_ns, 0u);
  }
  EXPECT_GE(busiest, 100'000'000u);
}

}  // namespace
}  // namespace panal
