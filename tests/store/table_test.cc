#include "store/table.h"

#include <gtest/gtest.h>

#include <string>

#include "store/limits.h"

namespace panal::store {
namespace {

TEST(Table, PutFindUpdateRemove) {
  table t;
  EXPECT_EQ(*t.put("k", "v1", 10), put_outcome::inserted);
  auto e = t.find("k");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, "v1");
  EXPECT_EQ(e->version, 10u);
  EXPECT_EQ(*t.put("k", "v2", 11), put_outcome::updated);
  EXPECT_EQ(t.find("k")->value, "v2");
  EXPECT_EQ(*t.remove("k", 12), put_outcome::updated);
  EXPECT_TRUE(t.find("k")->tombstone);
  EXPECT_EQ(t.live_keys(), 0u);
  EXPECT_EQ(t.entries(), 1u) << "a removal leaves a tombstone";
  EXPECT_FALSE(t.find("other"));
}

TEST(Table, LastWriteWinsWhateverTheArrivalOrder) {
  table a, b;
  // The same three writes, in two orders.
  ASSERT_TRUE(a.put("k", "old", 1));
  ASSERT_TRUE(a.put("k", "new", 3));
  ASSERT_TRUE(a.remove("k", 2));
  ASSERT_TRUE(b.remove("k", 2));
  ASSERT_TRUE(b.put("k", "new", 3));
  EXPECT_EQ(*b.put("k", "old", 1), put_outcome::stale);
  EXPECT_EQ(a.find("k")->value, "new");
  EXPECT_EQ(b.find("k")->value, "new");
  EXPECT_EQ(*a.put("k", "same version", 3), put_outcome::stale);
}

TEST(Table, GrowsAndKeepsEverything) {
  table t;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(t.put("key" + std::to_string(i), std::to_string(i), 1));
  EXPECT_EQ(t.live_keys(), 100000u);
  for (int i = 0; i < 100000; i += 997) EXPECT_EQ(t.find("key" + std::to_string(i))->value, std::to_string(i));
  std::size_t seen = 0;
  t.for_each([&](const entry_view&) { ++seen; });
  EXPECT_EQ(seen, 100000u);
}

TEST(Table, MemoryAccountingFollowsTheData) {
  table t;
  const auto empty = t.memory_bytes();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(t.put("key" + std::to_string(i), std::string(100, 'x'), 1));
  const auto full = t.memory_bytes();
  EXPECT_GE(full - empty, 1000u * 100) << "values must be counted";
  EXPECT_LE(full - empty, 1000u * 300) << "overhead per entry must stay small";
  EXPECT_EQ(t.erase_if([](std::string_view) { return true; }), 1000u);
  EXPECT_EQ(t.entries(), 0u);
  EXPECT_LE(t.memory_bytes(), full - 1000u * 100);
}

TEST(Table, MemoryLimitRefusesBeforeChangingAnything) {
  table t(64 * 1024);
  std::size_t stored = 0;
  for (int i = 0; i < 10000; ++i) {
    auto r = t.put("key" + std::to_string(i), std::string(100, 'x'), 1);
    if (!r) {
      EXPECT_EQ(r.code(), errc::out_of_memory);
      break;
    }
    ++stored;
  }
  EXPECT_GT(stored, 100u);
  EXPECT_LT(stored, 10000u);
  EXPECT_LE(t.memory_bytes(), 64u * 1024);
  EXPECT_EQ(t.live_keys(), stored);
  // Overwriting with a smaller value still works at the limit.
  EXPECT_TRUE(t.put("key0", "small", 2));
}

TEST(Limits, KeyAndValueSizes) {
  limits l{.max_key_bytes = 4, .max_value_bytes = 8};
  EXPECT_TRUE(check_key(l, "abcd"));
  EXPECT_EQ(check_key(l, "abcde").code(), errc::key_too_large);
  EXPECT_EQ(check_key(l, "").code(), errc::bad_argument);
  EXPECT_TRUE(check_value(l, "12345678"));
  EXPECT_EQ(check_value(l, "123456789").code(), errc::value_too_large);
}

}  // namespace
}  // namespace panal::store
