#include "node/client.h"

#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "db/cluster_map.h"
#include "db/messages.h"
#include "runtime/this_process.h"

namespace panal {

// Numbers writes, and knows the lowest one still waiting for its answer.
struct client::writes {
  std::uint64_t id;
  std::mutex mutex;
  std::uint64_t next = 1;
  std::set<std::uint64_t> open;

  writes() {
    std::random_device rd;
    id = (static_cast<std::uint64_t>(rd()) << 32 | rd()) | 1;  // never 0
  }
  std::uint64_t start() {
    std::lock_guard lock(mutex);
    open.insert(next);
    return next++;
  }
  void end(std::uint64_t seq) {
    std::lock_guard lock(mutex);
    open.erase(seq);
  }
  std::uint64_t floor() {
    std::lock_guard lock(mutex);
    return open.empty() ? next : *open.begin();
  }
};

namespace {

using db::op;

struct outcome {
  errc code = errc::ok;
  std::string message;
  db::reply rep;
};

// Sends each op through the client process as a call from one inbox (so
// they run in parallel), retrying the retryable ones until the deadline.
std::vector<outcome> run(runtime& rt, const pid& process, std::vector<db::client_op> ops, clock::duration timeout,
                         client::writes& w) {
  // Writes are numbered once; every attempt carries the same number.
  for (auto& o : ops) {
    if (o.kind == static_cast<std::uint8_t>(op::set) || o.kind == static_cast<std::uint8_t>(op::remove)) {
      o.wid.client = w.id;
      o.wid.seq = w.start();
    }
  }
  struct finish {
    client::writes& w;
    std::vector<db::client_op>& ops;
    ~finish() {
      for (auto& o : ops) {
        if (o.wid.seq != 0) w.end(o.wid.seq);
      }
    }
  } finisher{w, ops};
  std::vector<outcome> out(ops.size());
  std::vector<outcome> last(ops.size());  // the latest retryable answer of each op
  std::vector<std::size_t> todo(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) todo[i] = i;
  const auto deadline = clock::now() + timeout;
  inbox in = rt.open_inbox();
  const ref watch = in.monitor(process);
  for (int attempt = 0; !todo.empty(); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100, 5 << std::min(attempt, 5))));
    std::unordered_map<ref, std::size_t> sent;
    for (std::size_t i : todo) {
      const ref tag = rt.make_ref();
      sent.emplace(tag, i);
      if (ops[i].wid.seq != 0) {
        ops[i].wid.floor = w.floor();
        ops[i].wid.retry = attempt > 0;
      }
      in.send(process, call_request{in.self(), tag, ops[i]});
    }
    todo.clear();
    while (!sent.empty()) {
      const auto now = clock::now();
      auto m = now < deadline ? in.receive(deadline - now) : std::nullopt;
      if (!m) {
        for (auto& [tag, i] : sent) {
          out[i] = last[i].code != errc::ok ? last[i] : outcome{errc::timeout, "no answer in time", {}};
        }
        return out;
      }
      if (auto* d = m->get_if<down_msg>(); d && d->monitor == watch) {
        for (auto& [tag, i] : sent) out[i] = {errc::noproc, "the client process is gone (" + to_string(d->reason) + ")", {}};
        return out;
      }
      auto* r = m->get_if<call_reply>();
      if (r == nullptr) continue;
      auto it = sent.find(r->tag);
      if (it == sent.end()) continue;
      const std::size_t i = it->second;
      sent.erase(it);
      auto* rep = r->body.get_if<db::reply>();
      if (rep == nullptr) {
        out[i] = {errc::malformed, "unexpected answer from the client process", {}};
        continue;
      }
      const auto code = static_cast<errc>(rep->code);
      if (retryable(code) && clock::now() < deadline) {
        last[i] = {code, rep->message + " (retried until the timeout)", {}};
        todo.push_back(i);
        continue;
      }
      out[i] = {code, rep->message, std::move(*rep)};
    }
    if (clock::now() >= deadline) {
      // Out of time between attempts: say why it kept failing.
      for (std::size_t i : todo) out[i] = last[i];
      return out;
    }
  }
  return out;
}

result<db::reply> one(runtime& rt, const pid& process, db::client_op o, clock::duration timeout, client::writes& w) {
  std::vector<db::client_op> ops;
  ops.push_back(std::move(o));
  auto r = run(rt, process, std::move(ops), timeout, w);
  if (r[0].code != errc::ok) return error{r[0].code, r[0].message};
  return std::move(r[0].rep);
}

