#include "db/server.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <unordered_set>
#include <unordered_map>

#include "db/context.h"
#include "db/messages.h"
#include "dist/distribution.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "store/key_quota.h"
#include "store/slot_map.h"
#include "util/log.h"

namespace panal::db {

namespace {

namespace tp = this_process;
using steady = std::chrono::steady_clock;

constexpr auto kCheckEvery = std::chrono::milliseconds(100);     // role, majority, leases
constexpr auto kPlanEvery = std::chrono::milliseconds(50);      // at most one new epoch per this
// Progress alone (slots filled, synced, served) waits longer: every epoch is
// a whole map decoded and adopted on every node, and while slots move in
// bulk one epoch per 50 ms cost more than the moving itself.
constexpr auto kProgressPlanEvery = std::chrono::milliseconds(400);
constexpr auto kRecoveryWait = std::chrono::milliseconds(500);  // for members' maps on takeover
constexpr auto kRestartGrace = std::chrono::seconds(5);         // for a data process's supervisor to restart it

// Compares without leaking, through timing, how much of a guess was right.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

std::uint64_t now_micros() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

class server_process {
 public:
  server_process(context& ctx, server_config cfg)
      : ctx_(ctx),
        cfg_(std::move(cfg)),
        self_(tp::self()),
        servers_(server_group(cfg_.db)),
        lease_(std::chrono::milliseconds(cfg_.settings.lease_ms)) {}

  [[noreturn]] void run();

 private:
  struct member_info {
    pid who;
    std::uint32_t index = 0;
    bool present = true;
    bool dead = false;      // its process ended (not just unreachable)
    steady::time_point died_at{};
    bool draining = false;
    bool refill = false;
    steady::time_point lease_until{};
    ref watch;
  };

  bool leading() const { return phase_ == phase::leading; }
  bool can_act();
  void check_role();
  void start_recovery();
  void ask_members();
  bool heard_enough() const;
  void finish_recovery();
  bool majority_visible() const;
  void plan();
  void publish();
  void watch(member_info& mi);

  void on_lease(const lease_request& r);
  void on_down(const down_msg& d);
  void on_report(member_report& r);
  void on_tokens(const token_request& r);

  context& ctx_;
  server_config cfg_;
  pid self_;
  std::string servers_;
  std::chrono::milliseconds lease_;

  enum class phase { standby, recovering, leading } phase_ = phase::standby;
  steady::time_point recover_until_{};
  steady::time_point taken_over_at_{};
  std::unordered_map<ref, pid> asked_;  // recovery calls: tag -> member pid
  std::unordered_set<pid> answered_;
  std::optional<map_update> best_;

