// Supervisors: one test per OTP promise.
#include "supervision/supervisor.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/this_process.h"
#include "util/log.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

// A worker that tells `observer` "<id>" each time it starts, then serves
// "crash" (throws) and "stop" (returns normally) requests. It runs on the
// supervisor's thread: children are spawned in order, and on one thread
// they also first run in that order, which makes the order observable.
child_spec observed(const std::string& id, pid observer, restart_type restart = restart_type::permanent) {
  return child_spec::worker(id, [id, observer] {
    tp::send(observer, id);
    for (;;) {
      auto cmd = tp::receive_as<std::string>();
      if (*cmd == "crash") throw std::runtime_error(id + " crashed on purpose");
      if (*cmd == "stop") return;
    }
  }, restart, {.thread = spawn_options::same_thread});
}

pid child_pid(runtime& rt, const pid& sup, const std::string& id) {
  auto kids = supervisor::which_children(rt, sup);
  if (!kids) return {};
  for (auto& c : *kids) {
    if (c.id == id) return c.child;
  }
  return {};
}

// Reads the ids the observed workers announce, in order.
std::vector<std::string> starts(inbox& in, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto s = in.receive_as<std::string>(test::kWait);
    if (!s) break;
    out.push_back(*s);
  }
  return out;
}

TEST(Supervisor, StartsChildrenInOrder) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto sup = supervisor::start(rt, {}, {observed("a", in.self()), observed("b", in.self()), observed("c", in.self())});
  ASSERT_TRUE(sup) << sup.err();
  EXPECT_EQ(starts(in, 3), (std::vector<std::string>{"a", "b", "c"}));
  auto kids = supervisor::which_children(rt, *sup);
  ASSERT_TRUE(kids);
  ASSERT_EQ(kids->size(), 3u);
  for (auto& k : *kids) EXPECT_TRUE(k.child) << k.id;
}

TEST(Supervisor, CrashedPermanentChildComesBackWithANewPid) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto sup = supervisor::start(rt, {}, {observed("w", in.self())});
  ASSERT_TRUE(sup);
  starts(in, 1);
  const pid before = child_pid(rt, *sup, "w");
  ASSERT_TRUE(before);
  rt.send(before, std::string("crash"));
  EXPECT_EQ(starts(in, 1), std::vector<std::string>{"w"});
  const pid after = child_pid(rt, *sup, "w");
  EXPECT_TRUE(after);
  EXPECT_NE(after, before);
  auto kids = supervisor::which_children(rt, *sup);
  EXPECT_EQ(kids->front().restarts, 1u);
}

TEST(Supervisor, TransientChildThatExitsNormallyStaysDown) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto sup = supervisor::start(rt, {}, {observed("t", in.self(), restart_type::transient)});
  ASSERT_TRUE(sup);
  starts(in, 1);
  const pid first = child_pid(rt, *sup, "t");
  in.monitor(first);
  rt.send(first, std::string("stop"));
  ASSERT_TRUE(in.receive_as<down_msg>(test::kWait));
  EXPECT_FALSE(in.receive_as<std::string>(200ms)) << "a transient child that ended normally was restarted";
  EXPECT_FALSE(child_pid(rt, *sup, "t"));
  auto kids = supervisor::which_children(rt, *sup);
  ASSERT_EQ(kids->size(), 1u) << "its spec is kept";
}

TEST(Supervisor, TransientChildThatCrashesIsRestarted) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto sup = supervisor::start(rt, {}, {observed("t", in.self(), restart_type::transient)});
  ASSERT_TRUE(sup);
  starts(in, 1);
  rt.send(child_pid(rt, *sup, "t"), std::string("crash"));
  EXPECT_EQ(starts(in, 1), std::vector<std::string>{"t"});
}

TEST(Supervisor, TemporaryChildIsNeverRestarted) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  auto sup = supervisor::start(rt, {}, {observed("tmp", in.self(), restart_type::temporary)});
  ASSERT_TRUE(sup);
  starts(in, 1);
  const pid first = child_pid(rt, *sup, "tmp");
  in.monitor(first);
  rt.send(first, std::string("crash"));
  ASSERT_TRUE(in.receive_as<down_msg>(test::kWait));
  EXPECT_FALSE(in.receive_as<std::string>(200ms));
  auto kids = supervisor::which_children(rt, *sup);
  ASSERT_TRUE(kids);
  EXPECT_TRUE(kids->empty()) << "a temporary child is forgotten when it ends";
}

