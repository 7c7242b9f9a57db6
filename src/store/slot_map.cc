#include "store/slot_map.h"

#include <algorithm>

#include "store/hash.h"

namespace panal::store {

slot_map::slot_map(std::uint32_t slot_count, std::uint32_t replicas)
    : slot_count_(std::max<std::uint32_t>(slot_count, 1)), replicas_(std::max<std::uint32_t>(replicas, 1)) {}

void slot_map::set_members(std::vector<std::uint64_t> members) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  members_ = std::move(members);
  width_ = std::min<std::uint32_t>(replicas_, static_cast<std::uint32_t>(members_.size()));
  owners_.assign(static_cast<std::size_t>(slot_count_) * width_, 0);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> scored(members_.size());
  for (std::uint32_t s = 0; s < slot_count_ && width_ > 0; ++s) {
    for (std::size_t i = 0; i < members_.size(); ++i) scored[i] = {rendezvous_weight(s, members_[i]), members_[i]};
    std::partial_sort(scored.begin(), scored.begin() + width_, scored.end(), std::greater<>());
    for (std::uint32_t r = 0; r < width_; ++r) owners_[static_cast<std::size_t>(s) * width_ + r] = scored[r].second;
  }
}

std::uint32_t slot_map::slot_of(std::string_view key) const {
  return static_cast<std::uint32_t>(key_hash(key) % slot_count_);
}

std::span<const std::uint64_t> slot_map::owners(std::uint32_t slot) const {
  if (width_ == 0 || slot >= slot_count_) return {};
  return {owners_.data() + static_cast<std::size_t>(slot) * width_, width_};
}

std::uint64_t slot_map::primary(std::uint32_t slot) const {
  auto o = owners(slot);
  return o.empty() ? 0 : o.front();
}

}  // namespace panal::store
