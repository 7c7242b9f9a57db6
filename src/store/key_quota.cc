#include "store/key_quota.h"

#include <algorithm>

namespace panal::store {

key_quota::key_quota(std::uint64_t max_keys, std::uint32_t slot_count) : max_(max_keys), live_(slot_count, -1) {
  unknown_ = slot_count;
}

void key_quota::reset() {
  std::fill(live_.begin(), live_.end(), -1);
  unknown_ = static_cast<std::uint32_t>(live_.size());
  live_total_ = 0;
  tokens_.clear();
}

void key_quota::unknown(std::uint32_t slot) {
  if (slot >= live_.size() || live_[slot] < 0) return;
  live_total_ -= static_cast<std::uint64_t>(live_[slot]);
  live_[slot] = -1;
  ++unknown_;
}

void key_quota::count(std::uint32_t slot, std::uint64_t live) {
  if (slot >= live_.size()) return;
  if (live_[slot] < 0) --unknown_;
  else live_total_ -= static_cast<std::uint64_t>(live_[slot]);
  live_[slot] = static_cast<std::int64_t>(live);
  live_total_ += live;
}

void key_quota::tokens(std::uint64_t member, std::uint64_t held, std::uint64_t received) {
  holding& h = tokens_[member];
  if (!h.known) {
    // Its first report to this master: what it received before came from
    // earlier masters and is in `held` already.
    h.known = true;
    h.base = received - std::min(received, h.granted);
  }
  h.held = held;
  h.received = received;
}

void key_quota::forget(std::uint64_t member) { tokens_.erase(member); }

std::uint64_t key_quota::used() const {
  std::uint64_t n = live_total_;
  for (const auto& [m, h] : tokens_) {
    const std::uint64_t arrived = h.received >= h.base ? h.received - h.base : 0;
    n += h.held + (h.granted > arrived ? h.granted - arrived : 0);
  }
  return n;
}

std::vector<std::uint64_t> key_quota::holders_except(std::uint64_t member) const {
  std::vector<std::uint64_t> out;
  for (const auto& [m, h] : tokens_) {
    const std::uint64_t arrived = h.received >= h.base ? h.received - h.base : 0;
    if (m != member && (h.held > 0 || h.granted > arrived)) out.push_back(m);
  }
  return out;
}

std::uint64_t key_quota::grant(std::uint64_t member, std::uint64_t want) {
  if (!known()) return 0;
  const std::uint64_t u = used();
  if (u >= max_) return 0;
  auto it = tokens_.find(member);
  if (it == tokens_.end() || !it->second.known) return 0;  // it must say what it holds first
  const std::uint64_t g = std::min(want, max_ - u);
  it->second.granted += g;
  return g;
}

}  // namespace panal::store
