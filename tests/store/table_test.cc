#include "store/table.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/hash.h"
#include "store/limits.h"

namespace panal::store {
namespace {

version v(std::uint64_t n, std::uint32_t epoch = 1) { return {epoch, n}; }

TEST(Table, PutFindUpdateRemove) {
  table t;
  EXPECT_EQ(*t.put("k", "v1", v(10)), put_outcome::inserted);
  auto e = t.find("k");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value, "v1");
  EXPECT_EQ(e->version, v(10));
  EXPECT_EQ(*t.put("k", "v2", v(11)), put_outcome::updated);
  EXPECT_EQ(t.find("k")->value, "v2");
  EXPECT_EQ(*t.remove("k", v(12)), put_outcome::updated);
  EXPECT_TRUE(t.find("k")->tombstone);
  EXPECT_EQ(t.live_keys(), 0u);
  EXPECT_EQ(t.entries(), 1u) << "a removal leaves a tombstone";
  EXPECT_FALSE(t.find("other"));
}

TEST(Table, LastWriteWinsWhateverTheArrivalOrder) {
  table a, b;
  // The same three writes, in two orders.
  ASSERT_TRUE(a.put("k", "old", v(1)));
  ASSERT_TRUE(a.put("k", "new", v(3)));
  ASSERT_TRUE(a.remove("k", v(2)));
  ASSERT_TRUE(b.remove("k", v(2)));
  ASSERT_TRUE(b.put("k", "new", v(3)));
  EXPECT_EQ(*b.put("k", "old", v(1)), put_outcome::stale);
  EXPECT_EQ(a.find("k")->value, "new");
  EXPECT_EQ(b.find("k")->value, "new");
  EXPECT_EQ(*a.put("k", "same version", v(3)), put_outcome::stale);
}

TEST(Table, GrowsAndKeepsEverything) {
  table t;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(t.put("key" + std::to_string(i), std::to_string(i), v(1)));
  EXPECT_EQ(t.live_keys(), 100000u);
  for (int i = 0; i < 100000; i += 997) EXPECT_EQ(t.find("key" + std::to_string(i))->value, std::to_string(i));
  std::size_t seen = 0;
  t.for_each([&](const entry_view&) { ++seen; });
  EXPECT_EQ(seen, 100000u);
}

TEST(Table, MemoryAccountingFollowsTheData) {
  table t;
  const auto empty = t.memory_bytes();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(t.put("key" + std::to_string(i), std::string(100, 'x'), v(1)));
  const auto full = t.memory_bytes();
  EXPECT_GE(full - empty, 1000u * 100) << "values must be counted";
  EXPECT_LE(full - empty, 1000u * 300) << "overhead per entry must stay small";
  std::size_t dropped = 0;
  for (std::uint32_t s = 0; s < t.slot_count(); ++s) dropped += t.drop_slot(s);
  EXPECT_EQ(dropped, 1000u);
  EXPECT_EQ(t.entries(), 0u);
  EXPECT_LE(t.memory_bytes(), full - 1000u * 100);
}

TEST(Table, MemoryLimitRefusesBeforeChangingAnything) {
  table t(16384, 64 * 1024);
  std::size_t stored = 0;
  for (int i = 0; i < 10000; ++i) {
    auto r = t.put("key" + std::to_string(i), std::string(100, 'x'), v(1));
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
  EXPECT_TRUE(t.put("key0", "small", v(2)));
}

TEST(Table, AnEpochBeatsAnyClock) {
  table t;
  // A later primary's write wins over an earlier one's, whatever their clocks.
  ASSERT_TRUE(t.put("k", "from a fast clock", version{3, 1'000'000}));
  EXPECT_EQ(*t.put("k", "later primary, slow clock", version{4, 5}), put_outcome::updated);
  EXPECT_EQ(*t.put("k", "late arrival from the old primary", version{3, 2'000'000}), put_outcome::stale);
  EXPECT_EQ(t.find("k")->value, "later primary, slow clock");
}

TEST(Table, SlotsAreSeparateAndStreamable) {
  table t(64);
  std::map<std::uint32_t, std::set<std::string>> by_slot;
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "key" + std::to_string(i);
    ASSERT_TRUE(t.put(k, "v", v(1)));
    by_slot[t.slot_of(key_hash(k))].insert(k);
  }
  for (auto& [s, keys] : by_slot) {
    EXPECT_EQ(t.entries(s), keys.size());
    std::set<std::string> seen;
    table::cursor c;
    int rounds = 0;
    // Small chunks: many calls per slot.
    while (!t.scan(s, c, 200, [&](const entry_view& e) { seen.insert(std::string(e.key)); })) ++rounds;
    EXPECT_GT(rounds, 1);
    EXPECT_EQ(seen, keys) << "slot " << s;
  }
  const std::uint32_t first = by_slot.begin()->first;
  EXPECT_EQ(t.drop_slot(first), by_slot[first].size());
  EXPECT_EQ(t.entries(first), 0u);
  EXPECT_EQ(t.live_keys(), 5000u - by_slot[first].size());
  for (auto& k : by_slot[first]) EXPECT_FALSE(t.find(k));
}

TEST(Table, AScanSeesEveryEntryThatStaysWhileOthersChange) {
  table t(1);  // one slot: every key in it
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(t.put("old" + std::to_string(i), "v", v(1)));
  std::set<std::string> seen;
  table::cursor c;
  int i = 0;
  while (!t.scan(0, c, 2000, [&](const entry_view& e) { seen.insert(std::string(e.key)); })) {
    // Writes between chunks: new keys (the index grows, the scan restarts), removals.
    for (int j = 0; j < 20; ++j, ++i) ASSERT_TRUE(t.put("new" + std::to_string(i), "v", v(1)));
    ASSERT_TRUE(t.remove("old" + std::to_string(i % 2000), v(2)));
  }
  for (int k = 0; k < 2000; ++k) EXPECT_TRUE(seen.count("old" + std::to_string(k))) << k;
}

TEST(Table, SlotDigestsAgreeExactlyWhenTheSlotsHoldTheSameEntries) {
  // Two copies get the same writes in opposite orders, stale ones, growth
  // of the index and in-place rewrites included.
  struct write {
    std::string key;
    std::uint64_t n;
    bool remove;
  };
  std::vector<write> writes;
  for (int i = 0; i < 3000; ++i) {
    writes.push_back({"k" + std::to_string(i % 700), static_cast<std::uint64_t>(i / 700 + 1), i % 5 == 0});
  }
  table a(4), b(4);
  for (auto& w : writes) ASSERT_TRUE(w.remove ? a.remove(w.key, v(w.n)) : a.put(w.key, "val" + w.key, v(w.n)));
  for (auto it = writes.rbegin(); it != writes.rend(); ++it) {
    ASSERT_TRUE(it->remove ? b.remove(it->key, v(it->n)) : b.put(it->key, "val" + it->key, v(it->n)));
  }
  for (std::uint32_t s = 0; s < 4; ++s) {
    EXPECT_NE(a.digest(s), 0u);
    EXPECT_EQ(a.digest(s), b.digest(s)) << "slot " << s;
  }
  // One newer version, one missing entry, one purged tombstone: only that slot differs.
  const std::string k = "k1";
  const std::uint32_t s = a.slot_of(key_hash(k));
  const std::uint64_t before = a.digest(s);
  ASSERT_TRUE(a.put(k, "newer", v(99)));
  EXPECT_NE(a.digest(s), b.digest(s));
  ASSERT_TRUE(b.put(k, "newer", v(99)));
  EXPECT_EQ(a.digest(s), b.digest(s));
  EXPECT_NE(a.digest(s), before);
  ASSERT_TRUE(a.put("only-in-a", "x", v(1)));
  EXPECT_NE(a.digest(a.slot_of(key_hash("only-in-a"))), b.digest(a.slot_of(key_hash("only-in-a"))));
  ASSERT_TRUE(a.remove("only-in-a", v(2)));
  ASSERT_TRUE(b.remove("only-in-a", v(2)));
  EXPECT_EQ(a.digest(a.slot_of(key_hash("only-in-a"))), b.digest(a.slot_of(key_hash("only-in-a"))))
      << "b never saw the put, but holds the same tombstone";
  ASSERT_TRUE(a.purge("only-in-a", key_hash("only-in-a"), v(2)));
  EXPECT_NE(a.digest(a.slot_of(key_hash("only-in-a"))), b.digest(a.slot_of(key_hash("only-in-a"))));
  ASSERT_TRUE(b.purge("only-in-a", key_hash("only-in-a"), v(2)));
  for (std::uint32_t x = 0; x < 4; ++x) EXPECT_EQ(a.digest(x), b.digest(x));
  a.drop_slot(s);
  EXPECT_EQ(a.digest(s), 0u);
}

TEST(Table, PurgeFreesATombstoneOnlyAtItsVersion) {
  table t;
  ASSERT_TRUE(t.put("k", "v", v(1)));
  ASSERT_TRUE(t.remove("k", v(2)));
  const auto before = t.memory_bytes();
  EXPECT_FALSE(t.purge("k", key_hash("k"), v(3))) << "not that version";
  EXPECT_TRUE(t.purge("k", key_hash("k"), v(2)));
  EXPECT_FALSE(t.find("k"));
  EXPECT_EQ(t.entries(), 0u);
  EXPECT_LT(t.memory_bytes(), before);
  ASSERT_TRUE(t.put("live", "v", v(1)));
  EXPECT_FALSE(t.purge("live", key_hash("live"), v(1))) << "a live value is never purged";
}

TEST(Table, RemovingAndPurgingManyKeysGivesTheMemoryBack) {
  table t(16);
  const auto empty = t.memory_bytes();
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20000; ++i) ASSERT_TRUE(t.put("k" + std::to_string(i), "value", v(round * 3 + 1)));
    for (int i = 0; i < 20000; ++i) {
      const std::string k = "k" + std::to_string(i);
      ASSERT_TRUE(t.remove(k, v(round * 3 + 2)));
      ASSERT_TRUE(t.purge(k, key_hash(k), v(round * 3 + 2)));
    }
  }
  EXPECT_EQ(t.entries(), 0u);
  // The indexes keep their size (no shrinking), the entries are gone.
  EXPECT_LT(t.memory_bytes() - empty, 20000u * 16);
}

