// A database on one embedded node: every operation, every limit, failover of
// the master, restart of a data process. (Clusters: tests/cluster.)
#include <gtest/gtest.h>

#include <thread>

#include "db/messages.h"
#include "node/node.h"
#include "runtime/this_process.h"
#include "../test_util.h"







namespace panal {
namespace {

using namespace std::chrono_literals;

struct single {
  single(server_options opts = {}, unsigned data = 2) {
    auto n = node::start({.threads = 2});
    EXPECT_TRUE(n) << n.err();
    self = std::move(*n);
    EXPECT_TRUE(self->start_server("db", {}, opts));
    EXPECT_TRUE(self->start_data("db", {}, data));
    auto c = self->start_client("c1", "db");
    EXPECT_TRUE(c) << c.err();
    cl = std::make_unique<client>(std::move(*c));
    cl->set_timeout(30s);  // generous: a sanitizer build is many times slower
  }
  std::unique_ptr<node> self;
  std::unique_ptr<client> cl;
};

TEST(Embedded, GetSetRemoveExists) {
  single s;
  auto& c = *s.cl;
  EXPECT_EQ(*c.get("k"), std::nullopt);
  ASSERT_TRUE(c.set("k", "v"));
  EXPECT_EQ(*c.get("k"), "v");
  EXPECT_TRUE(*c.exists("k"));
  ASSERT_TRUE(c.set("k", "v2"));
  EXPECT_EQ(*c.get("k"), "v2");
  EXPECT_TRUE(*c.remove("k"));
  EXPECT_FALSE(*c.remove("k"));
  EXPECT_FALSE(*c.exists("k"));
  EXPECT_EQ(*c.get("k"), std::nullopt);
  ASSERT_TRUE(c.set(std::string("bin\0ary", 7), std::string("\0\xff", 2)));
  EXPECT_EQ(*c.get(std::string("bin\0ary", 7)), std::string("\0\xff", 2));
}

TEST(Embedded, UnsafeSetIsOrderedBeforeLaterCalls) {
  single s;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(s.cl->unsafe_set("u" + std::to_string(i), std::to_string(i)));
    ASSERT_EQ(*s.cl->get("u" + std::to_string(i)), std::to_string(i)) << i;
  }
}

TEST(Embedded, MgetMset) {
  single s;
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 100; ++i) items.emplace_back("m" + std::to_string(i), "v" + std::to_string(i));
  ASSERT_TRUE(s.cl->mset(items));
  std::vector<std::string> keys{"m0", "nope", "m99"};
  auto got = s.cl->mget(keys);
  ASSERT_TRUE(got) << got.err();
  EXPECT_EQ((*got)[0], "v0");
  EXPECT_EQ((*got)[1], std::nullopt);
  EXPECT_EQ((*got)[2], "v99");
}

TEST(Embedded, ForeignMessagesToTheNodesServicesAreDroppedAndCallsAnswered) {
  single s;
  runtime& rt = s.self->rt();
  inbox in = rt.open_inbox();
  for (const char* name : {"panal_status", "panal_dbs"}) {
    const pid service = rt.whereis(name);
    ASSERT_TRUE(service) << name;
    for (int i = 0; i < 1000; ++i) in.send(service, i);
    // Sent after them from the same sender: answered after they were seen.
    auto r = in.call(service, std::string("mailbox"), 10s);
    ASSERT_TRUE(r) << name << ": " << r.err();
    if (r->is<std::vector<std::string>>()) {
      EXPECT_EQ(r->get<std::vector<std::string>>(), std::vector<std::string>{"mailbox 0"}) << name;
    } else {
      ASSERT_TRUE(r->is<result<void>>()) << name;
      EXPECT_EQ(r->get<result<void>>().code(), errc::bad_argument) << name;
    }
  }
}

TEST(Embedded, LimitsRefuseAndStoreNothing) {
  single s({.limits = {.max_key_bytes = 8, .max_value_bytes = 16, .max_keys = 3}});
  auto& c = *s.cl;
  EXPECT_EQ(c.set("123456789", "v").code(), errc::key_too_large);
  EXPECT_EQ(c.set("k", std::string(17, 'x')).code(), errc::value_too_large);
  EXPECT_FALSE(*c.exists("k"));
  ASSERT_TRUE(c.set("a", "1"));
  ASSERT_TRUE(c.set("b", "1"));
  ASSERT_TRUE(c.set("c", "1"));
  auto fourth = c.set("d", "1");
  EXPECT_EQ(fourth.code(), errc::too_many_keys) << fourth.err();
  EXPECT_FALSE(*c.exists("d"));
  EXPECT_TRUE(c.set("a", "2")) << "updating an existing key stays allowed at the limit";
  ASSERT_TRUE(c.remove("b"));
  EXPECT_TRUE(test::eventually([&] { return c.set("d", "1").ok(); })) << "a removal frees room";
  EXPECT_EQ(c.get("").code(), errc::bad_argument);
}