db::client_op make(op kind, std::string_view key, std::string_view value = {}) {
  return db::client_op{static_cast<std::uint8_t>(kind), std::string(key), std::string(value), {}};
}

}  // namespace

client::client(runtime& rt, pid process, std::string db, clock::duration timeout, const db::routes* routes)
    : rt_(&rt),
      process_(process),
      db_(std::move(db)),
      timeout_(timeout),
      routes_(routes),
      writes_(std::make_shared<writes>()) {}

result<std::optional<std::string>> client::get(std::string_view key) {
  auto r = one(*rt_, process_, make(op::get, key), timeout_, *writes_);
  if (!r) return r.err();
  if (!r->found) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(r->value)};
}

result<void> client::set(std::string_view key, std::string_view value) {
  auto r = one(*rt_, process_, make(op::set, key, value), timeout_, *writes_);
  if (!r) return r.err();
  return {};
}

result<bool> client::remove(std::string_view key) {
  auto r = one(*rt_, process_, make(op::remove, key), timeout_, *writes_);
  if (!r) return r.err();
  return r->found;
}

result<bool> client::exists(std::string_view key) {
  auto r = one(*rt_, process_, make(op::exists, key), timeout_, *writes_);
  if (!r) return r.err();
  return r->found;
}

result<void> client::unsafe_set(std::string_view key, std::string_view value) {
  // A plain message, not a call: nobody waits. It leaves this thread before
  // any later call of this thread, so the client process sees them in order.
  rt_->send(process_, make(op::unsafe_set, key, value));
  return {};
}

result<std::vector<std::optional<std::string>>> client::mget(const std::vector<std::string>& keys) {
  std::vector<db::client_op> ops;
  ops.reserve(keys.size());
  for (auto& k : keys) ops.push_back(make(op::get, k));
  auto rs = run(*rt_, process_, std::move(ops), timeout_, *writes_);
  std::vector<std::optional<std::string>> out;
  out.reserve(rs.size());
  for (auto& r : rs) {
    if (r.code != errc::ok) return error{r.code, r.message};
    out.push_back(r.rep.found ? std::optional<std::string>(std::move(r.rep.value)) : std::nullopt);
  }
  return out;
}

std::vector<batch_result> client::batch(const std::vector<batch_op>& ops) {
  std::vector<batch_result> out;
  out.reserve(ops.size());
  for (auto [begin, end] : batch_waves(ops)) {
    std::vector<db::client_op> wave;
    wave.reserve(end - begin);
    for (std::size_t i = begin; i < end; ++i) wave.push_back(make(static_cast<op>(ops[i].kind), ops[i].key, ops[i].value));
    for (auto& r : run(*rt_, process_, std::move(wave), timeout_, *writes_)) {
      out.push_back({r.code, std::move(r.message), r.rep.found, std::move(r.rep.value)});
    }
  }
  return out;
}

result<void> client::mset(const std::vector<std::pair<std::string, std::string>>& items) {
  std::vector<db::client_op> ops;
  ops.reserve(items.size());
  db::map_ptr m = routes_ != nullptr ? routes_->get(db_) : nullptr;
  for (int i = 0; routes_ != nullptr && !m && i < 1000; ++i) {  // the node's first map of the database
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    m = routes_->get(db_);
  }
  if (m) {
    // Every item within the limits, or nothing is sent.
    for (auto& [k, v] : items) {
      if (k.empty()) return error{errc::bad_argument, "a key must not be empty"};
      if (k.size() > m->settings.max_key_bytes) {
        return error{errc::key_too_large, "key of " + std::to_string(k.size()) + " bytes; this database allows " +
                                              std::to_string(m->settings.max_key_bytes)};
      }
      if (v.size() > m->settings.max_value_bytes) {
        return error{errc::value_too_large, "value of " + std::to_string(v.size()) +
                                                " bytes; this database allows " +
                                                std::to_string(m->settings.max_value_bytes)};
      }
    }
  }
  for (auto& [k, v] : items) ops.push_back(make(op::set, k, v));
  for (auto& r : run(*rt_, process_, std::move(ops), timeout_, *writes_)) {
    if (r.code != errc::ok) return error{r.code, r.message};
  }
  return {};
}

}  // namespace panal
