// The requesting side of a database, shared by client processes and client
// sessions: routes each request to its slot's primary with the node's copy
// of the map, and matches the answers.
//
// Promise: every submitted request gets exactly one completion: the
// primary's reply; `moved` / `no_master` / `no_data` (retryable) when there
// is no map or no primary yet, or the primary disagrees with our map (a
// newer map is then fetched); `unavailable` (retryable) at once when the
// data process it went to ends or becomes unreachable; or, if no answer
// comes within `expire_after`, timeout. Size limits are checked here,
// before anything is sent. An unsafe_set (no `done`) is retried here while
// its slot moves (for up to `unsafe_retry_for`), and a later request on the
// same key waits until it is stored or given up, so a client's later
// requests are ordered after it. Runs inside one process; on_message() must
// see every message that process receives.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "db/cluster_map.h"
#include "db/messages.h"
#include "runtime/message.h"
#include "runtime/runtime.h"

namespace panal::db {

struct context;

class requester {
 public:
  using done_fn = std::function<void(reply&&)>;

  requester(context& ctx, std::string db);

  // Sends `r` (its id, reply_to and epoch are set here); `done` runs when it
  // is answered. A request without `done` (unsafe_set) is not tracked.
  void submit(request r, done_fn done);

  // True if `m` was a reply, DOWN or timer this requester was waiting for.
  bool on_message(message& m);

  std::size_t pending() const { return pending_.size(); }
  // The newest map this requester has (null before the first).
  map_ptr current();
  static constexpr auto expire_after = std::chrono::minutes(2);
  static constexpr auto unsafe_retry_for = std::chrono::seconds(5);

 private:
  void send(request r, done_fn done);
  void submit_unsafe(request r, clock::time_point until);
  void release(const std::string& key);

  void refresh();
  void ask_for_map();
  void fail_to(const pid& to, const error& e);
  void expire();

  context& ctx_;
  std::string db_;
  std::string server_group_;
  map_ptr map_;
  std::uint64_t seen_version_ = ~std::uint64_t{0};
  clock::time_point asked_{};
  std::uint64_t next_id_ = 1;
  struct waiting {
    pid to;
    done_fn done;
    clock::time_point sent;
  };
  std::unordered_map<std::uint64_t, waiting> pending_;
  struct target {
    ref monitor;
    std::uint32_t count = 0;
  };
  std::unordered_map<pid, target> targets_;
  std::unordered_map<ref, pid> by_monitor_;
  bool ticking_ = false;
  // unsafe_sets in flight by key, and the requests waiting behind them.
  std::unordered_map<std::string, std::uint32_t> unsafe_keys_;
  std::unordered_map<std::string, std::deque<std::pair<request, done_fn>>> blocked_;
  std::uint64_t next_retry_ = 1;
  std::unordered_map<std::uint64_t, std::pair<request, clock::time_point>> retries_;
};

// The timer messages a requester sends itself.
struct requester_tick {};
struct requester_retry {
  std::uint64_t id;
};

}  // namespace panal::db