TEST(Supervisor, ExceedingTheIntensityTakesTheSupervisorDownAndItsParentSeesWhy) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  // The parent is a process that starts the supervisor linked, traps exits and reports.
  ASSERT_TRUE(rt.spawn([me] {
    tp::trap_exit(true);
    auto sup = supervisor::start_link({.how = strategy::one_for_one, .intensity = 2, .period = 10s, .name = "fragile"},
                                      {observed("w", me)});
    tp::send(me, *sup);
    auto e = tp::receive_as<exit_msg>(test::kWait);
    tp::send(me, e ? e->reason : exit_reason::error("no exit"));
  }));
  auto sup = in.receive_as<pid>(test::kWait);
  ASSERT_TRUE(sup);
  // 1 start + 2 allowed restarts; the 3rd crash is one too many.
  for (int crash = 0; crash < 3; ++crash) {
    ASSERT_EQ(starts(in, 1).size(), 1u);
    pid w;
    ASSERT_TRUE(test::eventually([&] { return bool(w = child_pid(rt, *sup, "w")); }));
    rt.send(w, std::string("crash"));
  }
  auto reason = in.receive_as<exit_reason>(test::kWait);
  ASSERT_TRUE(reason);
  EXPECT_EQ(*reason, exit_reason::shutdown("reached_max_restart_intensity"));
}

TEST(Supervisor, OneForAllRestartsEverySiblingInOrder) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto sup = supervisor::start(rt, {.how = strategy::one_for_all},
                               {observed("a", me), observed("b", me), observed("c", me)});
  ASSERT_TRUE(sup);
  starts(in, 3);
  const pid a = child_pid(rt, *sup, "a"), c = child_pid(rt, *sup, "c");
  rt.send(child_pid(rt, *sup, "b"), std::string("crash"));
  EXPECT_EQ(starts(in, 3), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_NE(child_pid(rt, *sup, "a"), a);
  EXPECT_NE(child_pid(rt, *sup, "c"), c);
}

TEST(Supervisor, RestForOneRestartsTheCrashedChildAndTheOnesAfterIt) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto sup = supervisor::start(rt, {.how = strategy::rest_for_one},
                               {observed("a", me), observed("b", me), observed("c", me)});
  ASSERT_TRUE(sup);
  starts(in, 3);
  const pid a = child_pid(rt, *sup, "a");
  rt.send(child_pid(rt, *sup, "b"), std::string("crash"));
  EXPECT_EQ(starts(in, 2), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(in.receive_as<std::string>(100ms)) << "a, started before b, must not restart";
  EXPECT_EQ(child_pid(rt, *sup, "a"), a);
}

TEST(Supervisor, SiblingsStopInReverseOrderOnOneForAll) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto stop_reporter = [me](std::string id) {
    return child_spec::worker(id, [id, me] {
      tp::trap_exit(true);
      for (;;) {
        auto m = tp::receive();
        if (m->is<exit_msg>()) {
          tp::send(me, "stopped " + id);
          return;
        }
        if (m->is<std::string>()) throw std::runtime_error("crash");
      }
    }, restart_type::permanent, {.thread = spawn_options::same_thread});
  };
  auto sup = supervisor::start(rt, {.how = strategy::one_for_all},
                               {stop_reporter("a"), stop_reporter("b"), stop_reporter("c"), stop_reporter("d")});
  ASSERT_TRUE(sup);
  rt.send(child_pid(rt, *sup, "a"), std::string("crash"));
  EXPECT_EQ(starts(in, 3), (std::vector<std::string>{"stopped d", "stopped c", "stopped b"}));
}

TEST(Supervisor, ShutdownKillsChildrenThatIgnoreItAfterTheirTimeout) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  child_spec stubborn = child_spec::worker("stubborn", [me] {
    tp::trap_exit(true);  // turns shutdown into a message it then ignores
    tp::send(me, std::string("up"));
    for (;;) tp::receive();
  });
  stubborn.shutdown = 100ms;
  child_spec inner_stubborn = stubborn;
  inner_stubborn.id = "inner";
  auto sup = supervisor::start(rt, {.name = "root"},
                               {stubborn, child_spec::supervisor("nested", {.name = "nested"}, {inner_stubborn})});
  ASSERT_TRUE(sup) << sup.err();
  starts(in, 2);
  in.monitor(*sup);
  const pid outer = child_pid(rt, *sup, "stubborn");
  in.monitor(outer);
  const auto t0 = clock::now();
  ASSERT_TRUE(supervisor::stop(rt, *sup, test::kWait));
  const auto took = clock::now() - t0;
  EXPECT_GE(took, 200ms) << "each stubborn child gets its full shutdown time";
  // Two DOWNs from two processes: no order between them is promised.
  std::map<pid, exit_reason> downs;
  for (int i = 0; i < 2; ++i) {
    auto d = in.receive_as<down_msg>(test::kWait);
    ASSERT_TRUE(d);
    downs[d->who] = d->reason;
  }
  ASSERT_TRUE(downs.count(outer));
  EXPECT_EQ(downs[outer], exit_reason::killed()) << "it ignored shutdown, so it was killed";
  ASSERT_TRUE(downs.count(*sup));
  EXPECT_EQ(downs[*sup], exit_reason::shutdown());
  EXPECT_TRUE(test::eventually([&] { return rt.process_count() == 1; })) << "only the inbox is left";
}

