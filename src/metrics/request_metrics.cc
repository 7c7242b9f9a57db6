#include "metrics/request_metrics.h"

#include <algorithm>
#include <numeric>

namespace panal::metrics {

std::uint64_t op_totals::total() const { return std::accumulate(by_code.begin(), by_code.end(), std::uint64_t{0}); }

std::uint64_t op_totals::quantile_us(double q) const {
  const std::uint64_t n = std::accumulate(latency.begin(), latency.end(), std::uint64_t{0});
  if (n == 0) return 0;
  // The smallest bucket whose cumulative count reaches q of all (at least one).
  const auto want = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(q * static_cast<double>(n) + 0.999999));
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < latency.size(); ++i) {
    seen += latency[i];
    if (seen >= want) return latency_buckets::upper_bound(i);
  }
  return latency_buckets::upper_bound(latency_buckets::count - 1);
}

request_metrics::request_metrics(unsigned shards) {
  shards_.reserve(std::max(shards, 1u));
  for (unsigned i = 0; i < std::max(shards, 1u); ++i) shards_.push_back(std::make_unique<shard>());
}

request_totals request_metrics::read() const {
  request_totals t;
  for (const auto& s : shards_) {
    for (unsigned o = 0; o < kOps; ++o) {
      const auto& from = s->ops_[o];
      auto& to = t.ops[o];
      for (unsigned c = 0; c < kCodes; ++c) to.by_code[c] += from.by_code[c].get();
      for (unsigned b = 0; b < latency_buckets::count; ++b) to.latency[b] += from.latency[b].get();
      to.latency_sum_us += from.latency_sum_us.get();
    }
  }
  return t;
}

}  // namespace panal::metrics
