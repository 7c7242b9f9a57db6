#include "db/data.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "db/cluster_map.h"
#include "db/context.h"
#include "db/messages.h"
#include "db/outbox.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "store/hash.h"
#include "store/table.h"
#include "store/version.h"
#include "store/write_log.h"
#include "util/log.h"

namespace panal::db {

std::uint64_t member_identity(const std::string& node, const std::string& db, std::uint32_t index) {
  return store::key_hash(node + '\n' + db + '\n' + std::to_string(index));
}

namespace {

namespace tp = this_process;
using steady = std::chrono::steady_clock;
using store::version;

constexpr std::uint32_t kUntracked = 0xffffffffu;
constexpr std::size_t kTransferBytes = 256 * 1024;     // per transfer reply
constexpr std::size_t kSlotsPerTransfer = 64;          // slots asked in one fill request
// Syncs and fences: most answers are a digest comparison or a fence, a few
// bytes each (a reply still stops at kTransferBytes of entries).
constexpr std::size_t kSlotsPerSync = 2048;
constexpr int kTransfersPerSource = 2;                 // requests in flight per source
constexpr std::size_t kMaxParked = 65536;              // requests waiting on a key or on tokens
constexpr std::size_t kMaxBatchBytes = 4u << 20;       // a replicate batch is sent once this big
constexpr std::size_t kMaxReplyBatchBytes = 1u << 20;  // a reply batch too
constexpr auto kTombstoneGrace = std::chrono::seconds(60);

// PANAL_TRACE_DB=1: every slot change and every write, in the log (for
// finding out what happened to a key; far too much for normal use).
const bool kTrace = std::getenv("PANAL_TRACE_DB") != nullptr;
#define TRACE(...) \
  if (kTrace) log::info("trace", __VA_ARGS__)

const char* role_name(int r) {
  static const char* names[] = {"none", "filling", "replica", "primary"};
  return names[r];
}

// Keys (by hash) with writes in flight, and how many.
class key_counts {
 public:
  bool contains(std::uint64_t h) const { return !map_.empty() && map_.count(h) != 0; }
  void add(std::uint64_t h) { ++map_[h]; }
  // True when the last write on the key is done.
  bool remove(std::uint64_t h) {
    auto it = map_.find(h);
    if (it == map_.end()) return true;
    if (--it->second == 0) {
      map_.erase(it);
      return true;
    }
    return false;
  }

 private:
  std::unordered_map<std::uint64_t, std::uint32_t> map_;
};

enum class role : std::uint8_t { none, filling, replica, primary };

struct slot_state {
  role r = role::none;
  bool serving = false;            // primary, synced
  std::uint32_t fence = 0;         // the highest epoch a new primary fenced us at
  std::uint32_t since = 0;         // filling: the map's `since`
  std::uint32_t primary_epoch = 0; // when we became its primary
  std::uint32_t inflight = 0;      // uncommitted writes of this slot (as primary)
  bool live_dirty = false;         // its live-key count changed since the last report
};

struct waiter {
  std::uint64_t id = 0;
  pid to;
};

// A write the primary stamped and sent; answered once `needed` holders took it.
struct inflight {
  bool used = false;
  bool committed = false;        // answered
  bool applied = false;          // stored here
  bool tombstone = false;
  bool found = false;           // the key was live before
  bool token = false;           // it consumed an insert token
  bool pending_key = false;     // counted in pending_keys_
  std::uint32_t slot = 0;
  std::uint64_t hash = 0;
  std::string key, value;
  version v;
  write_id wid;
  waiter first;
  std::vector<waiter> more;
  std::uint32_t needed = 0, acks = 0, refused = 0, sent = 0;
  map_ptr sent_map;             // the map whose holders it was sent to
};

struct sent_write {
  std::uint32_t write;  // inflight index (kUntracked: a repair)
  std::uint32_t slot;
};

struct stream_out {
  replicate batch;
  std::size_t batch_bytes = 0;
  std::vector<sent_write> batch_writes;
  std::deque<std::pair<std::uint64_t, std::vector<sent_write>>> unacked;
  ref monitor;
};

struct fill_job {
  pid source;
  std::uint64_t source_id = 0;
  std::uint32_t from_epoch = 0;
  store::table::cursor cursor;
  bool in_flight = false;
  bool done = false;
  steady::time_point retry_at{};
};

struct sync_source {
  std::uint64_t id = 0;
  pid who;
  transfer_purpose purpose = transfer_purpose::sync;
  store::table::cursor cursor;
  bool in_flight = false;
  bool done = false;
  bool same = false;             // its digest of the slot was ours: nothing sent
  steady::time_point retry_at{};
  std::unordered_map<std::string, version> seen;  // sync: what it held (for the repair)
};

struct sync_job {
  std::vector<sync_source> sources;
  bool handover = false;
  // Keys this sync changed here: what a `same` source may lack at the end
  // (it held what we held when it answered, not what others sent since).
  std::vector<std::string> changed;
};

class data_process {
 public:
  data_process(context& ctx, std::string db, std::uint32_t index)
      : ctx_(ctx),
        db_(std::move(db)),
        index_(index),
        member_(member_identity(ctx.node, db_, index)),
        self_(tp::self()),
        clock_(member_) {}

  [[noreturn]] void run();

 private:
  // ---- the map ----
  void adopt(map_ptr m);
  void catch_up(std::uint32_t epoch, bool wait);
  void ask_for_map();
  int member_of(const pid& p) const;  // index in map_ of the member with pid p, or -1
  void start_sync(std::uint32_t s);
  void finish_sync(std::uint32_t s);
  void restart_fill(std::uint32_t s, const store::holder& h, bool keep);

  // ---- requests ----
  void on_request(request& r);
  void prefetch_ahead(const request& current);
  std::size_t prefetched_ = 0;  // messages at the mailbox's front already prefetched
  void answer(const request& r, reply rep);
  void answer(const waiter& w, reply rep);
  // Answers of a turn go out together, one reply_batch per requester (at
  // the end of the turn, every 64 messages, or at 64 answers for one).
  void send_reply(const pid& to, reply&& rep);
  void flush_replies();
  void on_batch(request_batch& b);
  void park(request&& r) {
    if (parked_.size() < kMaxParked) parked_.push_back(std::move(r));
    else answer(r, error_reply(0, {errc::unavailable, "too many requests wait for writes in flight on their keys; retry"}));
  }
  void commit(std::uint32_t wi);
  void fail(std::uint32_t wi, errc code, const std::string& why);
  void settle(std::uint32_t wi);  // every holder answered: free it
  void send_to_holders(std::uint32_t wi, const cluster_map& m, const cluster_map* already);
  void enqueue(const pid& to, repl_write w, std::uint32_t wi);
  void send_batch(const pid& to, stream_out& so);
  bool serving(std::uint32_t s) const;
  // serve_ok_[s]: primary, synced, not fenced past our epoch (the per-request
  // check reads one byte, not the slot's whole state).
  void mark(std::uint32_t s) {
    const slot_state& st = slots_[s];
    serve_ok_[s] = st.serving && st.r == role::primary && map_ && st.fence <= map_->epoch();
  }
  // The turn's clock (read once per 64 messages: the lease check is on every request).
  bool lease_ok() const { return turn_now_ < lease_until_; }
  void unpark(std::uint64_t hash);

  // ---- replication ----
  void on_replicate(replicate& r);
  void on_ack(const replicate_ack& a);
  void on_holder_down(const pid& who, const exit_reason& why);
  void on_purge(const purge& p);
  void flush();

  // ---- transfers ----
  void on_transfer_request(transfer_request& r);
  void on_transfer_reply(transfer_reply& r);
  void on_source_down(const pid& who);
  void pump_transfers();
  void merge(std::uint32_t s, std::vector<wire_entry>& entries, std::vector<wire_log_record>& log,
             std::unordered_map<std::string, version>* seen, std::vector<std::string>* changed);

  // ---- master ----
  void renew_lease();
  void on_grant(const lease_grant& g);
  void report(bool all);
  void ask_tokens();
  void on_tokens(const token_grant& g);
  void sweep_tombstones();
  stats_reply stats() const;
  locate_reply locate(const std::string& key) const;
  bool report_due() const { return report_all_ || !filled_.empty() || !served_.empty() || !lagging_.empty(); }
  bool quota_reports() const { return map_ && map_->settings.max_keys != 0 && me_ >= 0; }

