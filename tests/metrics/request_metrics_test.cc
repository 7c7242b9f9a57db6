#include "metrics/request_metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace panal::metrics {
namespace {

using b = latency_buckets;

TEST(LatencyBuckets, EveryLatencyFallsInTheBucketWhoseBoundsHoldIt) {
  for (std::uint64_t us = 0; us < (1u << 20); us = us < 64 ? us + 1 : us + us / 7) {
    const unsigned i = b::index_of(us);
    ASSERT_LT(i, b::count);
    EXPECT_LT(us, b::upper_bound(i)) << us;
    if (i > 0) {
      EXPECT_GE(us, b::upper_bound(i - 1)) << us;
    }
  }
}

TEST(LatencyBuckets, AreAtMostAQuarterWide) {
  for (unsigned i = b::sub; i + 1 < b::count; ++i) {
    const std::uint64_t lower = b::upper_bound(i - 1), upper = b::upper_bound(i);
    EXPECT_GT(upper, lower);
    EXPECT_LE((upper - lower) * 4, lower) << i;  // width <= 25% of the lower bound
  }
}

TEST(LatencyBuckets, HugeLatenciesLandInTheLastBucket) {
  EXPECT_EQ(b::index_of(~std::uint64_t{0}), b::count - 1);
  EXPECT_EQ(b::index_of(std::uint64_t{1} << 40), b::count - 1);
}

TEST(RequestMetrics, CountsByOperationAndCodeAndSumsTheShards) {
  request_metrics m(3);
  for (int i = 0; i < 90; ++i) m.at(i % 3).record(1, 0, 10);  // get ok
  m.at(1).record(2, 20, 0);                                    // set key_too_large
  m.at(2).record(2, 999, 5);                                   // an unknown code counts as the last
  m.at(0).record(77, 0, 5);                                    // an unknown op counts as "other"
  const auto t = m.read();
  EXPECT_EQ(t.ops[1].total(), 90u);
  EXPECT_EQ(t.ops[1].by_code[0], 90u);
  EXPECT_EQ(t.ops[1].latency_sum_us, 900u);
  EXPECT_EQ(t.ops[2].by_code[20], 1u);
  EXPECT_EQ(t.ops[2].by_code[kCodes - 1], 1u);
  EXPECT_EQ(t.ops[0].total(), 1u);
}

TEST(RequestMetrics, ALatencyOnABoundaryCountsAtOrBelowIt) {
  request_metrics m(1);
  m.at(0).record(1, 0, b::upper_bound(7));  // exactly on a boundary: le includes it
  const auto t = m.read();
  EXPECT_EQ(t.ops[1].latency[7], 1u);
  EXPECT_EQ(t.ops[1].quantile_us(1.0), b::upper_bound(7));
}

TEST(RequestMetrics, QuantilesAreTheBucketBoundAboveTheTrueValue) {
  request_metrics m(1);
  for (std::uint64_t us = 1; us <= 1000; ++us) m.at(0).record(1, 0, us);
  const auto t = m.read();
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double truth = q * 1000;
    const auto got = static_cast<double>(t.ops[1].quantile_us(q));
    EXPECT_GE(got, truth) << q;
    EXPECT_LE(got, truth * 1.25 + 1) << q;
  }
  EXPECT_EQ(op_totals{}.quantile_us(0.99), 0u);
}

TEST(RequestMetrics, ReadingWhileEveryShardWritesSeesMonotoneCounts) {
  request_metrics m(2);
  constexpr int kEach = 200000;
  std::thread writers[2];
  for (int w = 0; w < 2; ++w) {
    writers[w] = std::thread([&m, w] {
      for (int i = 0; i < kEach; ++i) m.at(w).record(3, 0, 1);
    });
  }
  std::uint64_t last = 0;
  for (int r = 0; r < 1000; ++r) {
    const auto now = m.read().ops[3].total();
    ASSERT_GE(now, last);
    last = now;
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(m.read().ops[3].total(), 2u * kEach);
}

}  // namespace
}  // namespace panal::metrics
