// Processes: spawn, send, receive (selective, with timeout), names, exits,
// ordering across threads, memory, runtime stop/restart.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

TEST(Process, EchoesAcrossThreads) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto echo = rt.spawn([me] {
    for (int i = 0; i < 3; ++i) {
      auto m = tp::receive_as<int>();
      tp::send(me, *m * 2);
    }
  });
  ASSERT_TRUE(echo);
  for (int i = 1; i <= 3; ++i) {
    rt.send(*echo, i);
    auto r = in.receive_as<int>(test::kWait);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 2 * i);
  }
}

TEST(Process, ReceiveTimesOut) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    const auto t0 = clock::now();
    auto m = tp::receive(50ms);
    const auto waited = clock::now() - t0;
    tp::send(me, std::pair<bool, bool>{m.has_value(), waited >= 50ms});
  }));
  auto r = in.receive_as<std::pair<bool, bool>>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->first) << "nothing was sent, so nothing may be received";
  EXPECT_TRUE(r->second) << "receive returned before its timeout";
}

TEST(Process, ReceiveWithZeroTimeoutPolls) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    bool empty_before = !tp::receive(0ms).has_value();
    tp::send(tp::self(), 7);
    auto m = tp::receive(0ms);
    tp::send(me, empty_before && m && m->get<int>() == 7);
  }));
  auto r = in.receive_as<bool>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
}

TEST(Process, ReceiveUntilTimesOutAtItsDeadlineAndTakesWhatCameBefore) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto p = rt.spawn([me] {
    const auto t0 = clock::now();
    auto none = tp::receive_until(t0 + 50ms);
    const bool waited = clock::now() - t0 >= 50ms;
    auto past = tp::receive_until(clock::now() - 1s);  // past: returns at once, with nothing
    tp::send(me, std::string("ready"));
    auto m = tp::receive_until(clock::now() + test::kWait);
    tp::send(me, std::string(!none && waited && !past && m && m->is<int>() && m->get<int>() == 7 ? "ok" : "wrong"));
  });
  ASSERT_TRUE(p);
  ASSERT_EQ(in.receive_as<std::string>(test::kWait), "ready");
  rt.send(*p, 7);
  EXPECT_EQ(in.receive_as<std::string>(test::kWait), "ok");
}

// A message that does not match wakes a selective receive, which then
// waits on until its deadline, not longer and not shorter.
TEST(Process, SelectiveReceiveWokenByOtherMessagesWaitsOutItsTimeout) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto p = rt.spawn([me] {
    tp::send(me, std::string("ready"));
    const auto t0 = clock::now();
    auto m = tp::receive_as<std::string>(300ms);
    const auto waited = clock::now() - t0;
    tp::send(me, std::string(!m && waited >= 300ms && tp::mailbox_size() == 2 ? "ok" : "wrong"));
  });
  ASSERT_TRUE(p);
  ASSERT_EQ(in.receive_as<std::string>(test::kWait), "ready");
  rt.send(*p, 1);
  rt.send(*p, 2);
  EXPECT_EQ(in.receive_as<std::string>(test::kWait), "ok");
}

// Two processes that pass a message back and forth keep one of them ready
// at every moment; the scheduler's own turn (timers, polls) must still come:
// a third process's timeout fires while they play.
TEST(Process, ATimeoutFiresWhileTwoProcessesOnItsThreadPassAMessageWithoutPause) {
  constexpr int kRounds = 2'000'000;  // several seconds' worth: far longer than the timeout
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  std::atomic<int> rounds{0};
  std::atomic<bool> stop{false};
  auto ponger = rt.spawn([&] {
    while (auto m = tp::receive_as<pid>()) {
      if (stop.load()) return;
      tp::send(*m, tp::self());
    }
  });
  ASSERT_TRUE(ponger);
  ASSERT_TRUE(rt.spawn([&, p = *ponger] {
    tp::send(p, tp::self());
    for (int i = 0; i < kRounds && !stop.load(); ++i) {
      auto m = tp::receive_as<pid>();
      rounds.store(i + 1);
      tp::send(*m, tp::self());
    }
  }));
  ASSERT_TRUE(rt.spawn([&, me] {
    auto m = tp::receive(20ms);  // nothing comes: it times out
    tp::send(me, std::pair<bool, int>{m.has_value(), rounds.load()});
    stop.store(true);
  }));
  auto r = in.receive_as<std::pair<bool, int>>(test::kWait * 3);
  ASSERT_TRUE(r) << "the timeout never fired";
  EXPECT_FALSE(r->first);
  EXPECT_LT(r->second, kRounds) << "the timeout fired only once the two had stopped";
}

