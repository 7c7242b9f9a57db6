#include "db/roles.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "db/messages.h"
#include "db/requester.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "store/hash.h"
#include "store/slot_map.h"
#include "store/table.h"
#include "util/log.h"

namespace panal::db {

namespace tp = this_process;

namespace {

// Versions: hybrid logical clock, milliseconds << 20 | counter; strictly
// increasing here, and above any earlier master's while clocks agree.
class version_clock {
 public:
  std::uint64_t next() {
    const auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
    last_ = std::max(ms << 20, last_ + 1);
    return last_;
  }

 private:
  std::uint64_t last_ = 0;
};

std::uint64_t member_id(const pid& p) { return store::key_hash(to_string(p)); }

// Compares without leaking, through timing, how much of a guess was right.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

void answer(const request& r, reply rep) {
  if (!r.reply_to) return;
  rep.id = r.id;
  tp::send(r.reply_to, std::move(rep));
}

}  // namespace

// ---- server -------------------------------------------------------------------

void server_main(registry::pg& groups, server_config config) {
  const std::string servers = server_group(config.db);
  const std::string datas = data_group(config.db);
  const pid self = tp::self();
  if (!groups.local_members(servers).empty()) {
    throw std::runtime_error("a server of '" + config.db + "' already runs on this node");
  }
  if (auto j = groups.monitor(datas, self); !j) throw std::runtime_error(j.err().message);
  if (auto j = groups.join(servers, self); !j) throw std::runtime_error(j.err().message);

  store::slot_map map(config.slots);
  std::unordered_map<std::uint64_t, pid> data_by_id;
  std::unordered_map<pid, std::int64_t> keys_of;  // live keys per data process (key limit)
  auto refresh = [&] {
    data_by_id.clear();
    std::vector<std::uint64_t> ids;
    for (const pid& p : groups.members(datas)) {
      data_by_id[member_id(p)] = p;
      ids.push_back(member_id(p));
    }
    map.set_members(std::move(ids));
    std::erase_if(keys_of, [&](const auto& kv) { return !data_by_id.count(member_id(kv.first)); });
  };
  refresh();
  version_clock clock;
  log::info("db", "server of '", config.db, "' up as ", self);

  for (;;) {
    auto m = tp::receive();
    if (auto* r = m->get_if<request>()) {
      // A requester with a stale view. Not forwarded: during a failover our
      // own view may still name the dead master, and a message to it is lost;
      // a retryable answer lets the requester try again once views agree.
      const auto master = groups.oldest(servers);
      if (master && *master != self) {
        answer(*r, error_reply(0, {errc::no_master, "this server is not the master of '" + config.db + "'; retry"}));
        continue;
      }
      const op kind = static_cast<op>(r->kind);
      if (auto k = store::check_key(config.limits, r->key); !k) {
        answer(*r, error_reply(0, k.err()));
        continue;
      }
      if (kind == op::set || kind == op::unsafe_set) {
        if (auto v = store::check_value(config.limits, r->value); !v) {
          answer(*r, error_reply(0, v.err()));
          continue;
        }
      }
      if (data_by_id.empty()) {
        answer(*r, error_reply(0, {errc::no_data, "database '" + config.db + "' has no live data process; retry"}));
        continue;
      }
      const pid owner = data_by_id[map.primary(map.slot_of(r->key))];
      if (is_write(kind)) {
        r->version = clock.next();
        r->max_memory = config.limits.max_memory;
        if (config.limits.max_keys != 0) {
          std::int64_t total = 0;
          for (auto& [p, n] : keys_of) total += n;
          r->may_insert = total < static_cast<std::int64_t>(config.limits.max_keys);
          r->count_to = self;
        }
      }
      tp::send(owner, std::move(*r));
    } else if (auto* d = m->get_if<key_delta>()) {
      keys_of[d->from] += d->delta;
    } else if (m->is<registry::group_event>()) {
      refresh();
    } else if (auto* req = m->get_if<call_request>()) {
      if (auto* a = req->body.get_if<auth_request>()) {
        const bool ok = config.ckey.empty() || same_secret(a->token, config.ckey);
        tp::reply(*req, ok ? reply{} : error_reply(0, {errc::unauthorized, "wrong client key for '" + config.db + "'"}));
      }
    }
  }
}

// ---- data -------------------------------------------------------------------------

void data_main(registry::pg& groups, std::string db) {
  store::table table;
  if (auto j = groups.join(data_group(db), tp::self()); !j) throw std::runtime_error(j.err().message);
  log::info("db", "data process of '", db, "' up as ", tp::self());

  for (;;) {
    auto m = tp::receive();
    auto* r = m->get_if<request>();
    if (r == nullptr) {
      if (auto* req = m->get_if<call_request>(); req && req->body.is<stats_request>()) {
        tp::reply(*req, stats_reply{table.live_keys(), table.entries(), table.memory_bytes()});
      }
      continue;
    }
    const op kind = static_cast<op>(r->kind);
    if (kind == op::get || kind == op::exists) {
      auto e = table.find(r->key);
      reply rep;
      rep.found = e && !e->tombstone;
      if (rep.found && kind == op::get) rep.value = std::string(e->value);
      answer(*r, std::move(rep));
      continue;
    }
    if (r->max_memory != table.max_memory()) table.set_max_memory(r->max_memory);  // travels with writes
    auto before = table.find(r->key);
    const bool was_live = before && !before->tombstone;
    if (kind != op::remove && !was_live && !r->may_insert) {
      answer(*r, error_reply(0, {errc::too_many_keys, "the database is at its key limit"}));
      continue;
    }
    auto outcome = kind == op::remove ? table.remove(r->key, r->version) : table.put(r->key, r->value, r->version);
    if (!outcome) {
      answer(*r, error_reply(0, outcome.err()));
      continue;
    }
    const bool live_now = *outcome == store::put_outcome::stale ? was_live : kind != op::remove;
    if (r->count_to && live_now != was_live) tp::send(r->count_to, key_delta{tp::self(), live_now ? 1 : -1});
    reply rep;
    rep.found = was_live;
    answer(*r, std::move(rep));
  }
}

// ---- client ------------------------------------------------------------------------

void client_main(registry::pg& groups, std::string db, std::string name) {
  if (auto j = groups.join(client_group(db), tp::self()); !j) throw std::runtime_error(j.err().message);
  (void)tp::register_name("panal_client:" + db + ":" + name);
  requester out(groups, db);
  for (;;) {
    auto m = tp::receive();
    if (out.on_message(*m)) continue;
    if (auto* cast = m->get_if<client_op>()) {  // unsafe_set: nobody waits
      request r;
      r.kind = cast->kind;
      r.key = std::move(cast->key);
      r.value = std::move(cast->value);
      out.submit(std::move(r), nullptr);
      continue;
    }
    if (auto* req = m->get_if<call_request>()) {
      auto* c = req->body.get_if<client_op>();
      if (c == nullptr) continue;
      request r;
      r.kind = c->kind;
      r.key = std::move(c->key);
      r.value = std::move(c->value);
      if (static_cast<op>(r.kind) == op::unsafe_set) {
        out.submit(std::move(r), nullptr);
        tp::reply(*req, reply{});  // accepted; nobody waits for the store
        continue;
      }
      out.submit(std::move(r), [from = req->from, tag = req->tag](reply&& rep) {
        tp::send(from, call_reply{tag, std::move(rep)});
      });
    }
  }
}

}  // namespace panal::db
