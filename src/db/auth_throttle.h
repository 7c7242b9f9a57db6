// Slows client-key guessing: after a failed attempt from an address, the
// next attempt from it waits until `penalty` has passed since the one
// before it, so a wrong key reaches the master at most 1/penalty times a
// second from one address however many connections it opens.
//
// Promises:
// - admit() says when an attempt from `address` may go on (now, or a time
//   to wait for), or that it is refused: more than `max_wait` of attempts
//   are already waiting there. Each admitted attempt takes its own turn.
// - fail() starts (or extends) the penalty of `address`; it ends once no
//   attempt failed for `penalty` (a right key does not end it: a database
//   without a key would let anyone end it).
// - Memory is bounded: at most `max_addresses` addresses are remembered;
//   when full, those whose penalty is over go first, and if none is over
//   every new address shares one entry (so a flood of addresses slows
//   itself, not the node).
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace panal::db {

class auth_throttle {
 public:
  using clock = std::chrono::steady_clock;

  explicit auth_throttle(clock::duration penalty = std::chrono::milliseconds(250),
                         clock::duration max_wait = std::chrono::seconds(2), std::size_t max_addresses = 4096)
      : penalty_(penalty), max_wait_(max_wait), max_addresses_(max_addresses) {}

  // When the attempt may go on; nullopt: refused (too many waiting).
  std::optional<clock::time_point> admit(const std::string& address, clock::time_point now);
  void fail(const std::string& address, clock::time_point now);

  std::size_t addresses() const;

 private:
  struct entry {
    clock::time_point next{};  // the earliest time the next attempt may go on
    bool penalized = false;
  };
  entry& find(const std::string& address, clock::time_point now);

  clock::duration penalty_, max_wait_;
  std::size_t max_addresses_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> by_address_;
  entry shared_;  // for new addresses once the table is full
};

}  // namespace panal::db