TEST(Embedded, MemoryLimitPerDataProcess) {
  single s({.limits = {.max_memory = 256 * 1024}}, 1);
  errc last = errc::ok;
  int stored = 0;
  for (int i = 0; i < 10000 && last == errc::ok; ++i) {
    auto r = s.cl->set("key" + std::to_string(i), std::string(1000, 'x'));
    last = r.code();
    if (r) ++stored;
  }
  EXPECT_EQ(last, errc::out_of_memory);
  EXPECT_GT(stored, 50);
  EXPECT_LT(stored, 260);
}

TEST(Embedded, NoDataProcessIsARetryableErrorThatTimesOut) {
  auto n = node::start({.threads = 2});
  ASSERT_TRUE(n);
  ASSERT_TRUE((*n)->start_server("lonely"));
  auto c = (*n)->start_client("c", "lonely");
  ASSERT_TRUE(c);
  c->set_timeout(300ms);
  EXPECT_EQ(c->set("k", "v").code(), errc::no_data);
  auto other = (*n)->start_client("c2", "nobody");
  ASSERT_TRUE(other);
  other->set_timeout(300ms);
  EXPECT_EQ(other->get("k").code(), errc::no_master);
}

TEST(Embedded, ASecondServerOnOneNodeIsRefused) {
  single s;
  auto again = s.self->start_server("db");
  EXPECT_EQ(again.code(), errc::already_exists) << again.err();
}

TEST(Embedded, MasterCrashIsRestartedAndClientsCarryOn) {
  single s;
  ASSERT_TRUE(s.cl->set("before", "1"));
  const pid old_master = *s.self->master("db");
  s.self->rt().exit(old_master, exit_reason::kill());
  // Requests during the restart are retried by the client.
  ASSERT_TRUE(s.cl->set("during", "2"));
  EXPECT_TRUE(test::eventually([&] {
    auto m = s.self->master("db");
    return m && *m != old_master;
  }));
  EXPECT_EQ(*s.cl->get("before"), "1");
  EXPECT_EQ(*s.cl->get("during"), "2");
}

TEST(Embedded, CrashedDataProcessIsRestartedAndRejoins) {
  single s({}, 3);
  ASSERT_EQ(s.self->groups("db").data.size(), 3u);
  const pid victim = s.self->groups("db").data.front();
  s.self->rt().exit(victim, exit_reason::kill());
  EXPECT_TRUE(test::eventually([&] {
    auto d = s.self->groups("db").data;
    return d.size() == 3 && std::find(d.begin(), d.end(), victim) == d.end();
  }));
  ASSERT_TRUE(s.cl->set("after", "ok"));
  EXPECT_EQ(*s.cl->get("after"), "ok");
}

// Sends one op straight to the client process, as a client that numbers its
// writes would; resends only while the slot is moving (nothing was applied).
db::reply raw(single& s, db::client_op o) {
  inbox in = s.self->rt().open_inbox();
  for (int i = 0; i < 500; ++i) {
    auto r = in.call(s.cl->process(), o, 5s);
    EXPECT_TRUE(r) << r.err();
    if (!r) return {};
    auto rep = std::move(r->get<db::reply>());
    if (static_cast<errc>(rep.code) != errc::moved && static_cast<errc>(rep.code) != errc::no_master) return rep;
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << "the slot kept moving";
  return {};
}

TEST(Embedded, ARetriedWriteIsAnsweredFromTheLogNotAppliedTwice) {
  single s({}, 3);
  ASSERT_TRUE(s.cl->set("k", "v"));
  const auto remove = static_cast<std::uint8_t>(db::op::remove);
  const auto set = static_cast<std::uint8_t>(db::op::set);
  // A remove whose answer is lost: sent again, it still says the key existed.
  auto first = raw(s, {remove, "k", "", {777, 1, 1, false}});
  ASSERT_EQ(first.code, 0) << first.message;
  EXPECT_TRUE(first.found);
  auto again = raw(s, {remove, "k", "", {777, 1, 1, true}});
  ASSERT_EQ(again.code, 0) << again.message;
  EXPECT_TRUE(again.found) << "a retried remove reports what the first attempt found";
  EXPECT_EQ(*s.cl->get("k"), std::nullopt);
  // A set applied once and overwritten since is not applied again by its retry.
  ASSERT_EQ(raw(s, {set, "k", "old", {777, 2, 2, false}}).code, 0);
  ASSERT_TRUE(s.cl->set("k", "newer"));
  ASSERT_EQ(raw(s, {set, "k", "old", {777, 2, 2, true}}).code, 0);
  EXPECT_EQ(*s.cl->get("k"), "newer") << "the retry must not write the old value again";
  // Without a write id (seq 0) the same request is simply applied again.
  ASSERT_EQ(raw(s, {set, "k", "old", {}}).code, 0);
  EXPECT_EQ(*s.cl->get("k"), "old");
}

std::uint64_t sum(const std::vector<data_stats>& v, std::uint64_t data_stats::*field) {
  std::uint64_t n = 0;
  for (auto& x : v) n += x.*field;
  return n;
}

TEST(Embedded, RemovedKeysGiveBackTheirMemoryOnEveryHolder) {
  single s({}, 3);
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 2000; ++i) items.emplace_back("t" + std::to_string(i), std::string(100, 'x'));
  ASSERT_TRUE(s.cl->mset(items));
  EXPECT_TRUE(test::eventually([&] { return sum(s.self->stats("db"), &data_stats::entries) == 6000; }))
      << "three copies of every key";
  for (auto& [k, v] : items) ASSERT_TRUE(*s.cl->remove(k));
  // Tombstones go once every holder has them.
  EXPECT_TRUE(test::eventually([&] { return sum(s.self->stats("db"), &data_stats::entries) == 0; }))
      << sum(s.self->stats("db"), &data_stats::entries) << " entries left";
  EXPECT_EQ(sum(s.self->stats("db"), &data_stats::keys), 0u);
}

