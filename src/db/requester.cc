#include "db/requester.h"

#include "db/context.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "store/hash.h"

namespace panal::db {

namespace tp = this_process;

requester::requester(context& ctx, std::string db, answer_fn answer)
    : ctx_(ctx), db_(std::move(db)), server_group_(server_group(db_)), answer_(std::move(answer)) {
  // A process lives on one thread: its share of the counters is fixed.
  if (ctx_.requests != nullptr) counted_ = &ctx_.requests->at(tp::thread_index());
}

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

void requester::submit(request r, const waiter* w) {
  if (!unsafe_keys_.empty()) {
    if (auto it = unsafe_keys_.find(r.key); it != unsafe_keys_.end()) {
      // After the unsafe_set before it.
      blocked_[r.key].emplace_back(std::move(r), w != nullptr ? std::optional<waiter>(*w) : std::nullopt);
      return;
    }
  }
  if (w == nullptr) return submit_unsafe(std::move(r), clock::now() + unsafe_retry_for);
  (void)send(std::move(r), *w, false);
}

void requester::submit_unsafe(request r, clock::time_point until) {
  ++unsafe_keys_[r.key];
  request copy = r;
  errc refused = errc::ok;
  const std::int64_t index = send(std::move(r), waiter{}, true, &refused);
  if (index >= 0) {
    unsafe_.emplace(static_cast<std::uint32_t>(index), std::make_pair(std::move(copy), until));  // for retries
  } else if (retryable(refused) && clock::now() < until) {
    retry_unsafe_later(std::move(copy), until);  // no map or no primary yet
  } else {
    release(copy.key);  // refused (a limit): given up
  }
}

void requester::retry_unsafe_later(request r, clock::time_point until) {
  const std::uint64_t id = next_retry_++;
  retries_.emplace(id, std::make_pair(std::move(r), until));
  tp::send_after(std::chrono::milliseconds(10), tp::self(), requester_retry{id});
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
  for (auto& [r, w] : waiting) submit(std::move(r), w ? &*w : nullptr);
}

std::int64_t requester::send(request r, const waiter& w, bool unsafe, errc* refused) {
  auto fail = [&](errc code, std::string why) -> std::int64_t {
    if (refused != nullptr) *refused = code;
    if (counted_ != nullptr) counted_->record(r.kind, static_cast<unsigned>(code), 0);
    if (!unsafe) answer_(w, error_reply(0, {code, std::move(why)}));
    return -1;
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
  r.hash = store::key_hash(r.key);  // the primary's table uses it too
  const std::uint32_t slot_no = map_->slots.slot_of_hash(r.hash);
  const pid to = map_->primary_pid(slot_no);
  if (!to) {
    ask_for_map();
    if (map_->slots.members().empty()) {
      return fail(errc::no_data, "database '" + db_ + "' has no live data process; retry");
    }
    return fail(errc::moved, "slot " + std::to_string(slot_no) + " has no primary at epoch " +
                                 std::to_string(map_->epoch()) + "; retry");
  }
  std::uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slot& s = slots_[index];
  s.used = true;
  s.unsafe = unsafe;
  ++s.generation;
  s.w = w;
  s.to = to;
  s.sent = holding_ ? hold_now_ : clock::now();
  s.kind = r.kind;
  ++in_flight_;
  r.epoch = map_->epoch();
  r.id = std::uint64_t{s.generation} << 32 | index;
  r.reply_to = tp::self();
  if (to != last_target_) {  // most requests go to the primaries seen just before
    auto& t = targets_[to];
    if (!t.monitor) {
      t.monitor = tp::monitor(to);
      by_monitor_[t.monitor] = to;
    }
    last_target_ = to;
  }
  if (holding_) {
    const std::size_t bytes = r.key.size() + r.value.size() + 64;
    outbox_.add(to, std::move(r), bytes);
  } else {
    tp::send(to, std::move(r));
  }
  if (!ticking_) {
    ticking_ = true;
    tp::send_after(std::chrono::seconds(1), tp::self(), requester_tick{});
  }
  return index;
}

void requester::flush() {
  holding_ = false;
  outbox_.flush();
}

void requester::finish(std::uint32_t index, reply&& rep, clock::time_point now) {
  slot& s = slots_[index];
  if (counted_ != nullptr) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - s.sent).count();
    counted_->record(s.kind, rep.code, static_cast<std::uint64_t>(us));
  }
  const waiter w = s.w;
  const bool unsafe = s.unsafe;
  s.used = false;
  free_.push_back(index);
  --in_flight_;
  if (!unsafe) {
    answer_(w, std::move(rep));
    return;
  }
  auto it = unsafe_.find(index);
  if (it == unsafe_.end()) return;
  auto [copy, until] = std::move(it->second);
  unsafe_.erase(it);
  const auto code = static_cast<errc>(rep.code);
  if (retryable(code) && code != errc::unavailable && clock::now() < until) {
    retry_unsafe_later(std::move(copy), until);
    return;
  }
  release(copy.key);
}

void requester::fail_to(const pid& to, const error& e) {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].used && slots_[i].to == to) finish(i, error_reply(0, e), clock::now());
  }
}

void requester::expire() {
  const auto limit = clock::now() - expire_after;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].used && slots_[i].sent < limit) {
      finish(i, error_reply(0, {errc::timeout, "no answer from the data process"}), clock::now());
    }
  }
}

void requester::on_reply(reply&& rep, clock::time_point now) {
  const auto index = static_cast<std::uint32_t>(rep.id);
  const auto generation = static_cast<std::uint32_t>(rep.id >> 32);
  if (index >= slots_.size() || !slots_[index].used || slots_[index].generation != generation) {
    return;  // late: its request was given up on
  }
  if (rep.code == static_cast<std::uint16_t>(errc::moved)) {
    refresh();
    if (!map_ || rep.epoch >= map_->epoch()) ask_for_map();
  }
  finish(index, std::move(rep), now);
}

bool requester::on_message(message& m) {
  if (auto* rep = m.get_if<reply>()) {
    on_reply(std::move(*rep), clock::now());
    return true;
  }
  if (auto* batch = m.get_if<reply_batch>()) {
    const auto now = clock::now();  // one clock read for the batch's latencies
    for (reply& rep : batch->replies) on_reply(std::move(rep), now);
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
    ticking_ = in_flight_ > 0;
    if (ticking_) tp::send_after(std::chrono::seconds(1), tp::self(), requester_tick{});
    return true;
  }
  if (auto* d = m.get_if<down_msg>()) {
    auto it = by_monitor_.find(d->monitor);
    if (it == by_monitor_.end()) return false;
    const pid gone = it->second;
    by_monitor_.erase(it);
    targets_.erase(gone);
    if (last_target_ == gone) last_target_ = {};
    fail_to(gone, {errc::unavailable, "the data process went down (" + to_string(d->reason) +
                                          "); a write may have been stored"});
    ask_for_map();
    return true;
  }
  return false;
}

}  // namespace panal::db
