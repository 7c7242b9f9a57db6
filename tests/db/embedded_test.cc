// A database on one embedded node: every operation, every limit, failover of
// the master, restart of a data process. (Clusters: tests/cluster.)
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace panal
