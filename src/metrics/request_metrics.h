// Request counters and latency histograms of one node, written on the
// request path without locks.
//
// Promises:
// - record() is a handful of relaxed loads and stores on memory that only
//   the calling shard writes: no lock, no atomic read-modify-write, no
//   allocation. Each shard lives on its own cache lines.
// - read() sums every shard. It may run on any thread at any time; a sum
//   taken while requests are recorded is a consistent-enough view for
//   monitoring (each counter is exact, counters may be a moment apart).
// - Latencies are kept in log-linear buckets (HdrHistogram style): four
//   per power of two of microseconds, so a reported quantile is at most
//   25% above the true one. From 1 µs to 2^29 µs (about 9 minutes); longer
//   ones count in the last bucket.
//
// Thread-safety: a shard has a single writer (the scheduler thread it
// belongs to: the processes of one thread run one at a time); read() from
// any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace panal::metrics {

// The operations counted, as the client protocol numbers them (1..5).
inline constexpr unsigned kOps = 6;
inline constexpr const char* kOpNames[kOps] = {"other", "get", "set", "remove", "exists", "unsafe_set"};
// Error codes counted one by one; higher ones count as the last.
inline constexpr unsigned kCodes = 32;

// Log-linear buckets of microseconds.
struct latency_buckets {
  static constexpr unsigned sub = 4;  // buckets per power of two
  static constexpr unsigned count = 112;
  // The bucket of a latency in microseconds.
  static unsigned index_of(std::uint64_t us) {
    if (us < sub) return static_cast<unsigned>(us);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(us));
    const unsigned i = sub * (msb - 1) + static_cast<unsigned>((us >> (msb - 2)) & (sub - 1));
    return i < count ? i : count - 1;
  }
  // The first latency (µs) above bucket `i`.
  static std::uint64_t upper_bound(unsigned i) {
    if (i < sub) return i + 1;
    const unsigned msb = i / sub + 1;
    return (std::uint64_t{sub} + 1 + i % sub) << (msb - 2);
  }
};

// A counter with one writer: a relaxed load and store, readable anywhere.
class counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

struct op_totals {
  std::array<std::uint64_t, kCodes> by_code{};  // index 0: ok
  std::array<std::uint64_t, latency_buckets::count> latency{};
  std::uint64_t latency_sum_us = 0;
  std::uint64_t total() const;
  // The latency (µs, a bucket's upper bound) at or below which a fraction
  // `q` of the requests fall; 0 without requests.
  std::uint64_t quantile_us(double q) const;
};

struct request_totals {
  std::array<op_totals, kOps> ops;
};

class request_metrics {
 public:
  class alignas(64) shard {
   public:
    // One answered request: its operation (client-protocol number), its
    // error code (0: ok) and how long it took from send to answer.
    void record(unsigned op, unsigned code, std::uint64_t latency_us) {
      op_counters& c = ops_[op < kOps ? op : 0];
      c.by_code[code < kCodes ? code : kCodes - 1].add();
      // Shifted by one: a bucket holds (its lower bound, its upper bound],
      // as a Prometheus `le` boundary includes its value.
      c.latency[latency_buckets::index_of(latency_us == 0 ? 0 : latency_us - 1)].add();
      c.latency_sum_us.add(latency_us);
    }

   private:
    friend class request_metrics;
    struct op_counters {
      std::array<counter, kCodes> by_code;
      std::array<counter, latency_buckets::count> latency;
      counter latency_sum_us;
    };
    std::array<op_counters, kOps> ops_;
  };

  explicit request_metrics(unsigned shards);
  shard& at(unsigned index) { return *shards_[index % shards_.size()]; }
  request_totals read() const;

 private:
  std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace panal::metrics
