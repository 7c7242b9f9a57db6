// The registry on one node (clusters: tests/cluster).
#include "registry/pg.h"

#include <gtest/gtest.h>

#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "../test_util.h"

namespace panal::registry {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

pid sleeper(runtime& rt) {
  return *rt.spawn([] {
    for (;;) tp::receive();
  });
}

TEST(Pg, JoinLeaveAndMembers) {
  runtime rt({.threads = 2});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g) << g.err();
  const pid a = sleeper(rt), b = sleeper(rt);
  ASSERT_TRUE((*g)->join("db/server", a));
  ASSERT_TRUE((*g)->join("db/server", b));
  ASSERT_TRUE((*g)->join("db/server", a)) << "joining twice is allowed and changes nothing";
  EXPECT_EQ((*g)->members("db/server").size(), 2u);
  EXPECT_EQ((*g)->local_members("db/server").size(), 2u);
  EXPECT_EQ((*g)->which_groups(), std::vector<std::string>{"db/server"});
  ASSERT_TRUE((*g)->leave("db/server", a));
  EXPECT_EQ((*g)->members("db/server"), std::vector<pid>{b});
  EXPECT_EQ((*g)->leave("db/server", a).code(), errc::not_found);
}

TEST(Pg, OldestIsTheFirstToJoinAndMovesOnWhenItDies) {
  runtime rt({.threads = 2});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g);
  const pid first = sleeper(rt), second = sleeper(rt);
  ASSERT_TRUE((*g)->join("db/server", first));
  ASSERT_TRUE((*g)->join("db/server", second));
  EXPECT_EQ((*g)->oldest("db/server"), first);
  rt.exit(first, exit_reason::kill());
  EXPECT_TRUE(test::eventually([&] { return (*g)->oldest("db/server") == second; }));
  EXPECT_FALSE((*g)->oldest("nobody").has_value());
}

TEST(Pg, AProcessThatExitsLeavesAllItsGroups) {
  runtime rt({.threads = 2});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g);
  const pid p = sleeper(rt);
  ASSERT_TRUE((*g)->join("x", p));
  ASSERT_TRUE((*g)->join("y", p));
  rt.exit(p, exit_reason::kill());
  EXPECT_TRUE(test::eventually([&] { return (*g)->which_groups().empty(); }));
}

TEST(Pg, OnlyLocalProcessesMayJoin) {
  runtime rt({.threads = 1});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g);
  const pid foreign{node_index("elsewhere@h:1"), 1, 4096};
  EXPECT_EQ((*g)->join("x", foreign).code(), errc::bad_argument);
}

TEST(Pg, MonitorsSeeJoinsAndLeaves) {
  runtime rt({.threads = 2});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g);
  inbox in = rt.open_inbox();
  ASSERT_TRUE((*g)->monitor("watched", in.self()));
  const pid p = sleeper(rt);
  ASSERT_TRUE((*g)->join("watched", p));
  auto joined = in.receive_as<group_event>(test::kWait);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->joined, std::vector<pid>{p});
  rt.exit(p, exit_reason::kill());
  auto left = in.receive_as<group_event>(test::kWait);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->left, std::vector<pid>{p});
}

TEST(Pg, ASubscriberThatEndsIsForgotten) {
  runtime rt({.threads = 2});
  auto g = pg::start(rt, nullptr);
  ASSERT_TRUE(g);
  inbox in = rt.open_inbox();
  ASSERT_TRUE((*g)->monitor("watched", in.self()));
  ASSERT_TRUE((*g)->monitor("watched", in.self()));  // twice counts once
  std::vector<pid> subs;
  for (int i = 0; i < 100; ++i) {
    subs.push_back(sleeper(rt));
    ASSERT_TRUE((*g)->monitor("watched", subs.back()));
  }
  EXPECT_EQ((*g)->subscribers("watched").value(), 101u);
  // They end; the scope hears of it (its DOWNs come before our next call's
  // answer only once each exit is done: wait for each through a monitor).
  for (const pid& p : subs) {
    const ref r = in.monitor(p);
    rt.exit(p, exit_reason::kill());
    auto down = in.receive_if([&](const message& m) { return m.is<down_msg>() && m.get<down_msg>().monitor == r; },
                              test::kWait);
    ASSERT_TRUE(down);
  }
  EXPECT_TRUE(test::eventually([&] { return (*g)->subscribers("watched").value() == 1u; }));
  EXPECT_FALSE((*g)->monitor("watched", pid{rt.node() + 1, 5, 1}))
      << "a process of another node cannot subscribe here";
}

TEST(Pg, AKilledScopeIsRestartedWithItsMembersAndSubscribers) {
  runtime rt({.threads = 2});
  auto sup = supervisor::start(rt, {.intensity = 5, .period = 10s, .name = "root"}, {});
  ASSERT_TRUE(sup);
  auto g = pg::start(rt, nullptr, *sup);
  ASSERT_TRUE(g) << g.err();
  inbox in = rt.open_inbox();
  ASSERT_TRUE((*g)->monitor("watched", in.self()));
  const pid stays = sleeper(rt), goes = sleeper(rt);
  ASSERT_TRUE((*g)->join("watched", std::vector<pid>{stays, goes}));
  ASSERT_TRUE(in.receive_as<group_event>(test::kWait));

  // The scope dies; one member ends while no scope runs (or just after).
  const pid scope = rt.whereis("panal_pg");
  ASSERT_TRUE(scope);
  const ref w = in.monitor(scope);
  rt.exit(scope, exit_reason::kill());
  ASSERT_TRUE(in.receive_if([&](const message& m) { return m.is<down_msg>() && m.get<down_msg>().monitor == w; },
                            test::kWait));
  rt.exit(goes, exit_reason::kill());
  ASSERT_TRUE(test::eventually([&] {
    const pid now = rt.whereis("panal_pg");
    return now && now != scope;
  }));
  // The new scope knows the members, saw the one that ended go (its
  // subscriber hears of it), and still serves the subscription.
  auto left = in.receive_as<group_event>(test::kWait);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->left, std::vector<pid>{goes});
  EXPECT_EQ((*g)->members("watched"), std::vector<pid>{stays});
  EXPECT_EQ((*g)->subscribers("watched").value(), 1u);
  const pid later = sleeper(rt);
  ASSERT_TRUE((*g)->join("watched", later));
  auto joined = in.receive_as<group_event>(test::kWait);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->joined, std::vector<pid>{later});
  // And it still watches the members it took over.
  rt.exit(stays, exit_reason::kill());
  EXPECT_TRUE(test::eventually([&] { return (*g)->members("watched") == std::vector<pid>{later}; }));
  (void)supervisor::stop(rt, *sup, 10s);
}

}  // namespace
}  // namespace panal::registry
