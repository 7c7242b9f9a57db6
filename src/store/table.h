// The versioned in-memory table of one data process, organised by slot.
//
// Promises:
// - Each slot's entries live in their own small open-addressing index, so a
//   slot can be streamed (scan), counted or dropped without touching any
//   other slot's keys.
// - put/remove apply only if their version is higher than the stored one
//   (last write wins), so replicas and handoffs converge whatever the order
//   of arrival. remove() leaves a tombstone carrying its version; purge()
//   frees a tombstone once every owner has it.
// - Memory: each entry is one allocation holding a 16-byte header (24 for a
//   key of 256 bytes or more or a value of 4 MiB or more), the key and the
//   value (entry_size); an update whose value fits the old allocation reuses it.
//   Each slot's index is an array of 8-byte tagged pointers. memory_bytes()
//   counts entries and indexes as the allocator reports them
//   (malloc_usable_size); a write that would take it past max_memory is
//   refused (out_of_memory) before anything changes, unless the caller says
//   the limit does not apply (replicated writes: the primary checked it).
// - digest(slot) is the XOR of a 64-bit mix of each entry's key hash,
//   version and tombstone bit, kept up to date by every change: two tables
//   whose slot digests are equal hold the same entries in it (a version is
//   stamped once, with one value), so a new primary syncs in one round trip
//   a slot its other holders already agree on.
// - A scan cursor survives writes to the slot: every entry that is in the
//   slot for the whole scan and is not rewritten during it is visited at
//   least once (a growth of the slot's index restarts the scan).
//
// Thread-safety: none; a table belongs to one data process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "store/version.h"
#include "util/error.h"
#include "util/function_ref.h"

namespace panal::store {

struct entry_view {
  std::string_view key;
  std::string_view value;  // empty for a tombstone
  store::version version;
  bool tombstone = false;
};

enum class put_outcome { inserted, updated, stale };

class table {
 public:
  explicit table(std::uint32_t slot_count = 16384, std::size_t max_memory = 0);  // 0: unlimited
  ~table();
  table(const table&) = delete;
  table& operator=(const table&) = delete;

  std::uint32_t slot_count() const { return static_cast<std::uint32_t>(slots_.size()); }
  std::uint32_t slot_of(std::uint64_t hash) const { return static_cast<std::uint32_t>(hash % slots_.size()); }

  // The entry, tombstones included (check .tombstone). `hash` is key_hash(key).
  std::optional<entry_view> find(std::string_view key) const;
  std::optional<entry_view> find(std::string_view key, std::uint64_t hash) const;

  result<put_outcome> put(std::string_view key, std::string_view value, version v, bool check_memory = true);
  result<put_outcome> put(std::string_view key, std::uint64_t hash, std::string_view value, version v,
                          bool check_memory = true);
  result<put_outcome> remove(std::string_view key, version v, bool check_memory = true);
  result<put_outcome> remove(std::string_view key, std::uint64_t hash, version v, bool check_memory = true);
  // Frees the tombstone of `key` if its version is exactly `v`.
  bool purge(std::string_view key, std::uint64_t hash, version v);

  // Frees every entry of `slot`; returns how many.
  std::size_t drop_slot(std::uint32_t slot);

  struct cursor {
    std::uint32_t generation = 0;
    std::uint32_t position = 0;
  };
  // Visits entries of `slot` from `c` until about `max_bytes` of keys and
  // values were visited; advances `c`. True when the slot is finished.
  bool scan(std::uint32_t slot, cursor& c, std::size_t max_bytes, function_ref<void(const entry_view&)> fn) const;
  void for_each(function_ref<void(const entry_view&)> fn) const;

  std::size_t live_keys() const { return live_; }
  std::size_t live_keys(std::uint32_t slot) const;
  std::uint64_t digest(std::uint32_t slot) const;
  std::size_t entries(std::uint32_t slot) const;
  std::size_t entries() const { return used_; }        // live + tombstones
  std::size_t tombstones() const { return used_ - live_; }
  std::size_t memory_bytes() const { return blob_bytes_ + index_bytes_; }
  // What one entry asks of the allocator: a 16-byte header, 8 more for a key
  // of 256 bytes or more or a value of 4 MiB or more, then key and value.
  static std::size_t entry_size(std::size_t key_size, std::size_t value_size);
  std::size_t max_memory() const { return max_memory_; }
  // A lower limit than what is held refuses further growth; nothing is dropped.
  void set_max_memory(std::size_t bytes) { max_memory_ = bytes; }

  // Starts loading what find(key, hash) will read, one dependent level per
  // stage (0: the slot's index pointer, 1: the key's home cell, 2: the
  // entry there), so that the cache misses of requests still queued
  // overlap with the work on the current one. Reads nothing it waits for
  // beyond what earlier stages loaded; harmless for absent keys.
  void prefetch(std::uint64_t hash, int stage) const;

  // Probe sequence lengths of the held keys (a quality check of the index).
  struct probes {
    double mean = 0;
    std::size_t longest = 0;
  };
  probes probe_lengths() const;

  struct slot_index;

 private:
  result<put_outcome> write(std::string_view key, std::uint64_t hash, std::string_view value, version v,
                            bool tombstone, bool check_memory);
  slot_index* grow(std::uint32_t slot, bool check_memory);

  std::size_t max_memory_;
  std::vector<slot_index*> slots_;  // null: nothing held in that slot
  std::size_t used_ = 0;            // entries
  std::size_t live_ = 0;            // entries that are not tombstones
  std::size_t blob_bytes_ = 0;
  std::size_t index_bytes_ = 0;
};

}  // namespace panal::store
