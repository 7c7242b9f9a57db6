// The requesting side of a database, shared by client processes and
// client sessions: sends requests to the master and matches the answers.
//
// Promise: every submitted request gets exactly one completion: the data
// process's reply; no_master if the master is unknown or dies first
// (retryable: the caller may submit again); or, if no answer comes within
// `expire_after` (e.g. its data process died holding it), timeout. Runs
// inside one process; on_message() must see every message it receives.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "db/messages.h"
#include "runtime/message.h"
#include "runtime/runtime.h"

namespace panal::registry {
class pg;
}

namespace panal::db {

class requester {
 public:
  using done_fn = std::function<void(reply&&)>;

  requester(registry::pg& groups, std::string db);

  // Sends `r` (its id and reply_to are set here); `done` runs when it is answered.
  // A request without `done` (unsafe_set) is not tracked.
  void submit(request r, done_fn done);

  // True if `m` was a reply or a DOWN this requester was waiting for.
  bool on_message(message& m);

  std::size_t pending() const { return pending_.size(); }
  static constexpr auto expire_after = std::chrono::minutes(2);

 private:
  registry::pg& groups_;
  std::string db_;
  std::string server_group_;
  std::uint64_t next_id_ = 1;
  pid master_;
  ref master_watch_;
  struct waiting {
    pid master;
    done_fn done;
    clock::time_point sent;
  };
  void expire();
  std::uint64_t submits_ = 0;
  std::unordered_map<std::uint64_t, waiting> pending_;
};

}  // namespace panal::db
