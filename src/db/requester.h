// The requesting side of a database, shared by client processes and client
// sessions: routes each request to its slot's primary with the node's copy
// of the map, and matches the answers.
//
// Promise: every submitted request with a waiter gets exactly one answer
// (through the requester's answer function): the primary's reply; `moved` /
// `no_master` / `no_data` (retryable) when there is no map or no primary
// yet, or the primary disagrees with our map (a newer map is then fetched);
// `unavailable` (retryable) at once when the data process it went to ends
// or becomes unreachable; or, if no answer comes within `expire_after`,
// timeout. Size limits are checked here, before anything is sent. An
// unsafe_set (no waiter) is retried here while its slot moves (for up to
// `unsafe_retry_for`), and a later request on the same key waits until it
// is stored or given up, so a client's later requests are ordered after it.
// No allocation per request in steady state (the table of requests in
// flight is reused). Runs inside one process; on_message() must see every
// message that process receives.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/cluster_map.h"
#include "db/messages.h"
#include "db/outbox.h"
#include "metrics/request_metrics.h"
#include "runtime/message.h"
#include "runtime/runtime.h"

namespace panal::db {

struct context;

class requester {
 public:
  // Who waits for an answer, as its owner says (a session: the client's
  // request id; a client process: the caller and its call's tag).
  struct waiter {
    std::uint64_t id = 0;
    pid to;
    ref tag;
  };
  using answer_fn = std::function<void(const waiter&, reply&&)>;

  requester(context& ctx, std::string db, answer_fn answer);

  // Sends `r` (its id, reply_to and epoch are set here). Without a waiter
  // (unsafe_set) nobody is answered.
  void submit(request r, const waiter* w);

  // True if `m` was a reply, DOWN or timer this requester was waiting for.
  bool on_message(message& m);

  // From hold() to flush(), requests are kept and then go out as one
  // message per primary (request_batch): a session holds while it takes
  // what one read brought. Order per primary is kept.
  void hold() {
    holding_ = true;
    hold_now_ = clock::now();  // the send time of the held requests (one clock read)
  }
  void flush();

  std::size_t pending() const { return in_flight_; }
  // The newest map this requester has (null before the first).
  map_ptr current();
  static constexpr auto expire_after = std::chrono::minutes(2);
  static constexpr auto unsafe_retry_for = std::chrono::seconds(5);

 private:
  struct slot {
    bool used = false;
    bool unsafe = false;  // an unsafe_set tracked here (its copy is in unsafe_)
    std::uint32_t generation = 0;
    waiter w;
    pid to;
    clock::time_point sent;
    std::uint8_t kind = 0;  // the operation, for the node's metrics
  };
  // The slot it took, or -1 when it was answered at once (no map, a limit:
  // `refused` says why).
  std::int64_t send(request r, const waiter& w, bool unsafe, errc* refused = nullptr);
  void retry_unsafe_later(request r, clock::time_point until);
  void finish(std::uint32_t index, reply&& rep, clock::time_point now);
  void submit_unsafe(request r, clock::time_point until);
  void release(const std::string& key);
  void refresh();
  void ask_for_map();
  void fail_to(const pid& to, const error& e);
  void expire();
  void on_reply(reply&& rep, clock::time_point now);

  context& ctx_;
  std::string db_;
  std::string server_group_;
  answer_fn answer_;
  metrics::request_metrics::shard* counted_ = nullptr;  // this thread's share of the node's counters
  map_ptr map_;
  std::uint64_t seen_version_ = ~std::uint64_t{0};
  clock::time_point asked_{};
  // Requests in flight: id = generation << 32 | index into slots_.
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t in_flight_ = 0;
  struct target {
    ref monitor;
    std::uint32_t count = 0;
  };
  std::unordered_map<pid, target> targets_;
  std::unordered_map<ref, pid> by_monitor_;
  pid last_target_;  // the last primary sent to (most requests go to the same few)
  bool holding_ = false;
  clock::time_point hold_now_{};
  // While holding, per primary; a batch goes on at 1 MiB, far below a
  // frame between nodes.
  outbox<request, request_batch, &request_batch::requests> outbox_{~std::size_t{0}, 1u << 20};
  bool ticking_ = false;
  // unsafe_sets: their copies (for retries), the keys in flight, and the
  // requests waiting behind them.
  std::unordered_map<std::uint32_t, std::pair<request, clock::time_point>> unsafe_;
  std::unordered_map<std::string, std::uint32_t> unsafe_keys_;
  std::unordered_map<std::string, std::deque<std::pair<request, std::optional<waiter>>>> blocked_;
  std::uint64_t next_retry_ = 1;
  std::unordered_map<std::uint64_t, std::pair<request, clock::time_point>> retries_;
};

// The timer messages a requester sends itself.
struct requester_tick {};
struct requester_retry {
  std::uint64_t id;
};

}  // namespace panal::db
