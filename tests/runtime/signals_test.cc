// Links, monitors, exit signals and trap_exit.
#include <gtest/gtest.h>

#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

// Spawns a process that waits for any message and then crashes with `what`.
pid crasher(runtime& rt, std::string what, int thread = spawn_options::any_thread) {
  return *rt.spawn([what] {
    tp::receive();
    throw std::runtime_error(what);
  }, {.thread = thread});
}

TEST(Signals, MonitorDeliversDownWithTheReason) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid victim = crasher(rt, "disk on fire");
  const ref mon = in.monitor(victim);
  rt.send(victim, 0);
  auto down = in.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->monitor, mon);
  EXPECT_EQ(down->who, victim);
  EXPECT_EQ(down->reason, exit_reason::error("disk on fire"));
}

TEST(Signals, MonitorOfADeadPidDeliversNoproc) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto gone = rt.spawn([] {});
  ASSERT_TRUE(gone);
  in.monitor(*gone);
  ASSERT_TRUE(in.receive_as<down_msg>(test::kWait));  // it has ended
  ASSERT_TRUE(rt.spawn([me, gone = *gone] {
    tp::monitor(gone);
    auto d = tp::receive_as<down_msg>(test::kWait);
    tp::send(me, d ? d->reason : exit_reason::error("no DOWN"));
  }));
  auto reason = in.receive_as<exit_reason>(test::kWait);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, exit_reason::noproc());
}

TEST(Signals, DemonitorStopsTheDown) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    auto target = tp::spawn([] { tp::receive(); });
    ref r = tp::monitor(*target);
    tp::demonitor(r);
    tp::exit(*target, exit_reason::kill());
    auto d = tp::receive_as<down_msg>(100ms);
    tp::send(me, d.has_value());
  }));
  auto got_down = in.receive_as<bool>(test::kWait);
  ASSERT_TRUE(got_down);
  EXPECT_FALSE(*got_down);
}

TEST(Signals, LinkPropagatesACrash) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto partner = rt.spawn([me] {
    auto victim = tp::spawn_link([] {
      tp::receive();
      throw std::runtime_error("bad input");
    });
    tp::send(me, *victim);
    tp::receive();  // never returns normally: the link takes us down
  });
  ASSERT_TRUE(partner);
  in.monitor(*partner);
  auto victim = in.receive_as<pid>(test::kWait);
  ASSERT_TRUE(victim);
  rt.send(*victim, 0);
  auto down = in.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->who, *partner);
  EXPECT_EQ(down->reason, exit_reason::error("bad input"));
}

TEST(Signals, TrapExitTurnsTheSignalIntoAMessage) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    tp::trap_exit(true);
    auto victim = tp::spawn_link([] {
      tp::receive();
      throw std::runtime_error("oops");
    }, {.thread = 1});
    tp::send(*victim, 0);
    auto e = tp::receive_as<exit_msg>(test::kWait);
    tp::send(me, e ? std::pair{e->from == *victim, e->reason} : std::pair{false, exit_reason{}});
  }, {.thread = 0}));
  auto r = in.receive_as<std::pair<bool, exit_reason>>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->first);
  EXPECT_EQ(r->second, exit_reason::error("oops"));
}

TEST(Signals, NormalExitDoesNotTakeLinksDown) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    auto child = tp::spawn_link([] {});
    tp::monitor(*child);
    tp::receive_as<down_msg>(test::kWait);
    tp::sleep_for(20ms);  // room for a (wrong) exit signal to arrive
    tp::send(me, std::string("still alive"));
  }));
  auto r = in.receive_as<std::string>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "still alive");
}

TEST(Signals, KillCannotBeTrappedAndLinksSeeKilled) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto stubborn = rt.spawn([me] {
    tp::trap_exit(true);
    tp::send(me, std::string("trapping"));  // a signal sent before this point would kill it
    for (;;) tp::receive();
  });
  ASSERT_TRUE(stubborn);
  ASSERT_TRUE(in.receive_as<std::string>(test::kWait));
  ASSERT_TRUE(rt.spawn([me, s = *stubborn] {
    tp::trap_exit(true);
    tp::link(s);
    tp::exit(s, exit_reason::shutdown());  // trapped: a message, the process lives on
    bool alive = !tp::receive_as<exit_msg>(100ms).has_value();
    tp::exit(s, exit_reason::kill());
    auto e = tp::receive_as<exit_msg>(test::kWait);
    tp::send(me, std::pair{alive, e ? e->reason : exit_reason{}});
  }));
  auto r = in.receive_as<std::pair<bool, exit_reason>>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->first) << "a trapped shutdown must not end the process";
  EXPECT_EQ(r->second, exit_reason::killed());
}

TEST(Signals, LinkToADeadPidGivesNoproc) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    tp::trap_exit(true);
    auto gone = tp::spawn([] {});
    tp::sleep_for(20ms);
    tp::link(*gone);
    auto e = tp::receive_as<exit_msg>(test::kWait);
    tp::send(me, e ? e->reason : exit_reason{});
  }));
  auto r = in.receive_as<exit_reason>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, exit_reason::noproc());
}

TEST(Signals, UnlinkStopsPropagation) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    auto child = tp::spawn_link([] {
      tp::receive();
      throw std::runtime_error("x");
    });
    tp::unlink(*child);
    tp::monitor(*child);
    tp::send(*child, 0);
    tp::receive_as<down_msg>(test::kWait);
    tp::sleep_for(20ms);
    tp::send(me, true);
  }));
  EXPECT_TRUE(in.receive_as<bool>(test::kWait));
}

TEST(Signals, ExitSelfAndExitOfAKilledWaiterUnwindTheStack) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto p = rt.spawn([] {
    tp::receive();  // monitored first, then told to go
    tp::exit(exit_reason::shutdown("done here"));
  });
  ASSERT_TRUE(p);
  in.monitor(*p);
  rt.send(*p, 1);
  auto d = in.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, exit_reason::shutdown("done here"));
}

TEST(Signals, InboxSeesExitsOfLinkedProcessesAsMessages) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto p = rt.spawn([me] {
    tp::link(me);
    tp::receive();
    throw std::runtime_error("linked to an inbox");
  });
  ASSERT_TRUE(p);
  ASSERT_TRUE(test::eventually([&] { return rt.process_count() == 2; }));
  rt.send(*p, 0);
  auto e = in.receive_as<exit_msg>(test::kWait);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->from, *p);
  EXPECT_EQ(e->reason, exit_reason::error("linked to an inbox"));
}

TEST(Signals, ClosingAnInboxIsANormalExitForItsWatchers) {
  runtime rt({.threads = 2});
  inbox watcher = rt.open_inbox();
  pid closed_pid;
  {
    inbox short_lived = rt.open_inbox();
    closed_pid = short_lived.self();
    ASSERT_TRUE(test::eventually([&] { return rt.process_count() == 2; }));
    watcher.monitor(closed_pid);
  }
  auto d = watcher.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->who, closed_pid);
  EXPECT_TRUE(d->reason.is_normal());
}

}  // namespace
}  // namespace panal
