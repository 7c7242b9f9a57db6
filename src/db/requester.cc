#include "db/requester.h"

#include "db/context.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "store/hash.h"

namespace panal::db {

namespace tp = this_process;

requester::requester(context& ctx, std::string db)
    : ctx_(ctx), db_(std::move(db)), server_group_(server_group(db_)) {}

void requester::refresh() {
  const std::uint64_t v = ctx_.routes.version();
  if (v == seen_version_) return;
  seen_version_ = v;
  if (auto m = ctx_.routes.get(db_); m && (!map_ || m->newer_than(*map_))) map_ = std::move(m);
}

map_ptr requester::current() {
  refresh();
  return map_;
}

void requester::ask_for_map() {
  const auto now = clock::now();
  if (now - asked_ < std::chrono::milliseconds(20)) return;
  asked_ = now;
  auto master = ctx_.groups.oldest(server_group_);
  if (!master) return;
  // The answer goes to the node's route table, for every requester here.
  const pid routes = tp::whereis(routes_process);
  tp::send(*master, map_request{db_, routes ? routes : tp::self(), map_ ? map_->epoch() : 0});
}

void requester::submit(request r, done_fn done) {
  if (!unsafe_keys_.empty()) {
    if (auto it = unsafe_keys_.find(r.key); it != unsafe_keys_.end()) {
      blocked_[r.key].emplace_back(std::move(r), std::move(done));  // after the unsafe_set before it
      return;
    }
  }
  if (!done) return submit_unsafe(std::move(r), clock::now() + unsafe_retry_for);
  send(std::move(r), std::move(done));
}

void requester::submit_unsafe(request r, clock::time_point until) {
  ++unsafe_keys_[r.key];
  request copy = r;
  send(std::move(r), [this, copy = std::move(copy), until](reply&& rep) mutable {
    const auto code = static_cast<errc>(rep.code);
    if (retryable(code) && code != errc::unavailable && clock::now() < until) {
      const std::uint64_t id = next_retry_++;
      retries_.emplace(id, std::make_pair(std::move(copy), until));
      tp::send_after(std::chrono::milliseconds(10), tp::self(), requester_retry{id});
      return;
    }
    release(copy.key);
  });
}

void requester::release(const std::string& key) {
  auto it = unsafe_keys_.find(key);
  if (it == unsafe_keys_.end()) return;
  if (--it->second > 0) return;
  unsafe_keys_.erase(it);
  auto b = blocked_.find(key);
  if (b == blocked_.end()) return;
  auto waiting = std::move(b->second);
  blocked_.erase(b);
  for (auto& [r, done] : waiting) submit(std::move(r), std::move(done));
}

void requester::send(request r, done_fn done) {
  auto fail = [&](errc code, std::string why) {
    if (done) done(error_reply(0, {code, std::move(why)}));
  };
  refresh();
  if (!map_) {
    ask_for_map();
    if (!ctx_.groups.oldest(server_group_)) return fail(errc::no_master, "database '" + db_ + "' has no live server");
    return fail(errc::no_master, "no map of '" + db_ + "' on this node yet; retry");
  }
  const settings& cfg = map_->settings;
  if (r.key.empty()) return fail(errc::bad_argument, "a key must not be empty");
  if (r.key.size() > cfg.max_key_bytes) {
    return fail(errc::key_too_large, "key of " + std::to_string(r.key.size()) + " bytes; this database allows " +
                                         std::to_string(cfg.max_key_bytes));
  }
  if (carries_value(static_cast<op>(r.kind)) && r.value.size() > cfg.max_value_bytes) {
    return fail(errc::value_too_large, "value of " + std::to_string(r.value.size()) +
                                           " bytes; this database allows " + std::to_string(cfg.max_value_bytes));
  }
  const std::uint32_t slot = map_->slots.slot_of(r.key);
  const pid to = map_->primary_pid(slot);
  if (!to) {
    ask_for_map();
    if (map_->slots.members().empty()) {
      return fail(errc::no_data, "database '" + db_ + "' has no live data process; retry");
    }
    return fail(errc::moved, "slot " + std::to_string(slot) + " has no primary at epoch " +
                                 std::to_string(map_->epoch()) + "; retry");
  }
  r.epoch = map_->epoch();
  r.id = next_id_++;
  r.reply_to = tp::self();
  auto& t = targets_[to];
  if (!t.monitor) {
    t.monitor = tp::monitor(to);
    by_monitor_[t.monitor] = to;
  }
  ++t.count;
  pending_.emplace(r.id, waiting{to, std::move(done), clock::now()});
  tp::send(to, std::move(r));
  if (!ticking_) {
    ticking_ = true;
    tp::send_after(std::chrono::seconds(1), tp::self(), requester_tick{});
  }
}

void requester::fail_to(const pid& to, const error& e) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.to == to) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(error_reply(0, e));
    } else {
      ++it;
    }
  }
}

void requester::expire() {
  const auto limit = clock::now() - expire_after;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.sent < limit) {
      auto done = std::move(it->second.done);
      if (auto t = targets_.find(it->second.to); t != targets_.end() && t->second.count > 0) --t->second.count;
      it = pending_.erase(it);
      done(error_reply(0, {errc::timeout, "no answer from the data process"}));
    } else {
      ++it;
    }
  }
}

bool requester::on_message(message& m) {
  if (auto* rep = m.get_if<reply>()) {
    auto it = pending_.find(rep->id);
    if (it == pending_.end()) return true;  // late: its requester gave up on it
    auto done = std::move(it->second.done);
    if (auto t = targets_.find(it->second.to); t != targets_.end() && t->second.count > 0) --t->second.count;
    pending_.erase(it);
    if (rep->code == static_cast<std::uint16_t>(errc::moved)) {
      refresh();
      if (!map_ || rep->epoch >= map_->epoch()) ask_for_map();
    }
    done(std::move(*rep));
    return true;
  }
  if (auto* rt = m.get_if<requester_retry>()) {
    auto it = retries_.find(rt->id);
    if (it == retries_.end()) return true;
    auto [r, until] = std::move(it->second);
    retries_.erase(it);
    const std::string key = r.key;
    --unsafe_keys_[key];  // submit_unsafe counts it again
    submit_unsafe(std::move(r), until);
    return true;
  }
  if (m.is<requester_tick>()) {
    expire();
    ticking_ = !pending_.empty();
    if (ticking_) tp::send_after(std::chrono::seconds(1), tp::self(), requester_tick{});
    return true;
  }
  if (auto* d = m.get_if<down_msg>()) {
    auto it = by_monitor_.find(d->monitor);
    if (it == by_monitor_.end()) return false;
    const pid gone = it->second;
    by_monitor_.erase(it);
    targets_.erase(gone);
    fail_to(gone, {errc::unavailable, "the data process went down (" + to_string(d->reason) +
                                          "); a write may have been stored"});
    ask_for_map();
    return true;
  }
  return false;
}

}  // namespace panal::db