  context& ctx_;
  std::string db_;
  std::uint32_t index_;
  std::uint64_t member_;
  pid self_;

  map_ptr map_;
  int me_ = -1;
  std::unique_ptr<store::table> table_;
  std::vector<slot_state> slots_;
  std::vector<std::uint8_t> serve_ok_;
  store::version_clock clock_;
  store::write_log log_;
  std::vector<std::uint8_t> dropped_;  // adopt(): slots dropped

  // Writes in flight (as primary).
  std::vector<inflight> writes_;
  std::vector<std::uint32_t> free_writes_;
  key_counts pending_keys_;
  std::deque<request> parked_;         // waiting for a key's write in flight
  std::deque<request> token_wait_;     // inserts waiting for tokens
  std::unordered_map<pid, stream_out> streams_;
  std::uint64_t next_stream_ = 1;
  std::unordered_map<pid, std::vector<repl_write>> purges_;  // tombstones to purge, by holder
  std::unordered_map<ref, pid> holder_watch_;

  // Transfers.
  std::map<std::uint32_t, fill_job> fills_;
  std::map<std::uint32_t, sync_job> syncs_;
  // This turn's answers, per requester (send_reply): at most 64 or 1 MiB a batch.
  outbox<reply, reply_batch, &reply_batch::replies> replies_{64, kMaxReplyBatchBytes};
  int turn_requests_ = 0;           // requests served this turn (a batch counts each)
  std::unordered_map<pid, int> transfers_out_;          // requests in flight, by source
  std::unordered_map<pid, ref> source_watch_;
  std::unordered_map<ref, pid> source_by_watch_;
  bool transfers_dirty_ = false;
  std::uint64_t next_transfer_ = 1;
  steady::time_point next_retry_{steady::time_point::max()};

  // Lease.
  steady::time_point lease_until_{};
  steady::time_point turn_now_{};
  std::uint64_t turn_ms_ = 0;  // the wall clock for versions, read by the first write after turn_now_ (0: not yet)
  std::uint32_t lease_epoch_ = 0;  // serve only with a map at least this new
  std::uint64_t lease_seq_ = 0;
  std::deque<std::pair<std::uint64_t, steady::time_point>> lease_sent_;
  steady::time_point next_lease_{};
  steady::time_point map_asked_{};

  // Reports to the master.
  std::vector<fill_done> filled_;
  std::vector<slot_serving> served_;
  std::vector<lagging_holder> lagging_;
  bool report_all_ = false;
  steady::time_point next_report_{};

  // Key limit.
  std::uint64_t tokens_ = 0;
  std::uint64_t tokens_received_ = 0;
  std::uint64_t tokens_in_flight_ = 0;  // consumed by inserts not yet stored
  bool tokens_asked_ = false;
  steady::time_point tokens_asked_at_{};
  steady::time_point tokens_retry_ = steady::time_point::max();
  steady::time_point next_quota_report_{};
  steady::time_point full_until_{};

  bool draining_ = false;
  std::uint32_t sweep_cursor_ = 0;
  steady::time_point next_sweep_{};
  steady::time_point next_expire_{};