TEST(Process, SelectiveReceiveLeavesOtherMessagesInOrder) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    tp::send(tp::self(), 1);
    tp::send(tp::self(), std::string("two"));
    tp::send(tp::self(), 3);
    auto s = tp::receive_as<std::string>(0ms);
    auto a = tp::receive(0ms);
    auto b = tp::receive(0ms);
    tp::send(me, *s + "," + std::to_string(a->get<int>()) + "," + std::to_string(b->get<int>()));
  }));
  auto r = in.receive_as<std::string>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "two,1,3");
}

TEST(Process, SelectiveReceiveWakesOnlyForAMatch) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto p = rt.spawn([me] {
    auto m = tp::receive_as<std::string>(test::kWait);
    tp::send(me, std::pair<std::string, std::size_t>{m ? *m : "", tp::mailbox_size()});
  });
  ASSERT_TRUE(p);
  rt.send(*p, 1);
  rt.send(*p, 2);
  rt.send(*p, std::string("go"));
  auto r = in.receive_as<std::pair<std::string, std::size_t>>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, "go");
  EXPECT_EQ(r->second, 2u);  // the two ints are still waiting
}

TEST(Process, PerPairOrderHoldsUnderCrossThreadSendsFromManySenders) {
  constexpr int kSenders = 16;
  constexpr int kEach = 5000;
  runtime rt({.threads = 4});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto sink = rt.spawn([me] {
    std::vector<int> next(kSenders, 0);
    bool ordered = true;
    for (int i = 0; i < kSenders * kEach; ++i) {
      auto m = tp::receive_as<std::pair<int, int>>();
      auto [sender, seq] = *m;
      if (seq != next[sender]) ordered = false;
      next[sender] = seq + 1;
    }
    tp::send(me, ordered);
  }, {.thread = 0});
  ASSERT_TRUE(sink);
  const pid target = *sink;
  for (int s = 0; s < kSenders; ++s) {
    // Senders on every thread, including the sink's own.
    ASSERT_TRUE(rt.spawn([s, target] {
      for (int i = 0; i < kEach; ++i) {
        tp::send(target, std::pair<int, int>{s, i});
        if (i % 512 == 0) tp::yield();
      }
    }, {.thread = s % 4}));
  }
  auto r = in.receive_as<bool>(std::chrono::seconds(60));
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r) << "a sender's messages arrived out of order";
}

TEST(Process, PerPairOrderHoldsFromForeignThreads) {
  constexpr int kThreads = 4;
  constexpr int kEach = 5000;
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto sink = rt.spawn([me] {
    std::vector<int> next(kThreads, 0);
    bool ordered = true;
    for (int i = 0; i < kThreads * kEach; ++i) {
      auto [sender, seq] = *tp::receive_as<std::pair<int, int>>();
      if (seq != next[sender]) ordered = false;
      next[sender] = seq + 1;
    }
    tp::send(me, ordered);
  });
  ASSERT_TRUE(sink);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&rt, t, target = *sink] {
      for (int i = 0; i < kEach; ++i) rt.send(target, std::pair<int, int>{t, i});
    });
  }
  for (auto& t : threads) t.join();
  auto r = in.receive_as<bool>(std::chrono::seconds(60));
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
}

TEST(Process, UncaughtExceptionEndsOnlyItsProcessWithItsText) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto bad = rt.spawn([] {
    tp::receive(50ms);
    throw std::runtime_error("boom");
  });
  ASSERT_TRUE(bad);
  in.monitor(*bad);
  auto down = in.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->who, *bad);
  EXPECT_EQ(down->reason, exit_reason::error("boom"));
  // The runtime goes on.
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, 1); }));
  EXPECT_TRUE(in.receive_as<int>(test::kWait));
}