TEST(Table, AnUpdateThatFitsReusesItsEntry) {
  table t;
  ASSERT_TRUE(t.put("k", std::string(40, 'a'), v(1)));
  const char* before = t.find("k")->key.data();
  ASSERT_TRUE(t.put("k", std::string(40, 'b'), v(2)));
  EXPECT_EQ(t.find("k")->key.data(), before) << "same size: rewritten in place";
  EXPECT_EQ(t.find("k")->value, std::string(40, 'b'));
  ASSERT_TRUE(t.put("k", std::string(400, 'c'), v(3)));
  EXPECT_EQ(t.find("k")->value, std::string(400, 'c'));
}

// Keys of 256 bytes and more, values of 4 MiB and more, take the long
// form of an entry's header; an update that changes the form (in either
// direction, as a value or a tombstone) keeps key, value and version exact,
// next to short entries.
TEST(Table, LongKeysAndValuesRoundTripAndChangeForm) {
  table t;
  const std::string long_key(300, 'K'), edge_key(255, 'e'), big(4u << 20, 'B'), edge(
      (4u << 20) - 1, 'E');
  std::uint64_t n = 1;
  auto check = [&](const std::string& k, const std::string& value) {
    auto e = t.find(k);
    ASSERT_TRUE(e) << k.size();
    EXPECT_FALSE(e->tombstone);
    EXPECT_EQ(e->key, k);
    EXPECT_EQ(e->value.size(), value.size());
    EXPECT_TRUE(e->value == value) << k.size() << " / " << value.size();
    EXPECT_EQ(e->version, v(n - 1));
  };
  for (const std::string& k : {std::string("short"), edge_key, long_key}) {
    for (const std::string* value : {&big, &edge, &long_key, &big}) {  // long <-> short, both ways
      ASSERT_TRUE(t.put(k, *value, v(n++)));
      check(k, *value);
    }
    ASSERT_TRUE(t.remove(k, v(n++)));
    EXPECT_TRUE(t.find(k)->tombstone);
    EXPECT_EQ(t.find(k)->key, k);
    ASSERT_TRUE(t.put(k, "small", v(n++)));
    check(k, "small");
  }
  EXPECT_EQ(t.live_keys(), 3u);
  std::set<std::string> seen;
  t.for_each([&](const entry_view& e) { seen.insert(std::string(e.key)); });
  EXPECT_EQ(seen, (std::set<std::string>{"short", edge_key, long_key}));
}

