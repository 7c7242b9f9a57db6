// The outcomes of recent writes, by (client, sequence), so that a write the
// client sends again (its answer was lost, or a failover came between) is
// answered from here instead of being applied a second time.
//
// Promises:
// - find() returns the outcome recorded for (client, seq) unless the client
//   has since said that every write below `floor` was answered, or the
//   client has been silent for `idle_limit`, or it has more than
//   `per_client` writes remembered (the oldest go first).
// - Records carry their slot, so a slot's records travel with its data.
//
// Thread-safety: none; one belongs to one data process.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "util/function_ref.h"

namespace panal::store {

class write_log {
 public:
  using clock = std::chrono::steady_clock;
  struct record {
    std::uint64_t seq = 0;
    std::uint32_t slot = 0;
    bool found = false;  // what the write answered (remove: whether the key existed)
  };

  explicit write_log(std::size_t per_client = 65536, clock::duration idle_limit = std::chrono::minutes(5))
      : per_client_(per_client), idle_limit_(idle_limit) {}

  // Client 0 is "not tracked" (fire-and-forget writes): nothing is kept.
  void add(std::uint64_t client, const record& r, std::uint64_t floor, clock::time_point now);
  std::optional<record> find(std::uint64_t client, std::uint64_t seq) const;

  void for_slot(std::uint32_t slot, function_ref<void(std::uint64_t client, const record&)> fn) const;
  // The records of every slot `wanted` says, in one pass over the log (a
  // transfer of many slots would otherwise read the whole log per slot).
  void for_slots(function_ref<bool(std::uint32_t slot)> wanted,
                 function_ref<void(std::uint64_t client, const record&)> fn) const;
  // Forgets the records of the slots `dropped` says (the slot's data is gone
  // from here: a record without its data would answer a retry wrongly).
  void erase_slots(function_ref<bool(std::uint32_t slot)> dropped);
  // Forgets clients silent for longer than idle_limit.
  void expire(clock::time_point now);

  std::size_t clients() const { return clients_.size(); }
  std::size_t records() const;

 private:
  struct per_client {
    std::vector<record> records;  // sorted by seq, from `head`
    std::size_t head = 0;
    clock::time_point last_seen;
  };
  std::size_t per_client_;
  clock::duration idle_limit_;
  std::unordered_map<std::uint64_t, per_client> clients_;
};

}  // namespace panal::store
