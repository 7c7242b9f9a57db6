// The database's key limit (max_keys), kept by the master without being on
// the data path: primaries insert with tokens the master hands out.
//
// used = the live keys of every slot (as its primary last reported them:
// each key counts once, whatever the number of replicas) + the tokens held
// by primaries. A grant never takes `used` past the limit, so the database
// never holds more than max_keys live keys. After a change of primary a
// slot's count is unknown until its new primary reports it; while any slot
// is unknown (e.g. after a master failover) nothing is granted, and the
// primaries go on with the tokens they hold.
//
// Thread-safety: none; owned by the master process.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace panal::store {

class key_quota {
 public:
  key_quota(std::uint64_t max_keys, std::uint32_t slot_count);

  std::uint64_t max_keys() const { return max_; }
  // All slots unknown, all tokens forgotten (a new master, or a new map).
  void reset();
  // `slot`'s primary changed: its count is unknown until reported.
  void unknown(std::uint32_t slot);
  // A primary's live-key count for a slot it serves.
  void count(std::uint32_t slot, std::uint64_t live);
  // The tokens `member` holds now, and how many it has received in all
  // (grants still on their way to it count as held too).
  void tokens(std::uint64_t member, std::uint64_t held, std::uint64_t received);
  void forget(std::uint64_t member);  // gone: its tokens no longer count

  // Up to `want` more tokens for `member` (0: none to give, or not known yet).
  std::uint64_t grant(std::uint64_t member, std::uint64_t want);

  bool known() const { return unknown_ == 0; }
  // Members other than `member` that hold unused tokens (to recall them).
  std::vector<std::uint64_t> holders_except(std::uint64_t member) const;
  std::uint64_t used() const;
  std::uint64_t live() const { return live_total_; }

 private:
  std::uint64_t max_;
  std::vector<std::int64_t> live_;  // per slot; -1: unknown
  std::uint32_t unknown_ = 0;
  std::uint64_t live_total_ = 0;
  struct holding {
    std::uint64_t held = 0;
    std::uint64_t granted = 0;   // in all, by this master
    std::uint64_t received = 0;  // in all, as the member last said
    std::uint64_t base = 0;      // what the member had received before this master's first grant
    bool known = false;
  };
  std::unordered_map<std::uint64_t, holding> tokens_;
};

}  // namespace panal::store
