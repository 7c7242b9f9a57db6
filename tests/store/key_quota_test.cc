#include "store/key_quota.h"

#include <gtest/gtest.h>

namespace panal::store {
namespace {

TEST(KeyQuota, NothingIsGrantedUntilEverySlotIsKnown) {
  key_quota q(1000, 4);
  q.tokens(1, 0, 0);
  EXPECT_EQ(q.grant(1, 100), 0u);
  for (std::uint32_t s = 0; s < 4; ++s) q.count(s, 10);
  EXPECT_EQ(q.grant(1, 100), 100u);
  EXPECT_EQ(q.used(), 140u);
}

TEST(KeyQuota, GrantsNeverPassTheLimit) {
  key_quota q(1000, 2);
  q.count(0, 300);
  q.count(1, 300);
  q.tokens(1, 0, 0);
  q.tokens(2, 0, 0);
  EXPECT_EQ(q.grant(1, 256), 256u);
  EXPECT_EQ(q.grant(2, 256), 144u);
  EXPECT_EQ(q.grant(1, 256), 0u);
  EXPECT_EQ(q.used(), 1000u);
  // Member 1 used 200 of its tokens for inserts into slot 0 and says so.
  q.count(0, 500);
  q.tokens(1, 56, 256);
  EXPECT_EQ(q.used(), 1000u) << "tokens became keys: nothing freed";
  q.count(1, 100);  // 200 keys removed
  EXPECT_EQ(q.grant(2, 500), 200u);
}

TEST(KeyQuota, GrantsOnTheirWayStillCount) {
  key_quota q(100, 1);
  q.count(0, 0);
  q.tokens(1, 0, 0);
  EXPECT_EQ(q.grant(1, 60), 60u);
  // The member reports before the grant reached it: it still counts.
  q.tokens(1, 0, 0);
  EXPECT_EQ(q.used(), 60u);
  EXPECT_EQ(q.grant(1, 60), 40u);
}

TEST(KeyQuota, AChangeOfPrimaryHidesTheSlotUntilReported) {
  key_quota q(100, 2);
  q.count(0, 10);
  q.count(1, 10);
  q.tokens(1, 0, 0);
  q.unknown(1);
  EXPECT_FALSE(q.known());
  EXPECT_EQ(q.grant(1, 10), 0u);
  q.count(1, 50);
  EXPECT_EQ(q.grant(1, 100), 40u);
}

TEST(KeyQuota, ANewMasterCountsWhatMembersReceivedFromTheOldOne) {
  key_quota q(100, 1);
  q.count(0, 20);
  // This member got 30 tokens from an earlier master, holds 30 now.
  q.tokens(1, 30, 30);
  EXPECT_EQ(q.used(), 50u);
  EXPECT_EQ(q.grant(1, 100), 50u);
  q.tokens(1, 80, 80);  // the grant arrived
  EXPECT_EQ(q.used(), 100u);
}

}  // namespace
}  // namespace panal::store