  store::planner planner_{store::slot_map(cfg_.settings.slots, cfg_.settings.replicas, cfg_.settings.write_acks)};
  std::uint64_t generation_ = 0;
  map_ptr published_;
  std::unordered_map<std::uint64_t, member_info> members_;
  std::unordered_map<ref, std::uint64_t> watches_;
  std::vector<store::fill_report> fills_;
  std::vector<store::serve_report> serves_;
  std::vector<store::lag_report> lags_;
  std::unordered_set<std::uint64_t> reported_;  // members that told this master everything since it took over
  bool plan_due_ = false;      // membership changed: plan within kPlanEvery
  bool progress_due_ = false;  // only progress reported: within kProgressPlanEvery
  steady::time_point last_plan_{};
  steady::time_point last_turn_{};
  bool had_majority_ = true;
  steady::time_point next_plan_{};
  steady::time_point next_check_{};
  std::optional<store::key_quota> quota_;
};

void server_process::run() {
  for (const pid& other : ctx_.groups.local_members(servers_)) {
    // The server before us may have ended and not yet left the group (this
    // is its restart): only a live one is another server.
    const ref watch = tp::monitor(other);
    auto down = tp::receive_if(
        [&](const message& m) { return m.is<down_msg>() && m.get<down_msg>().monitor == watch; },
        std::chrono::milliseconds(200));
    if (!down) throw std::runtime_error("a server of '" + cfg_.db + "' already runs on this node");
  }
  if (auto j = ctx_.groups.monitor(servers_, self_); !j) throw std::runtime_error(j.err().message);
  if (auto j = ctx_.groups.join(servers_, self_); !j) throw std::runtime_error(j.err().message);
  if (cfg_.settings.max_keys != 0) quota_.emplace(cfg_.settings.max_keys, cfg_.settings.slots);
  log::info("db", "server of '", cfg_.db, "' up as ", self_);
  check_role();

  for (;;) {
    auto now = steady::now();
    auto wake = next_check_;
    if (phase_ == phase::recovering) wake = std::min(wake, recover_until_);
    if (plan_due_ && leading()) wake = std::min(wake, next_plan_);
    if (progress_due_ && leading()) wake = std::min(wake, std::max(next_plan_, last_plan_ + kProgressPlanEvery));
    auto m = tp::receive(wake > now ? wake - now : clock::duration::zero());
    // A turn never waits longer than a check period: a longer gap means this
    // process was stopped (SIGSTOP, a stall). What arrived since may be old
    // (frames buffered during the pause make the other nodes look alive), so
    // learn the newest map again before granting anything.
    const auto turn = steady::now();
    if (leading() && last_turn_ != steady::time_point{} && turn - last_turn_ > std::max<clock::duration>(lease_ / 2, 4 * kCheckEvery)) {
      log::warn("db", "master of '", cfg_.db, "' was stalled for ",
                std::chrono::duration_cast<std::chrono::milliseconds>(turn - last_turn_).count(),
                " ms; recovering before it acts");
      start_recovery();
    }
    // Up to 256 messages per turn, then the turn's work (flushes, timers).
    for (int n = 0; m; ++n) {
      message& x = *m;
      if (auto* lr = x.get_if<lease_request>()) on_lease(*lr);
      else if (auto* rep = x.get_if<member_report>()) on_report(*rep);
      else if (auto* tr = x.get_if<token_request>()) on_tokens(*tr);
      else if (auto* d = x.get_if<down_msg>()) on_down(*d);
      else if (auto* mr = x.get_if<map_request>()) {
        if (published_ && mr->reply_to && leading()) tp::send(mr->reply_to, encode(*published_));
      } else if (x.is<registry::group_event>()) {
        check_role();
      } else if (auto* cr = x.get_if<call_reply>()) {
        auto it = asked_.find(cr->tag);
        if (it != asked_.end()) {
          const pid who = it->second;
          answered_.insert(who);
          std::erase_if(asked_, [&](const auto& q) { return q.second == who; });  // its older questions too
          if (auto* u = cr->body.get_if<map_update>(); u && u->db == cfg_.db && u->epoch > 0) {
            const bool newer = !best_ || u->generation > best_->generation ||
                               (u->generation == best_->generation && u->epoch > best_->epoch);
            if (newer) best_ = std::move(*u);
          }
        }
      } else if (auto* req = x.get_if<call_request>()) {
        if (auto* a = req->body.get_if<auth_request>()) {
          const bool ok = cfg_.ckey.empty() || same_secret(a->token, cfg_.ckey);
          tp::reply(*req, ok ? reply{} : error_reply(0, {errc::unauthorized, "wrong client key for '" + cfg_.db + "'"}));
        }
      }
      if (n + 1 >= 256) break;
      m = tp::receive(clock::duration::zero());
    }
    now = steady::now();
    if (phase_ == phase::recovering && (asked_.empty() || now >= recover_until_)) {
      if (heard_enough()) finish_recovery();
      else if (now >= recover_until_) ask_members();  // too few answered: ask the rest again
    }
    if (now >= next_check_) {
      next_check_ = now + kCheckEvery;
      check_role();
      // Two servers that start a database at once, before the registry
      // agrees on the oldest, both lead for a moment and both start it
      // anew; the later one's generation outranks ours, and every node's
      // route table would refuse our maps for good. Take that map over.
      if (leading() && published_) {
        if (auto held = ctx_.routes.get(cfg_.db); held && held->master != self_ && held->newer_than(*published_)) {
          log::warn("db", "master of '", cfg_.db, "': ", held->master, " published a newer map (epoch ",
                    held->epoch(), "); taking it over");
          start_recovery();
        }
      }
      (void)can_act();
      // Silent members whose leases ran out can go now.
      for (auto& [id, mi] : members_) {
        if (!mi.present && (mi.dead || now >= mi.lease_until)) plan_due_ = true;
      }
    }
    if (leading() && now >= next_plan_ &&
        (plan_due_ || (progress_due_ && now >= last_plan_ + kProgressPlanEvery))) {
      plan();
    }
    last_turn_ = steady::now();  // (after the turn's own work: only the wait counts)
  }
}

void server_process::check_role() {
  const auto oldest = ctx_.groups.oldest(servers_);
  const bool master = oldest && *oldest == self_;
  if (master && phase_ == phase::standby) {
    start_recovery();
  } else if (!master && phase_ != phase::standby) {
    log::info("db", "server ", self_, " of '", cfg_.db, "' is no longer the master");
    phase_ = phase::standby;
    asked_.clear();
    answered_.clear();
    best_.reset();
  }
}

void server_process::start_recovery() {
  phase_ = phase::recovering;
  asked_.clear();
  answered_.clear();
  best_.reset();
  ask_members();
  log::info("db", "server ", self_, " is the master of '", cfg_.db, "'; asking ", asked_.size(),
            " data processes for their maps");
}

// Asks every data member that has not answered (again: a question sent
// while the connection was down is lost). Earlier questions stay open, and
// their answers count however late they come: a loaded node may answer
// slower than one round, and a slow majority must still let the recovery
// finish.
void server_process::ask_members() {
  recover_until_ = steady::now() + kRecoveryWait;
  const auto members = ctx_.groups.members(data_group(cfg_.db));
  if (asked_.size() > 8 * members.size() + 64) asked_.clear();  // bounded if some never answer
  for (const pid& p : members) {
    if (answered_.count(p)) continue;
    const ref tag = tp::current_runtime().make_ref();
    asked_[tag] = p;
    tp::send(p, call_request{self_, tag, map_query{}});
  }
}

// Answers from members on a majority of the nodes of the newest map known:
// a master that heard only its own side (it was cut off, or paused) must
// not carry on from its stale map.
bool server_process::heard_enough() const {
  map_ptr newest;
  if (best_) newest = decode(*best_, published_.get());
  if (auto held = ctx_.routes.get(cfg_.db); held && (!newest || held->newer_than(*newest))) newest = held;
  if (published_ && (!newest || published_->newer_than(*newest))) newest = published_;
  if (!newest || newest->pids.empty()) return true;
  std::set<std::uint32_t> all;
  for (const pid& p : newest->pids) all.insert(p.node);
  std::size_t heard = 0;
  std::set<std::uint32_t> answered_nodes;
  for (const pid& p : answered_) answered_nodes.insert(p.node);
  for (std::uint32_t n : all) heard += answered_nodes.count(n);
  return heard * 2 > all.size();
}

void server_process::finish_recovery() {
  const auto now = steady::now();
  asked_.clear();
  map_ptr adopted;
  if (best_) adopted = decode(*best_, published_.get());
  best_.reset();
  // The node's route table may hold a newer map than any member answered
  // with (e.g. one an earlier master published before any member joined).
  if (auto held = ctx_.routes.get(cfg_.db); held && (!adopted || held->newer_than(*adopted))) adopted = held;
  if (adopted && (!published_ || adopted->newer_than(*published_))) {
    generation_ = adopted->generation;
    planner_ = store::planner(adopted->slots);
    published_ = adopted;
    // Members of that map: keep them, with the leases the old master may
    // have granted (they run out at most one lease from now).
    std::unordered_set<pid> alive;
    for (const pid& p : ctx_.groups.members(data_group(cfg_.db))) alive.insert(p);
    for (std::size_t i = 0; i < adopted->pids.size(); ++i) {
      const std::uint64_t id = adopted->member_id(static_cast<std::uint32_t>(i));
      member_info& mi = members_[id];
      if (!mi.who) mi.who = adopted->pids[i];
      if (mi.who == adopted->pids[i]) {
        mi.present = mi.present && alive.count(mi.who);
        mi.draining = mi.draining || !adopted->slots.members()[i].eligible;
      }
      mi.lease_until = std::max(mi.lease_until, now + lease_);
      watch(mi);
    }
  } else if (!published_) {
    // A database that starts anew: a generation later than any this node saw.
    generation_ = now_micros();
    if (auto held = ctx_.routes.get(cfg_.db)) generation_ = std::max(generation_, held->generation + 1);
  }
  if (published_ && published_->generation > generation_) generation_ = published_->generation;
  if (quota_) quota_->reset();
  reported_.clear();
  fills_.clear();
  serves_.clear();
  lags_.clear();
  taken_over_at_ = now;
  phase_ = phase::leading;
  had_majority_ = majority_visible();
  plan_due_ = true;
  log::info("db", "master of '", cfg_.db, "' leads from epoch ", planner_.current().epoch(), " with ",
            members_.size(), " data members");
}

void server_process::watch(member_info& mi) {
  if (mi.watch || !mi.who) return;
  mi.watch = tp::monitor(mi.who);
  for (auto& [id, m] : members_) {
    if (&m == &mi) watches_[mi.watch] = id;
  }
}

// A node is seen if something came from it within half a lease: a master
// that was paused (or cut off) sees nobody until its connections are live
// again, whatever its stale view of them says.
bool server_process::majority_visible() const {
  if (!published_ || published_->pids.empty()) return true;
  std::set<std::uint32_t> all, seen;
  for (const pid& p : published_->pids) {
    all.insert(p.node);
    if (p.node == self_.node) seen.insert(p.node);
    else if (ctx_.dist != nullptr && ctx_.dist->silence(node_name(p.node)) < lease_ / 2) seen.insert(p.node);
  }
  return seen.size() * 2 > all.size();
}

// True when the master may act (plan, grant). On seeing a majority again
// after it did not (a partition healed, a pause ended), it first learns the
// newest map from the members: the other side may have moved on.
bool server_process::can_act() {
  if (!leading()) return false;
  const bool visible = majority_visible();
  if (visible && !had_majority_) {
    had_majority_ = true;
    start_recovery();
    return false;
  }
  had_majority_ = visible;
  return visible;
}

void server_process::on_lease(const lease_request& r) {
  // Not while recovering: which process each member was is only known from
  // the map it adopts (a member restarted meanwhile must be seen as new, and
  // refilled). Nothing is granted meanwhile anyway; members ask again.
  if (phase_ != phase::leading) return;
  const auto now = steady::now();
  member_info& mi = members_[r.member];
  const bool in_map = planner_.current().index_of(r.member).has_value();
  if (mi.who != r.from) {
    if (mi.who) {
      // Restarted (a new process for the same member): it holds nothing.
      if (mi.watch) {
        watches_.erase(mi.watch);
        tp::demonitor(mi.watch);
        mi.watch = {};
      }
      mi.refill = in_map;
    }
    mi.who = r.from;
    mi.present = true;
    mi.dead = false;
    plan_due_ = true;
    watch(mi);
  } else if (!mi.present) {
    // Back after it was unreachable (from here: maybe only this node was
    // away). Writes it missed are reported by their primaries (lagging).
    mi.present = true;
    plan_due_ = true;
    watch(mi);
  }
  mi.index = r.index;
  // The member says whether it drains: a recovery guesses it from the map
  // (not eligible), which also fits a member that was only away; a guess
  // never corrected kept a restarted only member out of its slots.
  if (r.draining != mi.draining) {
    mi.draining = r.draining;
    plan_due_ = true;
  }
  if (!published_ || published_->pids.empty()) plan_due_ = true;
  if (r.epoch > planner_.current().epoch() && leading()) {
    // It holds a newer map than ours (another master's): learn it first.
    start_recovery();
    return;
  }
  if (can_act()) {
    mi.lease_until = std::max(mi.lease_until, now + lease_);
    tp::send(r.from, lease_grant{r.seq, static_cast<std::uint64_t>(lease_.count()), planner_.current().epoch(),
                                 !reported_.count(r.member)});
  }
}

void server_process::on_down(const down_msg& d) {
  auto it = watches_.find(d.monitor);
  if (it == watches_.end()) return;
  const std::uint64_t id = it->second;
  watches_.erase(it);
  auto m = members_.find(id);
  if (m == members_.end() || m->second.who != d.who) return;
  m->second.watch = {};
  m->second.present = false;
  // An ended process serves nothing; an unreachable one may, until its lease ends.
  m->second.dead = d.reason.what != exit_reason::kind::noconnection;
  m->second.died_at = steady::now();
  plan_due_ = true;
  log::info("db", "data member ", d.who, " of '", cfg_.db, "' is ", m->second.dead ? "gone" : "unreachable", " (",
            d.reason, ")");
}

void server_process::on_report(member_report& r) {
  if (phase_ == phase::standby) return;
  if (r.all_served && phase_ == phase::leading) reported_.insert(r.member);
  for (const fill_done& f : r.filled) fills_.push_back({r.member, f.slot, f.since, f.from_epoch, f.source});
  for (const slot_serving& s : r.serving) serves_.push_back({r.member, s.slot, s.epoch});
  for (const lagging_holder& l : r.lagging) lags_.push_back({l.member, l.slot});
  if (!r.filled.empty() || !r.serving.empty() || !r.lagging.empty()) progress_due_ = true;
  if (quota_) {
    const auto& sm = planner_.current();
    auto me = sm.index_of(r.member);
    for (const slot_serving& s : r.serving) {
      if (me && s.slot < sm.slot_count() && sm.primary(s.slot) == *me) quota_->count(s.slot, s.live);
    }
    quota_->tokens(r.member, r.tokens, r.received);
  }
}

void server_process::on_tokens(const token_request& r) {
  token_grant g;
  if (quota_ && can_act()) {
    quota_->tokens(r.member, r.held, r.received);
    g.granted = quota_->grant(r.member, r.want);
    if (g.granted == 0 && quota_->known()) {
      auto others = quota_->holders_except(r.member);
      // Full only when every counted key is live; else others hold tokens
      // this member needs: recall them, and let it ask again.
      g.full = others.empty() && quota_->used() >= quota_->max_keys();
      for (std::uint64_t m : others) {
        if (auto it = members_.find(m); it != members_.end() && it->second.present) {
          tp::send(it->second.who, token_grant{0, false, true});
        }
      }
    }
  }
  tp::send(r.from, g);
}

void server_process::plan() {
  plan_due_ = false;
  progress_due_ = false;
  const auto now = steady::now();
  next_plan_ = now + kPlanEvery;
  last_plan_ = now;
  if (!can_act()) {
    plan_due_ = true;  // wait until we see a majority again (and know the newest map)
    return;
  }
  const bool grace_over = now >= taken_over_at_ + lease_;
  store::plan_input in;
  std::vector<std::uint64_t> gone;
  for (auto& [id, mi] : members_) {
    // A process that ended is given a moment to come back (its supervisor
    // restarts it as the same member): meanwhile it keeps its slots.
    const bool restarting = !mi.present && mi.dead && now < mi.died_at + kRestartGrace;
    if (!mi.present && !restarting && (mi.dead || (now >= mi.lease_until && grace_over))) {
      gone.push_back(id);
      continue;
    }
    if (!mi.present) plan_due_ = true;  // check again when its lease or grace ends
    in.members.push_back({id, mi.present, mi.draining, mi.refill && mi.present, restarting});
  }
  in.filled = std::move(fills_);
  in.serving = std::move(serves_);
  in.lagging = std::move(lags_);
  fills_.clear();
  serves_.clear();
  lags_.clear();

  const store::slot_map before = planner_.current();
  bool changed = planner_.step(in);
  // New pids for the same members need a new epoch too.
  std::vector<pid> pids(planner_.current().members().size());
  for (std::size_t i = 0; i < pids.size(); ++i) {
    pids[i] = members_[planner_.current().members()[i].id].who;
  }
  if (!changed && (!published_ || published_->pids != pids || published_->generation != generation_)) {
    planner_.bump();
    changed = true;
  }
  for (std::uint64_t id : gone) {
    if (auto it = members_.find(id); it != members_.end()) {
      if (it->second.watch) watches_.erase(it->second.watch);
      members_.erase(it);
    }
    if (quota_) quota_->forget(id);
  }
  for (auto& [id, mi] : members_) {
    if (mi.present) mi.refill = false;
  }
  if (!changed) return;

  auto m = std::make_shared<cluster_map>();
  m->db = cfg_.db;
  m->generation = generation_;
  m->master = self_;
  m->settings = cfg_.settings;
  m->slots = planner_.current();
  m->pids = std::move(pids);
  if (quota_) {
    for (std::uint32_t s = 0; s < m->slots.slot_count(); ++s) {
      const std::uint32_t a = before.primary(s), b = m->slots.primary(s);
      const std::uint64_t ida = a == store::slot_map::no_primary ? 0 : before.members()[a].id;
      const std::uint64_t idb = b == store::slot_map::no_primary ? 0 : m->slots.members()[b].id;
      if (ida != idb) quota_->unknown(s);
    }
  }
  published_ = m;
  publish();
}

void server_process::publish() {
  const map_update u = encode(*published_);
  log::debug("db", "master of '", cfg_.db, "' publishes epoch ", u.epoch, " (", u.members.size(), " members, ",
             u.exceptions.size(), " slots moving)");
  if (pid local = tp::whereis(routes_process)) tp::send(local, map_update(u));
  if (ctx_.dist != nullptr) {
    for (const std::string& n : ctx_.dist->nodes()) (void)ctx_.dist->send_named(n, routes_process, map_update(u));
  }
}

}  // namespace

void server_main(context& ctx, server_config config) {
  server_process p(ctx, std::move(config));
  p.run();
}

}  // namespace panal::db
