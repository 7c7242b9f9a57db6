// A database's slot map as the db layer uses it: the store's slot_map plus
// the pid of each member, the master that published it, and the database's
// settings; and `routes`, every node's table of the newest map per database.
//
// Promises:
// - A cluster_map is immutable once built; it is shared (map_ptr) by every
//   process of a node that routes with it.
// - routes keeps, per database, the map with the highest epoch it was given;
//   version() changes whenever any map is replaced, so a requester can keep
//   its map_ptr and check one atomic per request.
//
// Thread-safety: routes may be used from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/pid.h"
#include "store/slot_map.h"

namespace panal::db {

struct db_config;
struct map_update;

struct settings {
  std::uint32_t slots = 16384;
  std::uint32_t replicas = 3;
  std::uint32_t write_acks = 2;
  std::uint64_t max_key_bytes = 1024;
  std::uint64_t max_value_bytes = 8u << 20;
  std::uint64_t max_keys = 0;
  std::uint64_t max_memory = 0;
  std::uint64_t lease_ms = 4000;
};

struct cluster_map {
  std::string db;
  // Maps are ordered by (generation, epoch): a database that starts anew
  // (no member kept a map) takes a new, later generation.
  std::uint64_t generation = 0;
  pid master;
  db::settings settings;
  store::slot_map slots;
  std::vector<pid> pids;  // by member index

  std::uint32_t epoch() const { return slots.epoch(); }
  bool newer_than(const cluster_map& o) const {
    return generation != o.generation ? generation > o.generation : epoch() > o.epoch();
  }
  // The primary's pid for `slot` (null when none).
  pid primary_pid(std::uint32_t slot) const {
    const std::uint32_t m = slots.primary(slot);
    return m == store::slot_map::no_primary ? pid{} : pids[m];
  }
  std::uint64_t member_id(std::uint32_t index) const { return slots.members()[index].id; }
};
using map_ptr = std::shared_ptr<const cluster_map>;

map_update encode(const cluster_map& m);
// `like` (optional): an earlier map of the database, to reuse what did not change.
map_ptr decode(const map_update& u, const cluster_map* like = nullptr);

class routes {
 public:
  map_ptr get(const std::string& db) const;
  // Keeps `m` if it is newer than the held one; true if kept.
  bool update(map_ptr m);
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  std::vector<std::string> databases() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, map_ptr> maps_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace panal::db