TEST(Process, RegisteredNamesResolveAndAreReleasedAtExit) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto p = rt.spawn([me] {
    auto first = tp::register_name("keeper");
    tp::send(me, first.ok());
    tp::receive_as<std::string>();  // wait until told to exit
  });
  ASSERT_TRUE(p);
  ASSERT_TRUE(*in.receive_as<bool>(test::kWait));
  EXPECT_EQ(rt.whereis("keeper"), *p);
  // A second process cannot take the name.
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, tp::register_name("keeper").code()); }));
  auto second = in.receive_as<errc>(test::kWait);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, errc::name_taken);
  rt.send(*p, std::string("bye"));
  EXPECT_TRUE(test::eventually([&] { return !rt.whereis("keeper"); }));
}

TEST(Process, SendToADeadPidIsDroppedQuietly) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  auto p = rt.spawn([] {});
  ASSERT_TRUE(p);
  in.monitor(*p);
  ASSERT_TRUE(in.receive_as<down_msg>(test::kWait));
  rt.send(*p, 1);  // must not crash or reach anyone
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, 2); }));
  auto r = in.receive_as<int>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 2);
}

TEST(Process, CallGetsTheReplyOrNoproc) {
  runtime rt({.threads = 2});
  auto server = rt.spawn([] {
    for (;;) {
      auto req = tp::receive_as<call_request>();
      tp::reply(*req, req->body.get<int>() + 1);
    }
  });
  ASSERT_TRUE(server);
  auto r = rt.call(*server, 41, test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get<int>(), 42);

  rt.exit(*server, exit_reason::kill());
  ASSERT_TRUE(test::eventually([&] { return rt.call(*server, 1, 1s).code() == errc::noproc; }));

  auto silent = rt.spawn([] {
    for (;;) tp::receive();  // takes requests, never answers
  });
  ASSERT_TRUE(silent);
  EXPECT_EQ(rt.call(*silent, 1, 50ms).code(), errc::timeout);
}

TEST(Process, HundredThousandSpawnedAndExitedLeaveNothingBehind) {
  runtime rt({.threads = 2});
  std::atomic<int> ran{0};
  for (int batch = 0; batch < 10; ++batch) {
    for (int i = 0; i < 10000; ++i) {
      ASSERT_TRUE(rt.spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); }));
    }
    ASSERT_TRUE(test::eventually([&] { return rt.process_count() == 0; }, std::chrono::seconds(60)));
  }
  EXPECT_EQ(ran.load(), 100000);
  EXPECT_EQ(rt.process_count(), 0u);
  // Leaks, if any, are reported by LeakSanitizer in the sanitizer build.
}

TEST(Process, StopKillsBlockedProcessesAndARuntimeCanStartAgain) {
  for (int round = 0; round < 3; ++round) {
    runtime rt({.threads = 2});
    std::atomic<int> unwound{0};
    struct guard {
      std::atomic<int>* n;
      ~guard() { n->fetch_add(1); }
    };
    inbox in = rt.open_inbox();
    const pid me = in.self();
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(rt.spawn([&unwound, me] {
        guard g{&unwound};
        tp::send(me, 1);
        for (;;) tp::receive();
      }));
    }
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(in.receive_as<int>(test::kWait));
    rt.stop();
    EXPECT_EQ(unwound.load(), 100) << "every process unwinds its stack on stop";
    EXPECT_EQ(rt.process_count(), 0u);
    EXPECT_EQ(rt.spawn([] {}).code(), errc::not_running);
  }
}

TEST(Process, SpawnRejectsBadArguments) {
  runtime rt({.threads = 2});
  EXPECT_EQ(rt.spawn(nullptr).code(), errc::bad_argument);
  EXPECT_EQ(rt.spawn([] {}, {.thread = 7}).code(), errc::bad_argument);
}

TEST(Process, SleepSuspendsOnlyTheFiber) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    tp::sleep_for(200ms);
    tp::send(me, std::string("sleeper"));
  }));
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, std::string("other")); }));
  // On a single thread the other process finishes while the first sleeps.
  EXPECT_EQ(*in.receive_as<std::string>(test::kWait), "other");
  EXPECT_EQ(*in.receive_as<std::string>(test::kWait), "sleeper");
}

}  // namespace
}  // namespace panal
