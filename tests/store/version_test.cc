#include "store/version.h"

#include <gtest/gtest.h>

namespace panal::store {
namespace {

TEST(Version, EpochFirstThenClock) {
  EXPECT_LT((version{1, 999999}), (version{2, 1}));
  EXPECT_LT((version{2, 1}), (version{2, 2}));
  EXPECT_EQ((version{2, 2}), (version{2, 2}));
}

TEST(VersionClock, StrictlyIncreasingAndCarriesItsTag) {
  version_clock c(0x3ff);
  version last{};
  for (int i = 0; i < 100000; ++i) {
    auto v = c.next(1);
    ASSERT_LT(last, v);
    ASSERT_EQ(v.hlc & 0x3ff, 0x3ffu);
    last = v;
  }
}

TEST(VersionClock, StaysAboveWhatItSawAndWhatIsStored) {
  version_clock c(1);
  const auto now = c.next(5);
  // A version from a clock minutes ahead.
  const std::uint64_t ahead = (now.hlc >> 22) + 10 * 60 * 1000;
  const version seen{5, (ahead << 22) | 7};
  c.observe(seen);
  EXPECT_LT(seen, c.next(5));
  version_clock d(2);
  EXPECT_LT(seen, d.next(5, seen)) << "above the stored version of the same epoch";
  EXPECT_LT(seen, d.next(6)) << "a later epoch wins whatever the clock";
  version_clock fresh(3);
  EXPECT_NEAR(static_cast<double>(version_clock::millis_of(fresh.next(6).hlc)),
              static_cast<double>(version_clock::now_millis()), 2000.0);
}

}  // namespace
}  // namespace panal::store