TEST(Embedded, RemovingKeysThatNeverExistedStoresNothing) {
  single s({.limits = {.max_keys = 10, .max_memory = 64 * 1024}}, 1);
  for (int i = 0; i < 50000; ++i) ASSERT_FALSE(*s.cl->remove("never" + std::to_string(i)));
  EXPECT_EQ(sum(s.self->stats("db"), &data_stats::entries), 0u);
  EXPECT_TRUE(s.cl->set("k", "v")) << "an empty database never refuses a write";
}

TEST(Embedded, TheKeyLimitHoldsForBatchesFireAndForgetAndAcrossAMasterRestart) {
  single s({.limits = {.max_keys = 1000}}, 3);
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 2334; ++i) items.emplace_back("a" + std::to_string(i), "v");
  EXPECT_EQ(s.cl->mset(items).code(), errc::too_many_keys);
  auto live = [&] { return sum(s.self->stats("db"), &data_stats::keys_primary); };
  EXPECT_LE(live(), 1000u);
  EXPECT_GE(live(), 990u) << "the limit is reachable, not just a bound";
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(s.cl->unsafe_set("u" + std::to_string(i), "v"));
  ASSERT_TRUE(s.cl->get("u1999"));  // ordered after the unsafe sets
  EXPECT_LE(live(), 1000u);
  const pid old_master = *s.self->master("db");
  s.self->rt().exit(old_master, exit_reason::kill());
  ASSERT_TRUE(test::eventually([&] { return s.self->master("db") && *s.self->master("db") != old_master; }));
  items.clear();
  for (int i = 0; i < 2000; ++i) items.emplace_back("b" + std::to_string(i), "v");
  EXPECT_EQ(s.cl->mset(items).code(), errc::too_many_keys);
  EXPECT_LE(live(), 1000u) << "a new master keeps the limit";
}

TEST(Embedded, MsetChecksEveryItemBeforeItStoresAny) {
  single s({.limits = {.max_key_bytes = 8, .max_value_bytes = 16}}, 2);
  std::vector<std::pair<std::string, std::string>> items{{"a", "1"}, {"b", "2"}, {"c", std::string(17, 'x')}};
  EXPECT_EQ(s.cl->mset(items).code(), errc::value_too_large);
  EXPECT_FALSE(*s.cl->exists("a")) << "nothing of a refused batch is stored";
}

}  // namespace
}  // namespace panal

namespace panal {
namespace {

// Kills the one process of `which` (servers or data) and waits for its
// restart to join its group; false if none came back in time.
bool kill_and_wait(node& n, runtime& rt, bool data) {
  auto now = [&] {
    auto g = n.groups("db");
    return data ? g.data : g.servers;
  };
  auto before = now();
  if (before.size() != 1) return false;
  rt.exit(before[0], exit_reason::kill());
  return test::eventually([&] {
    auto after = now();
    return after.size() == 1 && after[0] != before[0];
  });
}

TEST(Embedded, RoleProcessesComeBackAsTheSameMembersWhenTheirSupervisorGivesUp) {
  single s({}, 1);
  runtime& rt = s.self->rt();
  ASSERT_TRUE(s.cl->set("k", "v"));
  // 12 kills in a row: the role supervisor (10 restarts in 10 s) gives up
  // at the 11th; db:db restarts it, with its roster, so the process is back.
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(kill_and_wait(*s.self, rt, true)) << "data kill " << i;
  // Then 12 master kills at once, while the only member still refills: a
  // new master took the member for a draining one (not eligible in the map
  // it recovered) and left every slot without a primary.
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(kill_and_wait(*s.self, rt, false)) << "server kill " << i;
  auto st = s.self->stats("db");
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].index, 1u) << "the same member (data1), not a new one";
  // The client and the database work, and more data processes can start.
  EXPECT_TRUE(test::eventually([&] { return s.cl->set("k2", "v2").ok(); })) << s.cl->set("k2", "v2").err();
  auto more = s.self->start_data("db", {}, 1);
  ASSERT_TRUE(more) << more.err();
  EXPECT_TRUE(test::eventually([&] { return s.self->stats("db").size() == 2; }));
}

}  // namespace
}  // namespace panal
