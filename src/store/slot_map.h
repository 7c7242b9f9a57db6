// Which data processes own which slots: rendezvous (highest-random-weight)
// hashing of slot x member.
//
// Promises:
// - slot_of(key) = key_hash(key) % slot_count.
// - The owners of a slot are the `replicas` members with the highest
//   rendezvous_weight(slot, member), highest first; the first is the primary.
//   Every node computes the same map from the same members, in any order.
// - Adding or removing one of N members changes the owners of about 1/N of
//   the slots, and only slots the changed member gains or loses.
//
// Thread-safety: a value; const members may be read from many threads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace panal::store {

class slot_map {
 public:
  explicit slot_map(std::uint32_t slot_count = 16384, std::uint32_t replicas = 1);

  // Member ids must be distinct (e.g. a hash of the data process's pid).
  void set_members(std::vector<std::uint64_t> members);
  const std::vector<std::uint64_t>& members() const { return members_; }

  std::uint32_t slot_count() const { return slot_count_; }
  std::uint32_t slot_of(std::string_view key) const;
  // Owners of `slot` (ids, best first); empty when there are no members.
  std::span<const std::uint64_t> owners(std::uint32_t slot) const;
  // The primary owner, or 0 when there are no members.
  std::uint64_t primary(std::uint32_t slot) const;

 private:
  std::uint32_t slot_count_;
  std::uint32_t replicas_;
  std::uint32_t width_ = 0;  // owners per slot: min(replicas, members)
  std::vector<std::uint64_t> members_;
  std::vector<std::uint64_t> owners_;  // slot_count * width, best first
};

}  // namespace panal::store
