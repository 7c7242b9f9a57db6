// The versioned in-memory table of one data process.
//
// Promises:
// - put/remove apply only if their version is higher than the stored one
//   (last write wins), so replicas and handoffs converge whatever the order
//   of arrival. remove() leaves a tombstone carrying its version.
// - Memory: each entry is one allocation holding a 16-byte header, the key
//   and the value; the index is an open-addressing array of 8-byte tagged
//   pointers. memory_bytes() counts both as the allocator reports them
//   (malloc_usable_size), and a put that would take it past max_memory is
//   refused (out_of_memory) before anything changes.
//
// Thread-safety: none; a table belongs to one data process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace panal::store {

struct entry_view {
  std::string_view key;
  std::string_view value;  // empty for a tombstone
  std::uint64_t version = 0;
  bool tombstone = false;
};

enum class put_outcome { inserted, updated, stale };

class table {
 public:
  explicit table(std::size_t max_memory = 0);  // 0: unlimited
  ~table();
  table(const table&) = delete;
  table& operator=(const table&) = delete;

  // The entry, tombstones included (check .tombstone).
  std::optional<entry_view> find(std::string_view key) const;

  result<put_outcome> put(std::string_view key, std::string_view value, std::uint64_t version);
  result<put_outcome> remove(std::string_view key, std::uint64_t version);

  std::size_t live_keys() const { return live_; }
  std::size_t entries() const { return used_; }  // live + tombstones
  std::size_t memory_bytes() const { return blob_bytes_ + index_.size() * sizeof(std::uintptr_t); }
  std::size_t max_memory() const { return max_memory_; }
  // A lower limit than what is held refuses further growth; nothing is dropped.
  void set_max_memory(std::size_t bytes) { max_memory_ = bytes; }

  void for_each(const std::function<void(const entry_view&)>& fn) const;
  // Removes (really frees) every entry whose key matches; returns how many.
  std::size_t erase_if(const std::function<bool(std::string_view key)>& pred);

 private:
  result<put_outcome> write(std::string_view key, std::string_view value, std::uint64_t version, bool tombstone);
  std::size_t probe(std::string_view key, std::uint64_t hash, bool& found) const;
  void grow();

  std::size_t max_memory_;
  std::vector<std::uintptr_t> index_;  // 0: empty; 1: erased; else tag<<48 | pointer
  std::size_t used_ = 0;               // entries in index_
  std::size_t erased_ = 0;             // erased markers in index_
  std::size_t live_ = 0;               // entries that are not tombstones
  std::size_t blob_bytes_ = 0;
};

}  // namespace panal::store
