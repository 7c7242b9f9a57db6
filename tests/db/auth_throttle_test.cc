#include "db/auth_throttle.h"

#include <gtest/gtest.h>

namespace panal::db {
namespace {

using namespace std::chrono_literals;
using clock = auth_throttle::clock;

TEST(AuthThrottle, AFailureMakesTheNextAttemptsFromThatAddressTakeTurns) {
  auth_throttle t(250ms, 1s);
  const auto now = clock::now();
  EXPECT_EQ(t.admit("a", now), now) << "no failure yet: at once";
  t.fail("a", now);
  EXPECT_EQ(t.admit("b", now), now) << "another address is not slowed";
  EXPECT_EQ(t.admit("a", now), now + 250ms);
  EXPECT_EQ(t.admit("a", now), now + 500ms) << "each waiting attempt has its own turn";
  EXPECT_EQ(t.admit("a", now), now + 750ms);
  EXPECT_EQ(t.admit("a", now), now + 1000ms);
  EXPECT_EQ(t.admit("a", now), std::nullopt) << "more than max_wait queued: refused";
  EXPECT_EQ(t.admit("a", now + 2s), now + 2s) << "the penalty is over once its turns have passed";
}

TEST(AuthThrottle, ManyAddressesShareOneEntryOnceTheTableIsFull) {
  auth_throttle t(250ms, 1s, 4);
  const auto now = clock::now();
  for (int i = 0; i < 4; ++i) t.fail("a" + std::to_string(i), now);
  EXPECT_EQ(t.addresses(), 4u);
  t.fail("x", now);  // the table is full and nobody's penalty is over: shared
  EXPECT_EQ(t.addresses(), 4u);
  EXPECT_EQ(t.admit("y", now), now + 250ms) << "a new address waits behind the shared penalty";
  // Later, penalties that are over make room.
  t.fail("z", now + 10s);
  EXPECT_EQ(t.addresses(), 1u);
  EXPECT_EQ(t.admit("a0", now + 10s), now + 10s);
}

}  // namespace
}  // namespace panal::db