// The common entry (16-byte key, 32-byte value) asks for 64 bytes, one
// allocator class and one cache line (a 24-byte header made it 72, in an
// 80-byte class); long lengths cost 8 bytes more.
TEST(Table, EntrySizes) {
  EXPECT_EQ(table::entry_size(16, 32), 64u);
  EXPECT_EQ(table::entry_size(255, (4u << 20) - 1), 16u + 255 + (4u << 20) - 1);
  EXPECT_EQ(table::entry_size(256, 0), 16u + 8 + 256);
  EXPECT_EQ(table::entry_size(1, 4u << 20), 16u + 8 + 1 + (4u << 20));
}

TEST(Table, ProbesStayShortWhateverTheSlotCount) {
  // Each slot's index uses hash bits that are not the slot's, so a data
  // process holding a fraction of the slots still spreads its keys.
  for (std::uint32_t slots : {1u, 7u, 16384u}) {
    table t(slots);
    for (int i = 0; i < 200000; ++i) ASSERT_TRUE(t.put("key:" + std::to_string(i), "v", v(1)));
    const auto p = t.probe_lengths();
    EXPECT_LT(p.mean, 4.0) << slots << " slots";
    EXPECT_LT(p.longest, 400u) << slots << " slots";
  }
}

TEST(Limits, KeyAndValueSizes) {
  limits l{.max_key_bytes = 4, .max_value_bytes = 8};
  EXPECT_TRUE(check_key(l, "abcd"));
  EXPECT_EQ(check_key(l, "abcde").code(), errc::key_too_large);
  EXPECT_EQ(check_key(l, "").code(), errc::bad_argument);
  EXPECT_TRUE(check_value(l, "12345678"));
  EXPECT_EQ(check_value(l, "123456789").code(), errc::value_too_large);
}

TEST(Table, PrefetchChangesNothingForHeldAbsentOrUnseenSlots) {
  table t;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(t.put("k" + std::to_string(i), "v", v(1)));
  ASSERT_TRUE(t.remove("k7", v(2)));
  for (const std::string key : {"k1", "k7", "k999", "absent", "never-seen-slot"}) {
    const auto h = key_hash(key);
    for (int stage = 0; stage < 3; ++stage) t.prefetch(h, stage);
  }
  table empty;
  for (int stage = 0; stage < 3; ++stage) empty.prefetch(key_hash("x"), stage);
  EXPECT_EQ(t.find("k1")->value, "v");
  EXPECT_TRUE(t.find("k7")->tombstone);
  EXPECT_FALSE(t.find("absent"));
  EXPECT_EQ(t.live_keys(), 999u);
}

}  // namespace
}  // namespace panal::store