TEST(Supervisor, DynamicChildren) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto sup = supervisor::start(rt, {}, {});
  ASSERT_TRUE(sup);
  auto added = supervisor::start_child(rt, *sup, observed("dyn", me));
  ASSERT_TRUE(added) << added.err();
  starts(in, 1);
  EXPECT_EQ(supervisor::start_child(rt, *sup, observed("dyn", me)).code(), errc::already_exists);
  EXPECT_EQ(supervisor::delete_child(rt, *sup, "dyn").code(), errc::already_exists) << "running";
  ASSERT_TRUE(supervisor::terminate_child(rt, *sup, "dyn"));
  EXPECT_FALSE(child_pid(rt, *sup, "dyn"));
  auto again = supervisor::restart_child(rt, *sup, "dyn");
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *added);
  starts(in, 1);
  ASSERT_TRUE(supervisor::terminate_child(rt, *sup, "dyn"));
  ASSERT_TRUE(supervisor::delete_child(rt, *sup, "dyn"));
  EXPECT_TRUE(supervisor::which_children(rt, *sup)->empty());
  EXPECT_EQ(supervisor::terminate_child(rt, *sup, "nope").code(), errc::not_found);
}

TEST(Supervisor, StartFailsWithTheNameOfTheChildThatDidNotStart) {
  runtime rt({.threads = 2});
  inbox in = rt.open_inbox();
  child_spec broken{.id = "broken", .start = [] { return result<pid>(errc::bad_argument, "no config"); }};
  auto sup = supervisor::start(rt, {}, {observed("ok", in.self()), broken});
  ASSERT_FALSE(sup);
  EXPECT_EQ(sup.code(), errc::start_failed);
  EXPECT_NE(sup.err().message.find("broken"), std::string::npos) << sup.err().message;
  // The child that did start was stopped again.
  EXPECT_TRUE(test::eventually([&] { return rt.process_count() == 1; }));
}

TEST(Supervisor, ReportsSayWhatDiedWhyAndWhatWasDone) {
  std::mutex m;
  std::vector<std::string> lines;
  log::set_sink([&](log::level, std::string_view c, std::string_view t) {
    std::lock_guard lock(m);
    lines.push_back(std::string(c) + ": " + std::string(t));
  });
  {
    runtime rt({.threads = 2});
    inbox in = rt.open_inbox();
    auto sup = supervisor::start(rt, {.name = "reporting"}, {observed("worker7", in.self())});
    ASSERT_TRUE(sup);
    starts(in, 1);
    rt.send(child_pid(rt, *sup, "worker7"), std::string("crash"));
    starts(in, 1);
  }
  log::set_sink(nullptr);
  std::lock_guard lock(m);
  bool found = false;
  for (auto& l : lines) {
    if (l.find("reporting") != std::string::npos && l.find("'worker7'") != std::string::npos &&
        l.find("worker7 crashed on purpose") != std::string::npos && l.find("restarting") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no report names the supervisor, the child, the reason and the action";
}

TEST(Supervisor, WalkTreeListsEveryChildDepthFirst) {
  runtime rt({.threads = 2});
  auto idle = [] {
    for (;;) this_process::sleep_for(std::chrono::hours(1));
  };
  auto sup = supervisor::start(
      rt, {}, {child_spec::worker("a", idle), child_spec::supervisor("inner", {}, {child_spec::worker("b", idle)}),
               child_spec::worker("c", idle)});
  ASSERT_TRUE(sup);
  const auto rows = supervisor::walk_tree(rt, *sup, std::chrono::seconds(5));
  ASSERT_EQ(rows.size(), 4u);
  std::vector<std::pair<unsigned, std::string>> seen;
  for (const auto& r : rows) {
    EXPECT_TRUE(r.error.empty());
    EXPECT_TRUE(r.child.child) << r.child.id;
    seen.emplace_back(r.depth, r.child.id);
  }
  EXPECT_EQ(seen, (std::vector<std::pair<unsigned, std::string>>{{1, "a"}, {1, "inner"}, {2, "b"}, {1, "c"}}));
  EXPECT_EQ(rows[1].child.type, child_type::supervisor);
}

}  // namespace
}  // namespace panal
