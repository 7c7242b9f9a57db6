#include "store/version.h"

#include <algorithm>
#include <chrono>

namespace panal::store {

namespace {
constexpr std::uint64_t kTagBits = 10;
constexpr std::uint64_t kLogicalBits = 12;
constexpr std::uint64_t kEpoch2020Ms = 1577836800000ull;  // 2020-01-01T00:00:00Z
}  // namespace

version_clock::version_clock(std::uint64_t member) : tag_(member & ((1u << kTagBits) - 1)) {}

std::uint64_t version_clock::now_millis() {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return ms > kEpoch2020Ms ? ms - kEpoch2020Ms : 0;
}

version version_clock::next(std::uint32_t epoch, const version& stored) { return next_at(now_millis(), epoch, stored); }

version version_clock::next_at(std::uint64_t now_ms, std::uint32_t epoch, const version& stored) {
  std::uint64_t t = std::max(now_ms << kLogicalBits, last_ + 1);
  // Within one epoch only this clock stamps the slot; still, never go below
  // what is stored (a version seen before this clock was created).
  if (stored.epoch == epoch) t = std::max(t, (stored.hlc >> kTagBits) + 1);
  last_ = t;
  return {epoch, (t << kTagBits) | tag_};
}

void version_clock::observe(const version& seen) { last_ = std::max(last_, seen.hlc >> kTagBits); }

}  // namespace panal::store
