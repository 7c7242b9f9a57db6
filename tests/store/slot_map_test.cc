#include "store/slot_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "store/hash.h"

namespace panal::store {
namespace {

std::vector<std::uint64_t> ids(std::size_t n, std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> out(n);
  for (auto& x : out) x = rng();
  return out;
}

TEST(KeyHash, IsXxh3AndStable) {
  EXPECT_EQ(key_hash(""), 0x2d06800538d394c2ull);  // XXH3-64 of the empty input, seed 0
  EXPECT_EQ(key_hash("panal"), key_hash(std::string("panal")));
  EXPECT_NE(key_hash("a"), key_hash("b"));
}

TEST(SlotMap, OwnersAreTheSameWhateverTheOrderOfMembers) {
  auto m = ids(5);
  slot_map a(1024, 2), b(1024, 2);
  a.set_members(m);
  std::reverse(m.begin(), m.end());
  b.set_members(m);
  for (std::uint32_t s = 0; s < 1024; ++s) {
    ASSERT_TRUE(std::equal(a.owners(s).begin(), a.owners(s).end(), b.owners(s).begin(), b.owners(s).end()));
    ASSERT_EQ(a.owners(s).size(), 2u);
    ASSERT_NE(a.owners(s)[0], a.owners(s)[1]);
  }
}

TEST(SlotMap, NoMembersNoOwners) {
  slot_map m;
  EXPECT_TRUE(m.owners(3).empty());
  EXPECT_EQ(m.primary(3), 0u);
}

TEST(SlotMap, TenThousandKeysSpreadWithinTenPercentOverFiveMembers) {
  // Several member sets: the promise holds for any pids, not one lucky set.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    slot_map map;
    map.set_members(ids(5, seed));
    std::map<std::uint64_t, int> per;
    for (int k = 0; k < 10000; ++k) ++per[map.primary(map.slot_of("key:" + std::to_string(k)))];
    ASSERT_EQ(per.size(), 5u);
    for (auto& [member, n] : per) {
      EXPECT_GE(n, 1800) << "seed " << seed;
      EXPECT_LE(n, 2200) << "seed " << seed;
    }
  }
}

TEST(SlotMap, AddingAMemberMovesAboutOneNthOfTheSlotsAndOnlyToIt) {
  for (std::size_t n = 2; n <= 8; ++n) {
    auto m = ids(n + 1, n);
    slot_map before, after;
    before.set_members({m.begin(), m.end() - 1});
    after.set_members(m);
    std::uint32_t moved = 0;
    for (std::uint32_t s = 0; s < before.slot_count(); ++s) {
      if (before.primary(s) != after.primary(s)) {
        ++moved;
        EXPECT_EQ(after.primary(s), m.back()) << "a slot moved between old members";
      }
    }
    const double share = static_cast<double>(moved) / before.slot_count();
    const double expected = 1.0 / static_cast<double>(n + 1);
    EXPECT_NEAR(share, expected, 0.2 * expected) << "n=" << n << " moved " << moved;
  }
}

}  // namespace
}  // namespace panal::store