  // Figures.
  std::uint64_t keys_in_ = 0, bytes_in_ = 0, keys_out_ = 0, bytes_out_ = 0;
  std::uint64_t syncs_agreed_ = 0, syncs_copied_ = 0;
  std::uint64_t rate_bytes_ = 0;
  steady::time_point rate_since_ = steady::now();
  double rate_ = 0;
};

// ---- the loop ------------------------------------------------------------------------

void data_process::run() {
  if (auto j = ctx_.groups.join(data_group(db_), self_); !j) throw std::runtime_error(j.err().message);
  if (auto j = ctx_.groups.monitor(server_group(db_), self_); !j) throw std::runtime_error(j.err().message);
  log::info("db", "data process ", index_, " of '", db_, "' up as ", self_);
  adopt(ctx_.routes.get(db_));
  renew_lease();

  // The clock is read once a turn and once per 64 messages of it (the
  // wait for the turn's first message reads it too): one request at a time,
  // each read is a request's.
  auto t = steady::now();
  for (;;) {
    auto wake = std::min({next_lease_, next_retry_, report_due() ? next_report_ : steady::time_point::max(),
                          quota_reports() ? next_quota_report_ : steady::time_point::max()});
    if (map_ && me_ >= 0) wake = std::min({wake, next_sweep_, next_expire_});
    // `t` is the end of the last turn: its timers' work since then only
    // makes the wake a little late.
    auto m = wake > t ? tp::receive_until(wake) : tp::receive(clock::duration::zero());
    // Up to 512 messages (and 512 requests, a batch counting each) per
    // turn, then the turn's work (flushes, timers).
    turn_requests_ = 0;
    for (int n = 0; m; ++n) {
      if ((n & 63) == 0) {
        if (n > 0) flush_replies();
        turn_now_ = steady::now();
        turn_ms_ = 0;  // read by the turn's first write
      }
      message& x = *m;
      const bool prefetched = prefetched_ > 0;  // it came from the mailbox's front
      if (prefetched) --prefetched_;
      if (auto* r = x.get_if<request>()) {
        if (!prefetched) prefetch_ahead(*r);
        on_request(*r);
      }
      else if (auto* b = x.get_if<request_batch>()) on_batch(*b);
      else if (auto* rp = x.get_if<replicate>()) on_replicate(*rp);
      else if (auto* a = x.get_if<replicate_ack>()) on_ack(*a);
      else if (auto* tr = x.get_if<transfer_request>()) on_transfer_request(*tr);
      else if (auto* ty = x.get_if<transfer_reply>()) on_transfer_reply(*ty);
      else if (auto* p = x.get_if<purge>()) on_purge(*p);
      else if (auto* u = x.get_if<map_update>()) {
        if (u->db == db_) adopt(decode(*u, map_.get()));
      } else if (auto* g = x.get_if<lease_grant>()) on_grant(*g);
      else if (auto* tg = x.get_if<token_grant>()) on_tokens(*tg);
      else if (auto* c = x.get_if<map_changed>()) {
        if (c->db == db_) adopt(ctx_.routes.get(db_));
      } else if (auto* d = x.get_if<down_msg>()) {
        if (auto it = holder_watch_.find(d->monitor); it != holder_watch_.end()) {
          const pid who = it->second;
          holder_watch_.erase(it);
          on_holder_down(who, d->reason);
        }
        if (auto it = source_by_watch_.find(d->monitor); it != source_by_watch_.end()) {
          const pid who = it->second;
          source_by_watch_.erase(it);
          source_watch_.erase(who);
          on_source_down(who);
        }
      } else if (x.is<registry::group_event>()) {
        next_lease_ = steady::now();  // a new master? announce ourselves at once
        report_all_ = true;
        tokens_asked_ = false;
        if (!token_wait_.empty()) ask_tokens();
      } else if (auto* req = x.get_if<call_request>()) {
        if (req->body.is<stats_request>()) {
          tp::reply(*req, stats());
        } else if (auto* lr = req->body.get_if<locate_request>()) {
          tp::reply(*req, locate(lr->key));
        } else if (auto* dr = req->body.get_if<drain_request>()) {
          drain_reply out;
          if (!dr->check_only) {
            draining_ = true;
            next_lease_ = steady::now();
          }
          bool holds = false;
          if (map_ && me_ >= 0) {
            for (const auto& st : slots_) holds = holds || st.r != role::none;
          }
          out.drained = draining_ && (!map_ || me_ < 0 || (!map_->slots.members()[me_].eligible && !holds));
          tp::reply(*req, out);
        } else if (req->body.is<map_query>()) {
          tp::reply(*req, map_ ? encode(*map_) : map_update{});
        }
      }
      if (n + 1 >= 512 || turn_requests_ >= 512) break;
      m = tp::receive(clock::duration::zero());
    }
    flush_replies();
    t = steady::now();
    if (t >= next_lease_) renew_lease();
    if (t >= next_retry_) {
      next_retry_ = steady::time_point::max();
      transfers_dirty_ = true;
      if (t >= tokens_retry_) {
        tokens_retry_ = steady::time_point::max();
        if (!token_wait_.empty()) ask_tokens();
      } else if (tokens_retry_ != steady::time_point::max()) {
        next_retry_ = tokens_retry_;
      }
    }
    if (transfers_dirty_) pump_transfers();
    flush();
    if (quota_reports() && t >= next_quota_report_) {
      next_quota_report_ = t + std::chrono::milliseconds(250);
      report_all_ = report_all_ || next_report_ == steady::time_point{};
      report(report_all_);
    } else if (report_due() && t >= next_report_) {
      report(report_all_);
    }
    if (t - rate_since_ >= std::chrono::seconds(1)) {
      rate_ = static_cast<double>(rate_bytes_) / std::chrono::duration<double>(t - rate_since_).count();
      rate_bytes_ = 0;
      rate_since_ = t;
    }
    if (map_ && me_ >= 0 && t >= next_sweep_) sweep_tombstones();
    if (t >= next_expire_) {
      log_.expire(t);
      next_expire_ = t + std::chrono::seconds(10);
    }
  }
}

// ---- the map ---------------------------------------------------------------------------

int data_process::member_of(const pid& p) const {
  if (!map_) return -1;
  for (std::size_t i = 0; i < map_->pids.size(); ++i) {
    if (map_->pids[i] == p) return static_cast<int>(i);
  }
  return -1;
}

void data_process::ask_for_map() {
  const auto now = steady::now();
  if (now - map_asked_ < std::chrono::milliseconds(20)) return;
  map_asked_ = now;
  if (auto master = ctx_.groups.oldest(server_group(db_))) {
    tp::send(*master, map_request{db_, self_, map_ ? map_->epoch() : 0});
  }
}

// Brings the map up to `epoch` from the node's route table, or (with `wait`)
// from the master, waiting a little for it.
void data_process::catch_up(std::uint32_t epoch, bool wait) {
  adopt(ctx_.routes.get(db_));
  if (map_ && map_->epoch() >= epoch) return;
  ask_for_map();
  if (!wait) return;
  const auto deadline = steady::now() + std::chrono::milliseconds(100);
  while (!map_ || map_->epoch() < epoch) {
    const auto now = steady::now();
    if (now >= deadline) return;
    auto u = tp::receive_if([](const message& x) { return x.is<map_update>() || x.is<map_changed>(); },
                            deadline - now);
    if (!u) return;
    if (auto* mu = u->get_if<map_update>(); mu && mu->db == db_) adopt(decode(*mu, map_.get()));
    else adopt(ctx_.routes.get(db_));
  }
  turn_now_ = steady::now();  // we waited
}

void data_process::adopt(map_ptr m) {
  if (!m || m->db != db_) return;
  if (map_ && !m->newer_than(*map_)) return;
  if (map_ && m->generation != map_->generation) {
    // The database started anew: nothing held belongs to it.
    for (std::uint32_t s = 0; s < slots_.size(); ++s) (void)table_->drop_slot(s);
    log_.erase_slots([](std::uint32_t) { return true; });
    slots_.assign(slots_.size(), {});
    serve_ok_.assign(slots_.size(), 0);
    fills_.clear();
    syncs_.clear();
    map_ = nullptr;
    lease_epoch_ = 0;
  }
  if (!table_ || table_->slot_count() != m->settings.slots) {
    table_ = std::make_unique<store::table>(m->settings.slots, m->settings.max_memory);
    slots_.assign(m->settings.slots, {});
    serve_ok_.assign(m->settings.slots, 0);
  }
  table_->set_max_memory(m->settings.max_memory);
  const map_ptr old = std::move(map_);
  map_ = m;
  (void)ctx_.routes.update(m);
  const auto mi = m->slots.index_of(member_);
  me_ = mi && m->pids[*mi] == self_ ? static_cast<int>(*mi) : -1;
  const std::uint32_t e = m->epoch();
  dropped_.assign(slots_.size(), 0);
  bool any_dropped = false;

  for (std::uint32_t s = 0; s < m->slots.slot_count(); ++s) {
    if ((s & 4095) == 4095) tp::yield();  // long maps: let the thread's other processes run
    slot_state& st = slots_[s];
    const role before = st.r;
    const int pos = me_ >= 0 ? m->slots.position(s, static_cast<std::uint32_t>(me_)) : -1;
    struct traced {  // logs the slot's change when this iteration ends
      data_process* self;
      std::uint32_t s;
      role before;
      std::uint32_t e;
      ~traced() {
        self->mark(s);
        const auto& now = self->slots_[s];
        if (kTrace && now.r != before) {
          TRACE(self->self_, " slot ", s, " e", e, ": ", role_name(int(before)), " -> ", role_name(int(now.r)),
                " since ", now.since, " serving ", now.serving);
        }
      }
    } trace_guard{this, s, before, e};
    if (pos < 0) {
      if (before != role::none) {
        (void)table_->drop_slot(s);
        dropped_[s] = 1;
        any_dropped = true;
        fills_.erase(s);
        syncs_.erase(s);
        st = slot_state{.fence = st.fence, .inflight = st.inflight};
      }
      continue;
    }
    const store::holder& h = m->slots.holders(s)[static_cast<std::size_t>(pos)];
    if (!h.ready) {
      syncs_.erase(s);
      st.serving = false;
      const pid source = m->primary_pid(s);
      auto job = fills_.find(s);
      const bool same = before == role::filling && st.since == h.since && job != fills_.end() &&
                        job->second.source == source;
      if (!same) {
        const bool keep = before == role::filling && st.since == h.since;
        restart_fill(s, h, keep);
        if (!keep) dropped_[s] = 1, any_dropped = true;
      }
      else if (job->second.done) {
        filled_.push_back({s, st.since, job->second.from_epoch, job->second.source_id});  // not taken yet: again
      }
      continue;
    }
    const bool primary = m->slots.primary(s) == static_cast<std::uint32_t>(me_);
    if (before == role::filling) fills_.erase(s);
    if (!primary) {
      st.r = role::replica;
      st.serving = false;
      syncs_.erase(s);
      continue;
    }
    if (before != role::primary) {
      st.r = role::primary;
      st.serving = false;
      st.primary_epoch = e;
      start_sync(s);
    } else if (auto it = syncs_.find(s); it != syncs_.end()) {
      // Sources no longer listed are gone: they cannot serve, nothing to wait for.
      auto& srcs = it->second.sources;
      std::erase_if(srcs, [&](const sync_source& src) {
        auto i = m->slots.index_of(src.id);
        return !i || m->slots.position(s, *i) < 0;
      });
      for (auto& src : srcs) {
        if (auto i = m->slots.index_of(src.id); i && m->pids[*i] != src.who) {
          src.who = m->pids[*i];  // restarted: it holds nothing, yet it must be fenced
          src.cursor = {};
          src.in_flight = false;
          src.done = false;
        }
      }
      if (std::all_of(srcs.begin(), srcs.end(), [](const sync_source& x) { return x.done; })) finish_sync(s);
    } else if (st.serving) {
      // Still ours; the master waits to hear it before it lets former holders go.
      if (!m->slots.settled(s)) {
        served_.push_back({s, map_->epoch(), table_->live_keys(s)});
      }
    }
  }
  if (any_dropped) log_.erase_slots([&](std::uint32_t s) { return s < dropped_.size() && dropped_[s] != 0; });
  // Writes in flight reach the slot's new holders too.
  for (std::uint32_t wi = 0; wi < writes_.size(); ++wi) {
    inflight& w = writes_[wi];
    if (!w.used || w.sent_map == m) continue;
    send_to_holders(wi, *m, w.sent_map.get());
    w.sent_map = m;
  }
  transfers_dirty_ = true;
  if (old && (!old->master || old->master != m->master)) report_all_ = true;
  turn_now_ = steady::now();  // a long adoption yields
}

void data_process::restart_fill(std::uint32_t s, const store::holder& h, bool keep) {
  slot_state& st = slots_[s];
  // A new fill starts empty: what we held may be stale (we were away). A
  // fill that goes on from a new primary keeps what it has: all of it came
  // from this slot's primaries since we became a holder, and a new primary
  // may have counted on it (see start_sync).
  if (!keep) (void)table_->drop_slot(s);
  TRACE(self_, " slot ", s, " e", map_->epoch(), ": fill from ", map_->primary_pid(s), keep ? " (keeps what it has)" : " (starts empty)");
  st.r = role::filling;
  st.serving = false;
  st.since = h.since;
  fill_job job;
  job.source = map_->primary_pid(s);
  const std::uint32_t p = map_->slots.primary(s);
  job.source_id = p == store::slot_map::no_primary ? 0 : map_->member_id(p);
  job.from_epoch = map_->epoch();
  fills_[s] = job;
}

void data_process::start_sync(std::uint32_t s) {
  sync_job job;
  const auto& sm = map_->slots;
  const std::uint32_t ho = sm.handover(s);
  if (ho == static_cast<std::uint32_t>(me_)) {
    // nothing to sync: the slot starts empty here
  } else if (ho != store::slot_map::no_primary) {
    job.handover = true;
    job.sources.push_back({map_->member_id(ho), map_->pids[ho], transfer_purpose::fence});
  } else {
    // Every other holder, filling ones too: a write may have been
    // acknowledged with the copy of a filling holder.
    for (const store::holder& h : sm.holders(s)) {
      if (h.member == static_cast<std::uint32_t>(me_)) continue;
      job.sources.push_back({map_->member_id(h.member), map_->pids[h.member], transfer_purpose::sync});
    }
  }
  if (kTrace) {
    std::string list;
    for (auto& src : job.sources) list += " " + to_string(src.who) + (src.purpose == transfer_purpose::fence ? "(fence)" : "(sync)");
    TRACE(self_, " slot ", s, " e", map_->epoch(), ": primary, syncing from", list.empty() ? " nobody" : list);
  }
  if (job.sources.empty()) {
    syncs_.erase(s);
    finish_sync(s);
    return;
  }
  syncs_[s] = std::move(job);
}

void data_process::finish_sync(std::uint32_t s) {
  auto it = syncs_.find(s);
  if (it != syncs_.end()) {
    // Push back to every ready holder what it lacked, so that each holds
    // every acknowledged write again.
    auto repair = [&](const pid& to, const store::entry_view& e) {
      repl_write w;
      w.slot = s;
      w.key = std::string(e.key);
      w.value = std::string(e.value);
      w.v_epoch = e.version.epoch;
      w.v_hlc = e.version.hlc;
      w.tombstone = e.tombstone;
      enqueue(to, std::move(w), kUntracked);
    };
    for (sync_source& src : it->second.sources) {
      if (src.purpose != transfer_purpose::sync) continue;
      // A filling holder gets the whole slot from us by its fill: repairing
      // it too would send a restarted (empty) member every slot twice.
      const auto mi = map_->slots.index_of(src.id);
      const int pos = mi ? map_->slots.position(s, *mi) : -1;
      if (pos < 0 || !map_->slots.holders(s)[static_cast<std::size_t>(pos)].ready) continue;
      if (src.same) {
        for (const std::string& k : it->second.changed) {
          if (auto e = table_->find(k)) repair(src.who, *e);
        }
        continue;
      }
      store::table::cursor c;
      while (!table_->scan(s, c, ~std::size_t{0}, [&](const store::entry_view& e) {
        auto seen = src.seen.find(std::string(e.key));
        if (seen != src.seen.end() && seen->second >= e.version) return;
        repair(src.who, e);
      })) {
      }
    }
    syncs_.erase(it);
  }
  slot_state& st = slots_[s];
  st.serving = true;
  mark(s);
  TRACE(self_, " slot ", s, " e", map_->epoch(), ": serving");
  served_.push_back({s, map_->epoch(), table_->live_keys(s)});
  if (syncs_.empty()) log::debug("db", db_, ": ", self_, " serves every slot it leads at epoch ", map_->epoch());
}

// ---- requests --------------------------------------------------------------------------

bool data_process::serving(std::uint32_t s) const {
  return serve_ok_[s] != 0 && lease_ok() && map_->epoch() >= lease_epoch_;
}

void data_process::answer(const request& r, reply rep) {
  if (!r.reply_to) return;
  rep.id = r.id;
  if (rep.code != 0) rep.epoch = map_ ? map_->epoch() : 0;
  send_reply(r.reply_to, std::move(rep));
}

void data_process::answer(const waiter& w, reply rep) {
  if (!w.to) return;
  rep.id = w.id;
  send_reply(w.to, std::move(rep));
}

void data_process::send_reply(const pid& to, reply&& rep) {
  const std::size_t bytes = rep.value.size() + rep.message.size() + 32;
  replies_.add(to, std::move(rep), bytes);
}

void data_process::flush_replies() { replies_.flush(); }

// The requests of a batch, 16 at a time: each group's table lines are
// prefetched together (as prefetch_ahead does for the mailbox), then served.
// The clock that leases are checked against is read again every 64
// requests, as the turn does every 64 messages (a batch may hold hundreds).
void data_process::on_batch(request_batch& b) {
  constexpr std::size_t kGroup = 16;
  for (std::size_t first = 0; first < b.requests.size(); first += kGroup) {
    if (first % 64 == 0) {
      turn_now_ = steady::now();
      turn_ms_ = 0;
      if (first > 0) flush_replies();
    }
    turn_requests_ += static_cast<int>(std::min(kGroup, b.requests.size() - first));
    const std::size_t end = std::min(b.requests.size(), first + kGroup);
    if (table_) {
      std::uint64_t hashes[kGroup];
      for (std::size_t i = first; i < end; ++i) hashes[i - first] = b.requests[i].key_hash();
      for (int stage = 0; stage < 3; ++stage) {
        for (std::size_t i = 0; i < end - first; ++i) table_->prefetch(hashes[i], stage);
      }
    }
    for (std::size_t i = first; i < end; ++i) on_request(b.requests[i]);
  }
}

// The table is larger than the caches: a lookup is three dependent cache
// misses (the slot's index, the home cell, the entry), most of a request's
// time at high load. When a run of requests starts, those waiting in the
// mailbox (up to kPrefetch) are prefetched together, stage by stage, so that
// their misses overlap instead of coming one after another.
void data_process::prefetch_ahead(const request& current) {
  if (!table_) return;
  constexpr std::size_t kPrefetch = 16;
  std::uint64_t hashes[kPrefetch + 1];
  std::size_t n = 0;
  hashes[n++] = current.key_hash();
  std::size_t looked = 0;
  for (; looked < kPrefetch; ++looked) {
    const message* next = tp::peek(looked);
    if (next == nullptr) break;
    if (const auto* r = next->get_if<request>()) hashes[n++] = r->key_hash();
  }
  prefetched_ = looked;
  for (int stage = 0; stage < 3; ++stage) {
    for (std::size_t i = 0; i < n; ++i) table_->prefetch(hashes[i], stage);
  }
}

void data_process::on_request(request& r) {
  if (!map_ || r.epoch > map_->epoch()) catch_up(r.epoch, false);
  if (!map_ || !table_) {
    answer(r, error_reply(0, {errc::moved, "this data process has no map of '" + db_ + "' yet; retry"}));
    return;
  }
  const std::uint64_t hash = r.key_hash();
  const std::uint32_t s = table_->slot_of(hash);
  if (!serving(s)) {
    const slot_state& st = slots_[s];
    const char* why = st.r != role::primary ? "not its primary" : !st.serving ? "still syncing it"
                      : st.fence > map_->epoch() ? "fenced by a newer primary" : "no lease from the master";
    answer(r, error_reply(0, {errc::moved, "slot " + std::to_string(s) + " at epoch " + std::to_string(map_->epoch()) +
                                               ": " + why + "; retry"}));
    return;
  }
  const op kind = static_cast<op>(r.kind);
  if (kind == op::get || kind == op::exists) {
    if (pending_keys_.contains(hash)) return park(std::move(r));
    auto e = table_->find(r.key, hash);
    reply rep;
    rep.found = e && !e->tombstone;
    if (rep.found && kind == op::get) rep.value = std::string(e->value);
    answer(r, std::move(rep));
    return;
  }
  if (r.wid.retry && r.wid.client != 0) {
    // Sent before: answer as the first time, never apply twice.
    if (auto rec = log_.find(r.wid.client, r.wid.seq)) {
      TRACE(self_, " retry of ", r.key, " answered from the log");
      reply rep;
      rep.found = rec->found;
      answer(r, std::move(rep));
      return;
    }
    for (inflight& w : writes_) {
      if (w.used && !w.committed && w.wid.client == r.wid.client && w.wid.seq == r.wid.seq) {
        w.more.push_back({r.id, r.reply_to});
        return;
      }
    }
  }
  const auto& cfg = map_->settings;
  // Writes whose outcome depends on the key's state wait for writes in flight on it.
  const bool insert_counts = cfg.max_keys != 0 && kind != op::remove;
  if ((kind == op::remove || insert_counts) && pending_keys_.contains(hash)) return park(std::move(r));
  auto stored = table_->find(r.key, hash);
  const bool live = stored && !stored->tombstone;
  if (kind == op::remove && !live) {
    answer(r, reply{});  // nothing to remove: nothing is stored
    return;
  }
  if (kind != op::remove) {
    if (r.key.size() > cfg.max_key_bytes || r.key.empty() || r.value.size() > cfg.max_value_bytes) {
      answer(r, error_reply(0, {r.key.empty() ? errc::bad_argument
                                : r.key.size() > cfg.max_key_bytes ? errc::key_too_large
                                                                   : errc::value_too_large,
                                "the key or value is over this database's limits"}));
      return;
    }
    if (cfg.max_memory != 0 &&
        table_->memory_bytes() + r.key.size() + r.value.size() + 64 > cfg.max_memory) {
      answer(r, error_reply(0, {errc::out_of_memory, "the data process is at its memory limit of " +
                                                         std::to_string(cfg.max_memory) + " bytes"}));
      return;
    }
  }
  bool token = false;
  if (insert_counts && !live) {
    if (tokens_ == 0) {
      if (steady::now() < full_until_) {
        answer(r, error_reply(0, {errc::too_many_keys, "the database is at its key limit of " +
                                                           std::to_string(cfg.max_keys) + " keys"}));
        return;
      }
      ask_tokens();
      if (token_wait_.size() < kMaxParked) token_wait_.push_back(std::move(r));
      else answer(r, error_reply(0, {errc::unavailable, "too many inserts wait for key tokens; retry"}));
      return;
    }
    --tokens_;
    ++tokens_in_flight_;
    token = true;
    if (tokens_ < 16) ask_tokens();
  }

  std::uint32_t wi;
  if (!free_writes_.empty()) {
    wi = free_writes_.back();
    free_writes_.pop_back();
  } else {
    wi = static_cast<std::uint32_t>(writes_.size());
    writes_.emplace_back();
  }
  inflight& w = writes_[wi];
  w.used = true;
  w.committed = false;
  w.applied = false;
  w.tombstone = kind == op::remove;
  w.found = live;
  w.token = token;
  w.slot = s;
  w.hash = hash;
  w.key = std::move(r.key);
  w.value = w.tombstone ? std::string() : std::move(r.value);
  if (turn_ms_ == 0) turn_ms_ = store::version_clock::now_millis();
  w.v = clock_.next_at(turn_ms_, map_->epoch(), stored ? stored->version : version{});
  w.wid = r.wid;
  w.first = {r.id, r.reply_to};
  w.more.clear();
  w.needed = map_->slots.write_quorum(s) - 1;
  w.acks = w.refused = w.sent = 0;
  // Reads of the key wait while the write is in flight (not for one that commits at once).
  w.pending_key = w.needed > 0;
  if (w.pending_key) pending_keys_.add(hash);
  ++slots_[s].inflight;
  TRACE(self_, " write ", w.key, " slot ", s, " v", w.v.epoch, ".", w.v.hlc, " needs ", w.needed, " more");
  send_to_holders(wi, *map_, nullptr);
  // Only a write that waits for holders needs its map (on a map change it
  // goes to the new holders); one with none (R = 1) settles now, and
  // skips the map's reference count.
  if (w.sent != 0) w.sent_map = map_;
  if (w.needed == 0) commit(wi);
  if (w.sent == 0) settle(wi);
}

void data_process::send_to_holders(std::uint32_t wi, const cluster_map& m, const cluster_map* already) {
  inflight& w = writes_[wi];
  for (const store::holder& h : m.slots.holders(w.slot)) {
    if (static_cast<int>(h.member) == me_ && &m == map_.get()) continue;
    const pid to = m.pids[h.member];
    if (to == self_) continue;
    if (already != nullptr) {
      auto i = already->slots.index_of(m.member_id(h.member));
      if (i && already->slots.position(w.slot, *i) >= 0 && already->pids[*i] == to) continue;
    }
    repl_write x;
    x.slot = w.slot;
    x.key = w.key;
    x.value = w.value;
    x.v_epoch = w.v.epoch;
    x.v_hlc = w.v.hlc;
    x.tombstone = w.tombstone;
    x.wid = w.wid;
    x.found = w.found;
    enqueue(to, std::move(x), wi);
    ++w.sent;
  }
}

void data_process::enqueue(const pid& to, repl_write w, std::uint32_t wi) {
  auto [it, fresh] = streams_.try_emplace(to);
  stream_out& so = it->second;
  if (fresh) {
    so.monitor = tp::monitor(to);
    holder_watch_[so.monitor] = to;
  }
  const std::uint32_t slot = w.slot;
  so.batch_bytes += w.key.size() + w.value.size() + 64;
  so.batch.writes.push_back(std::move(w));
  so.batch_writes.push_back({wi, slot});
  // Batches stay well under a frame (a turn may gather large values).
  if (so.batch_bytes >= kMaxBatchBytes) send_batch(to, so);
}

void data_process::send_batch(const pid& to, stream_out& so) {
  if (so.batch.writes.empty()) return;
  so.batch.from = self_;
  so.batch.epoch = map_ ? map_->epoch() : 0;
  // Numbers never repeat for a holder, not even after its stream was dropped.
  so.batch.stream = next_stream_++;
  so.unacked.emplace_back(so.batch.stream, std::move(so.batch_writes));
  so.batch_writes.clear();
  so.batch_bytes = 0;
  tp::send(to, std::move(so.batch));
  so.batch = replicate{};
}

void data_process::commit(std::uint32_t wi) {
  inflight& w = writes_[wi];
  auto applied = w.tombstone ? table_->remove(w.key, w.hash, w.v, false) : table_->put(w.key, w.hash, w.value, w.v, false);
  if (!applied) {
    fail(wi, applied.code(), applied.err().message);
    return;
  }
  w.committed = true;
  w.applied = true;
  TRACE(self_, " commit ", w.key, " acks ", w.acks, " sent ", w.sent);
  log_.add(w.wid.client, {w.wid.seq, w.slot, w.found}, w.wid.floor, turn_now_);  // the turn's clock: for a 5-minute expiry
  if (w.token && tokens_in_flight_ > 0) --tokens_in_flight_;  // it is a live key now
  reply rep;
  rep.found = w.found;
  answer(w.first, rep);
  for (const waiter& x : w.more) answer(x, rep);
  if (w.tombstone && w.found && map_->settings.max_keys != 0) ++tokens_;  // a key fewer
  if (w.tombstone != !w.found) slots_[w.slot].live_dirty = true;
  if (slots_[w.slot].inflight > 0) --slots_[w.slot].inflight;
  if (w.pending_key && pending_keys_.remove(w.hash)) unpark(w.hash);
  w.pending_key = false;
}

void data_process::fail(std::uint32_t wi, errc code, const std::string& why) {
  inflight& w = writes_[wi];
  if (w.committed) return;
  TRACE(self_, " fail ", w.key, ": ", why);
  w.committed = true;  // answered: no second answer
  reply rep = error_reply(0, {code, why});
  answer(w.first, rep);
  for (const waiter& x : w.more) answer(x, rep);
  if (w.token) {
    ++tokens_;
    if (tokens_in_flight_ > 0) --tokens_in_flight_;
  }
  if (slots_[w.slot].inflight > 0) --slots_[w.slot].inflight;
  if (w.pending_key && pending_keys_.remove(w.hash)) unpark(w.hash);
  w.pending_key = false;
}

void data_process::settle(std::uint32_t wi) {
  inflight& w = writes_[wi];
  if (!w.committed) fail(wi, errc::unavailable, "the write reached too few holders; it may have been stored");
  // Every holder has the tombstone: it can go everywhere.
  if (w.applied && w.tombstone && w.acks == w.sent && w.refused == 0 && map_) {
    for (const store::holder& h : map_->slots.holders(w.slot)) {
      const pid to = map_->pids[h.member];
      if (to == self_) continue;
      repl_write x;
      x.key = w.key;
      x.v_epoch = w.v.epoch;
      x.v_hlc = w.v.hlc;
      purges_[to].push_back(std::move(x));
    }
    (void)table_->purge(w.key, w.hash, w.v);
  }
  w.used = false;
  w.key.clear();
  w.value.clear();
  w.more.clear();
  w.sent_map.reset();
  free_writes_.push_back(wi);
}

void data_process::unpark(std::uint64_t hash) {
  if (parked_.empty()) return;
  std::deque<request> again;
  std::deque<request> keep;
  for (request& r : parked_) {
    if (store::key_hash(r.key) == hash) again.push_back(std::move(r));
    else keep.push_back(std::move(r));
  }
  parked_.swap(keep);
  for (request& r : again) {
    if (pending_keys_.contains(hash)) park(std::move(r));
    else on_request(r);
  }
}

// ---- replication ---------------------------------------------------------------------

void data_process::on_replicate(replicate& r) {
  if (!map_ || r.epoch > map_->epoch()) catch_up(r.epoch, true);
  replicate_ack ack;
  ack.from = self_;
  ack.stream = r.stream;
  ack.epoch = map_ ? map_->epoch() : 0;
  const int sender = member_of(r.from);
  const auto now = steady::now();
  for (std::uint32_t i = 0; i < r.writes.size(); ++i) {
    repl_write& w = r.writes[i];
    bool take = map_ && table_ && w.slot < slots_.size();
    bool handed = false;  // a late write of the primary we take over from
    if (take) {
      slot_state& st = slots_[w.slot];
      take = st.r != role::none && r.epoch >= st.fence;
      // A stale primary (our map says the slot has another) is refused,
      // except by the primary it hands over to until the handover's fence:
      // what it sent before the fence is what the new primary takes over.
      if (take && r.epoch <= map_->epoch()) {
        take = sender >= 0 && map_->slots.primary(w.slot) == static_cast<std::uint32_t>(sender);
        if (!take && st.r == role::primary && !st.serving) {
          auto job = syncs_.find(w.slot);
          handed = job != syncs_.end() && job->second.handover && !job->second.sources.empty() &&
                   job->second.sources[0].who == r.from && !job->second.sources[0].done;
          take = handed;
        }
      }
      if (take && r.epoch > st.fence) {
        st.fence = r.epoch;
        mark(w.slot);
      }
    }
    if (!take) {
      TRACE(self_, " refuse ", w.key, " from ", r.from, " e", r.epoch);
      ack.refused.push_back(i);
      continue;
    }
    TRACE(self_, " apply ", w.key, " from ", r.from, " e", r.epoch, " v", w.v_epoch, ".", w.v_hlc);
    const version v{w.v_epoch, w.v_hlc};
    clock_.observe(v);
    const std::uint64_t hash = store::key_hash(w.key);
    auto applied = w.tombstone ? table_->remove(w.key, hash, v, false) : table_->put(w.key, hash, w.value, v, false);
    if (!applied) {
      ack.refused.push_back(i);
      continue;
    }
    log_.add(w.wid.client, {w.wid.seq, w.slot, w.found}, w.wid.floor, now);
    if (handed) {
      // The other holders refuse it from the old primary now: it reaches
      // them from us, before we serve (so before any handover away from us).
      for (const store::holder& h : map_->slots.holders(w.slot)) {
        const pid to = map_->pids[h.member];
        if (to == self_ || to == r.from) continue;
        repl_write copy = w;
        copy.wid = {};
        enqueue(to, std::move(copy), kUntracked);
      }
    }
  }
  tp::send(r.from, std::move(ack));
}

void data_process::on_ack(const replicate_ack& a) {
  if (map_ && a.epoch > map_->epoch()) catch_up(a.epoch, false);
  auto it = streams_.find(a.from);
  if (it == streams_.end()) return;
  auto& q = it->second.unacked;
  // Every batch gets its ack, in order (one pair of processes): a batch
  // still unacked before this one never arrived.
  const int holder = member_of(a.from);
  while (!q.empty() && q.front().first <= a.stream) {
    auto batch = std::move(q.front().second);
    const bool this_one = q.front().first == a.stream;
    q.pop_front();
    for (std::uint32_t i = 0; i < batch.size(); ++i) {
      const std::uint32_t wi = batch[i].write;
      const bool refused = !this_one || std::binary_search(a.refused.begin(), a.refused.end(), i);
      if (!this_one && holder >= 0) lagging_.push_back({map_->member_id(static_cast<std::uint32_t>(holder)), batch[i].slot});
      if (wi == kUntracked) continue;
      inflight& w = writes_[wi];
      if (!w.used) continue;
      if (refused) ++w.refused;
      else ++w.acks;
      if (!w.committed && w.acks >= w.needed) commit(wi);
      else if (!w.committed && w.acks + (w.sent - w.acks - w.refused) < w.needed) {
        fail(wi, errc::unavailable, "holders of the slot refused the write (a newer map); it may have been stored");
      }
      if (w.acks + w.refused == w.sent) settle(wi);
    }
  }
}

void data_process::on_holder_down(const pid& who, const exit_reason& why) {
  auto it = streams_.find(who);
  if (it == streams_.end()) return;
  auto q = std::move(it->second.unacked);
  std::vector<sent_write> current = std::move(it->second.batch_writes);
  streams_.erase(it);
  q.emplace_back(0, std::move(current));
  // Unreachable, not dead: it lives on without what was on its way to it.
  // The master makes it refill those slots before it counts as holding them.
  const int holder = why.what == exit_reason::kind::noconnection ? member_of(who) : -1;
  std::set<std::uint32_t> missed;
  for (auto& [stream, batch] : q) {
    for (auto [wi, slot] : batch) {
      if (holder >= 0) missed.insert(slot);
      if (wi == kUntracked) continue;
      inflight& w = writes_[wi];
      if (!w.used) continue;
      ++w.refused;
      if (!w.committed && w.acks + (w.sent - w.acks - w.refused) < w.needed) {
        fail(wi, errc::unavailable, "a holder of the slot went down; the write may have been stored");
      }
      if (w.acks + w.refused == w.sent) settle(wi);
    }
  }
  for (std::uint32_t slot : missed) lagging_.push_back({map_->member_id(static_cast<std::uint32_t>(holder)), slot});
}

void data_process::on_purge(const purge& p) {
  if (!table_) return;
  for (std::size_t i = 0; i < p.keys.size() && i < p.v_epochs.size() && i < p.v_hlcs.size(); ++i) {
    (void)table_->purge(p.keys[i], store::key_hash(p.keys[i]), {p.v_epochs[i], p.v_hlcs[i]});
  }
}

void data_process::flush() {
  for (auto& [to, so] : streams_) send_batch(to, so);
  for (auto& [to, list] : purges_) {
    purge p;
    p.from = self_;
    p.epoch = map_ ? map_->epoch() : 0;
    for (auto& w : list) {
      p.keys.push_back(std::move(w.key));
      p.v_epochs.push_back(w.v_epoch);
      p.v_hlcs.push_back(w.v_hlc);
    }
    tp::send(to, std::move(p));
  }
  purges_.clear();
}

// ---- transfers ------------------------------------------------------------------------

void data_process::on_transfer_request(transfer_request& r) {
  if (!map_ || r.epoch > map_->epoch()) catch_up(r.epoch, false);
  transfer_reply out;
  out.from = self_;
  out.epoch = map_ ? map_->epoch() : 0;
  out.purpose = r.purpose;
  out.id = r.id;
  const auto purpose = static_cast<transfer_purpose>(r.purpose);
  const int requester = member_of(r.from);
  std::size_t budget = kTransferBytes;
  for (transfer_part& part : r.parts) {
    transfer_part p;
    p.slot = part.slot;
    p.generation = part.generation;
    p.position = part.position;
    if (!map_ || !table_ || part.slot >= slots_.size()) {
      p.code = static_cast<std::uint16_t>(errc::moved);
      out.parts.push_back(std::move(p));
      continue;
    }
    const std::uint32_t s = part.slot;
    slot_state& st = slots_[s];
    if (purpose == transfer_purpose::fill) {
      // Only the serving primary hands a slot out, and only to a holder.
      const bool ok = serving(s) && requester >= 0 && map_->slots.position(s, static_cast<std::uint32_t>(requester)) >= 0;
      if (!ok) {
        p.code = static_cast<std::uint16_t>(errc::moved);
        out.parts.push_back(std::move(p));
        continue;
      }
    } else {
      // A new primary: refused if our map is as new and names another primary.
      if (r.epoch <= map_->epoch() &&
          (requester < 0 || map_->slots.primary(s) != static_cast<std::uint32_t>(requester))) {
        p.code = static_cast<std::uint16_t>(errc::moved);
        out.parts.push_back(std::move(p));
        continue;
      }
      st.fence = std::max(st.fence, r.epoch);
      if (st.fence > map_->epoch()) st.serving = false;  // fenced: another primary serves now
      mark(s);
      if (purpose == transfer_purpose::fence) {
        p.done = true;
        out.parts.push_back(std::move(p));
        continue;
      }
      if (part.generation == 0 && part.position == 0 && part.digest == table_->digest(s)) {
        // The new primary holds what we hold: only the write log goes.
        p.done = p.same = true;
        out.parts.push_back(std::move(p));
        continue;
      }
    }
    if (budget == 0) {  // not reached this time
      out.parts.push_back(std::move(p));
      continue;
    }
    store::table::cursor c{part.generation, part.position};
    std::size_t used = 0;
    p.done = table_->scan(s, c, budget, [&](const store::entry_view& e) {
      p.entries.push_back({std::string(e.key), std::string(e.value), e.version.epoch, e.version.hlc, e.tombstone});
      used += e.key.size() + e.value.size() + 32;
    });
    p.generation = c.generation;
    p.position = c.position;
    budget = used >= budget ? 0 : budget - used;
    keys_out_ += p.entries.size();
    bytes_out_ += used;
    out.parts.push_back(std::move(p));
  }
  // A finished slot takes its write log along (retries answered there too).
  if (log_.clients() != 0 && purpose != transfer_purpose::fence) {
    std::unordered_map<std::uint32_t, std::size_t> finished;
    for (std::size_t i = 0; i < out.parts.size(); ++i) {
      if (out.parts[i].done && out.parts[i].code == 0) finished.emplace(out.parts[i].slot, i);
    }
    if (!finished.empty()) {
      log_.for_slots([&](std::uint32_t s) { return finished.count(s) != 0; },
                     [&](std::uint64_t client, const store::write_log::record& rec) {
                       out.parts[finished.find(rec.slot)->second].log.push_back({client, rec.seq, rec.found});
                     });
    }
  }
  tp::send(r.from, std::move(out));
}

void data_process::merge(std::uint32_t s, std::vector<wire_entry>& entries, std::vector<wire_log_record>& log,
                         std::unordered_map<std::string, version>* seen, std::vector<std::string>* changed) {
  const auto now = steady::now();
  for (wire_entry& e : entries) {
    const version v{e.v_epoch, e.v_hlc};
    clock_.observe(v);
    const std::uint64_t hash = store::key_hash(e.key);
    if (table_->slot_of(hash) != s) continue;  // not of this slot: a confused peer
    auto r = e.tombstone ? table_->remove(e.key, hash, v, false) : table_->put(e.key, hash, e.value, v, false);
    if (changed != nullptr && r && *r != store::put_outcome::stale) changed->push_back(e.key);
    bytes_in_ += e.key.size() + e.value.size();
    rate_bytes_ += e.key.size() + e.value.size() + 32;
    ++keys_in_;
    if (seen != nullptr) (*seen)[std::move(e.key)] = v;
  }
  for (const wire_log_record& l : log) log_.add(l.client, {l.seq, s, l.found}, 0, now);
  slots_[s].live_dirty = true;
}

void data_process::on_transfer_reply(transfer_reply& r) {
  if (auto it = transfers_out_.find(r.from); it != transfers_out_.end() && it->second > 0) --it->second;
  transfers_dirty_ = true;
  if (map_ && r.epoch > map_->epoch()) catch_up(r.epoch, false);
  const auto purpose = static_cast<transfer_purpose>(r.purpose);
  const auto later = steady::now() + std::chrono::milliseconds(20);
  for (transfer_part& p : r.parts) {
    if (purpose == transfer_purpose::fill) {
      auto it = fills_.find(p.slot);
      if (it == fills_.end() || it->second.source != r.from || !it->second.in_flight) continue;
      fill_job& job = it->second;
      job.in_flight = false;
      if (p.code != 0) {
        job.retry_at = later;
        next_retry_ = std::min(next_retry_, later);
        continue;
      }
      merge(p.slot, p.entries, p.log, nullptr, nullptr);
      job.cursor = {p.generation, p.position};
      if (p.done) {
        job.done = true;
        TRACE(self_, " slot ", p.slot, ": filled from ", r.from);
        filled_.push_back({p.slot, slots_[p.slot].since, job.from_epoch, job.source_id});
      }
      continue;
    }
    auto it = syncs_.find(p.slot);
    if (it == syncs_.end()) continue;
    sync_source* src = nullptr;
    for (auto& x : it->second.sources) {
      if (x.who == r.from && x.in_flight) src = &x;
    }
    if (src == nullptr) continue;
    src->in_flight = false;
    if (p.code != 0) {
      src->retry_at = later;
      next_retry_ = std::min(next_retry_, later);
      continue;
    }
    if (src->purpose == transfer_purpose::sync) {
      src->same = p.same;
      merge(p.slot, p.entries, p.log, p.same ? nullptr : &src->seen, &it->second.changed);
    }
    src->cursor = {p.generation, p.position};
    if (p.done) {
      src->done = true;
      if (src->purpose == transfer_purpose::sync) ++(p.same ? syncs_agreed_ : syncs_copied_);
    }
    const auto& srcs = it->second.sources;
    if (std::all_of(srcs.begin(), srcs.end(), [](const sync_source& x) { return x.done; })) finish_sync(p.slot);
  }
}

void data_process::on_source_down(const pid& who) {
  transfers_out_.erase(who);
  const auto later = steady::now() + std::chrono::milliseconds(50);
  for (auto& [s, job] : fills_) {
    if (job.source == who) {
      job.in_flight = false;
      job.retry_at = later;  // a new map names a new primary; until then, ask again
    }
  }
  for (auto it = syncs_.begin(); it != syncs_.end(); ++it) {
    for (auto& src : it->second.sources) {
      if (src.who != who) continue;
      src.in_flight = false;
      src.retry_at = later;
      if (it->second.handover) {
        // The former primary died before it was fenced: fall back to a full
        // sync from every other ready holder.
        const std::uint32_t s = it->first;
        it->second.handover = false;
        it->second.sources.clear();
        for (const store::holder& h : map_->slots.holders(s)) {
          if (h.member == static_cast<std::uint32_t>(me_)) continue;
          it->second.sources.push_back({map_->member_id(h.member), map_->pids[h.member], transfer_purpose::sync});
        }
        break;
      }
    }
  }
  next_retry_ = std::min(next_retry_, later);
}

void data_process::pump_transfers() {
  transfers_dirty_ = false;
  if (!map_) return;
  const auto now = steady::now();
  struct pending {
    std::vector<transfer_part> fill, sync, fence;
  };
  std::unordered_map<pid, pending> by_source;
  auto room = [&](const pid& p) { return transfers_out_[p] < kTransfersPerSource; };
  for (auto& [s, job] : fills_) {
    if (job.in_flight || job.done || !job.source || job.source == self_) continue;
    if (job.retry_at > now) {
      next_retry_ = std::min(next_retry_, job.retry_at);
      continue;
    }
    auto& v = by_source[job.source].fill;
    if (v.size() < kSlotsPerTransfer && room(job.source)) v.push_back({s, 0, job.cursor.generation, job.cursor.position});
  }
  for (auto& [s, job] : syncs_) {
    for (auto& src : job.sources) {
      if (src.in_flight || src.done || !src.who) continue;
      if (src.retry_at > now) {
        next_retry_ = std::min(next_retry_, src.retry_at);
        continue;
      }
      auto& v = src.purpose == transfer_purpose::sync ? by_source[src.who].sync : by_source[src.who].fence;
      if (v.size() < kSlotsPerSync && room(src.who)) {
        v.push_back({s, 0, src.cursor.generation, src.cursor.position});
        if (src.cursor.generation == 0 && src.cursor.position == 0) v.back().digest = table_->digest(s);
      }
    }
  }
  for (auto& [source, p] : by_source) {
    if (!source_watch_.count(source)) {
      const ref w = tp::monitor(source);
      source_watch_[source] = w;
      source_by_watch_[w] = source;
    }
    auto send = [&](std::vector<transfer_part>& parts, transfer_purpose purpose) {
      if (parts.empty() || transfers_out_[source] >= kTransfersPerSource) return;
      for (auto& part : parts) {
        if (purpose == transfer_purpose::fill) fills_[part.slot].in_flight = true;
        else {
          for (auto& src : syncs_[part.slot].sources) {
            if (src.who == source && src.purpose == purpose) src.in_flight = true;
          }
        }
      }
      ++transfers_out_[source];
      tp::send(source, transfer_request{self_, map_->epoch(), static_cast<std::uint8_t>(purpose), next_transfer_++,
                                        std::move(parts)});
    };
    send(p.fence, transfer_purpose::fence);
    send(p.sync, transfer_purpose::sync);
    send(p.fill, transfer_purpose::fill);
  }
}

// ---- the master ------------------------------------------------------------------------

void data_process::renew_lease() {
  const auto now = steady::now();
  const std::uint64_t lease_ms = map_ ? map_->settings.lease_ms : static_cast<std::uint64_t>(ctx_.down_after.count());
  next_lease_ = now + std::chrono::milliseconds(std::max<std::uint64_t>(lease_ms / 4, 10));
  auto master = ctx_.groups.oldest(server_group(db_));
  if (!master) return;
  lease_sent_.emplace_back(++lease_seq_, now);
  while (lease_sent_.size() > 16) lease_sent_.pop_front();
  tp::send(*master, lease_request{self_, member_, index_, lease_seq_, map_ ? map_->epoch() : 0, draining_});
}

void data_process::on_grant(const lease_grant& g) {
  for (auto& [seq, sent] : lease_sent_) {
    // The lease runs from when we asked: the master granted it later, so
    // ours ends before the master's view of it does.
    // (Less a margin: the lease is checked against a clock read once per 64 messages.)
    if (seq == g.seq) {
      lease_until_ = std::max(lease_until_, sent + std::chrono::milliseconds(g.duration_ms) - std::chrono::milliseconds(20));
    }
  }
  // The lease is for the master's map: not before we hold it too.
  lease_epoch_ = std::max(lease_epoch_, g.epoch);
  if (g.report_all && !report_all_) {
    report_all_ = true;
    for (auto& [s, job] : fills_) {  // fills already done, again
      if (job.done) filled_.push_back({s, slots_[s].since, job.from_epoch, job.source_id});
    }
  }
  if (!map_ || g.epoch > map_->epoch()) catch_up(g.epoch, false);
}

void data_process::report(bool all) {
  auto master = ctx_.groups.oldest(server_group(db_));
  next_report_ = steady::now() + std::chrono::milliseconds(20);
  if (!master) return;
  member_report r;
  r.from = self_;
  r.member = member_;
  r.epoch = map_ ? map_->epoch() : 0;
  r.filled = std::move(filled_);
  filled_.clear();
  r.lagging = std::move(lagging_);
  lagging_.clear();
  if (tokens_ > 1024) tokens_ = 512;  // give back what others may need
  r.tokens = tokens_ + tokens_in_flight_;  // tokens of inserts not yet counted as keys are still ours
  r.received = tokens_received_;
  std::unordered_set<std::uint32_t> listed;
  for (auto& s : served_) listed.insert(s.slot);
  r.serving = std::move(served_);
  served_.clear();
  if (table_) {
    for (std::uint32_t s = 0; s < slots_.size(); ++s) {
      const slot_state& st = slots_[s];
      // Synced as primary (lease or not: a new master grants none before it heard this).
      if (!(st.serving && st.r == role::primary && st.fence <= map_->epoch()) || listed.count(s)) continue;
      if (all || slots_[s].live_dirty) r.serving.push_back({s, map_->epoch(), table_->live_keys(s)});
      slots_[s].live_dirty = false;
    }
  }
  r.all_served = all;
  report_all_ = false;
  tp::send(*master, std::move(r));
}

void data_process::ask_tokens() {
  // One request at a time; one that got no answer (the master went away) is asked again.
  if (tokens_asked_ && steady::now() - tokens_asked_at_ < std::chrono::milliseconds(500)) return;
  auto master = ctx_.groups.oldest(server_group(db_));
  if (!master) return;
  tokens_asked_ = true;
  tokens_asked_at_ = steady::now();
  // First what our inserts and removes did to the slots' counts, so the
  // master sees held tokens and keys at one instant.
  report(report_all_);
  tp::send(*master, token_request{self_, member_, 256, tokens_ + tokens_in_flight_, tokens_received_});
}

void data_process::on_tokens(const token_grant& g) {
  if (g.recall) {
    // Another member needs the room: give back what we hold.
    tokens_ = 0;
    report(report_all_);
    return;
  }
  tokens_asked_ = false;
  tokens_ += g.granted;
  tokens_received_ += g.granted;
  if (g.granted == 0 && g.full) full_until_ = steady::now() + std::chrono::milliseconds(20);
  if (g.granted == 0 && !g.full) {
    // Not known yet (a new master), or being recalled from others: ask again shortly.
    tokens_retry_ = steady::now() + std::chrono::milliseconds(5);
    next_retry_ = std::min(next_retry_, tokens_retry_);
    return;
  }
  std::deque<request> waiting;
  waiting.swap(token_wait_);
  for (request& r : waiting) on_request(r);
}

void data_process::sweep_tombstones() {
  next_sweep_ = steady::now() + std::chrono::seconds(1);
  if (!table_) return;
  const std::uint64_t cutoff_ms =
      store::version_clock::now_millis() - static_cast<std::uint64_t>(
                                               std::chrono::duration_cast<std::chrono::milliseconds>(kTombstoneGrace).count());
  for (int n = 0; n < 64; ++n) {
    const std::uint32_t s = sweep_cursor_++ % static_cast<std::uint32_t>(slots_.size());
    if (!serving(s) || slots_[s].inflight > 0) continue;
    std::vector<std::pair<std::string, version>> old;
    store::table::cursor c;
    while (!table_->scan(s, c, ~std::size_t{0}, [&](const store::entry_view& e) {
      if (e.tombstone && store::version_clock::millis_of(e.version.hlc) < cutoff_ms) old.emplace_back(e.key, e.version);
    })) {
    }
    for (auto& [key, v] : old) {
      for (const store::holder& h : map_->slots.holders(s)) {
        const pid to = map_->pids[h.member];
        if (to == self_) continue;
        repl_write x;
        x.key = key;
        x.v_epoch = v.epoch;
        x.v_hlc = v.hlc;
        purges_[to].push_back(std::move(x));
      }
      (void)table_->purge(key, store::key_hash(key), v);
    }
  }
}

locate_reply data_process::locate(const std::string& key) const {
  locate_reply out;
  out.epoch = map_ ? map_->epoch() : 0;
  out.role = "none";
  if (!table_) return out;
  const std::uint64_t hash = store::key_hash(key);
  const slot_state& st = slots_[table_->slot_of(hash)];
  out.role = st.r == role::filling ? "filling" : st.r == role::replica ? "replica" : st.r == role::primary ? "primary" : "none";
  if (auto e = table_->find(key, hash)) {
    out.held = true;
    out.tombstone = e->tombstone;
    out.value = std::string(e->value);
    out.v_epoch = e->version.epoch;
    out.v_hlc = e->version.hlc;
  }
  return out;
}

stats_reply data_process::stats() const {
  stats_reply s;
  s.member = member_;
  s.index = index_;
  s.epoch = map_ ? map_->epoch() : 0;
  if (table_) {
    s.keys = table_->live_keys();
    s.entries = table_->entries();
    s.memory = table_->memory_bytes();
    s.tombstones = table_->tombstones();
  }
  bool syncing = false;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    const slot_state& st = slots_[i];
    if (st.r == role::none) continue;
    ++s.slots_held;
    if (st.r == role::filling) ++s.slots_filling;
    if (st.r == role::primary) {
      if (st.serving) {
        ++s.slots_primary;
        if (table_) s.keys_primary += table_->live_keys(i);
      } else {
        syncing = true;
      }
    }
  }
  s.keys_in = keys_in_;
  s.bytes_in = bytes_in_;
  s.keys_out = keys_out_;
  s.bytes_out = bytes_out_;
  s.rate = rate_;
  s.syncs_agreed = syncs_agreed_;
  s.syncs_copied = syncs_copied_;
  s.state = draining_ ? "draining"
            : !map_ || me_ < 0 ? "waiting"
            : syncing ? "syncing"
            : s.slots_filling > 0 ? "filling"
                                  : "serving";
  return s;
}

}  // namespace

void data_main(context& ctx, std::string db, std::uint32_t index) {
  data_process p(ctx, std::move(db), index);
  p.run();
}

}  // namespace panal::db
