#include "registry/pg.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "dist/codec.h"
#include "dist/distribution.h"
#include "dist/node_name.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "util/log.h"

namespace panal::registry {

namespace tp = this_process;

namespace {

constexpr const char* kScopeName = "panal_pg";

// Between scopes on different nodes.
struct pg_join_msg {
  std::string group;
  std::vector<member> members;
};
struct pg_leave_msg {
  std::string group;
  std::vector<pid> pids;
};
struct pg_sync_msg {  // all local members of the sending node, by group
  std::string node;
  std::vector<std::pair<std::string, std::vector<member>>> groups;
};
struct pg_ask_msg {  // "send me your pg_sync_msg": from a restarted scope
  std::string node;
  MSGPACK_DEFINE(node);
};

// Local requests.
struct join_req {
  std::string group;
  std::vector<pid> pids;
};
struct leave_req {
  std::string group;
  pid who;
};
struct monitor_req {
  std::string group;
  pid subscriber;
};
struct subscribers_req {
  std::string group;
};
struct stop_req {};

}  // namespace
}  // namespace panal::registry

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {

template <>
struct pack<panal::registry::member> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::registry::member& v) const {
    o.pack_array(2);
    o.pack(v.who);
    o.pack(v.stamp);
    return o;
  }
};
template <>
struct convert<panal::registry::member> {
  const msgpack::object& operator()(const msgpack::object& o, panal::registry::member& v) const {
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) throw msgpack::type_error();
    v.who = o.via.array.ptr[0].as<panal::pid>();
    v.stamp = o.via.array.ptr[1].as<std::uint64_t>();
    return o;
  }
};

#define PANAL_PACK_STRUCT2(T, A, B)                                          \
  template <>                                                               \
  struct pack<T> {                                                          \
    template <class Stream>                                                 \
    packer<Stream>& operator()(packer<Stream>& o, const T& v) const {       \
      o.pack_array(2);                                                      \
      o.pack(v.A);                                                          \
      o.pack(v.B);                                                          \
      return o;                                                             \
    }                                                                       \
  };                                                                        \
  template <>                                                               \
  struct convert<T> {                                                       \
    const msgpack::object& operator()(const msgpack::object& o, T& v) const { \
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) throw msgpack::type_error(); \
      o.via.array.ptr[0].convert(v.A);                                      \
      o.via.array.ptr[1].convert(v.B);                                      \
      return o;                                                             \
    }                                                                       \
  };

PANAL_PACK_STRUCT2(panal::registry::pg_join_msg, group, members)
PANAL_PACK_STRUCT2(panal::registry::pg_leave_msg, group, pids)
PANAL_PACK_STRUCT2(panal::registry::pg_sync_msg, node, groups)
#undef PANAL_PACK_STRUCT2

}  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE
}  // namespace msgpack

namespace panal::registry {

struct pg::impl : std::enable_shared_from_this<pg::impl> {
  impl(runtime& r, dist::distribution* d) : rt(r), dist(d) {}

  runtime& rt;
  dist::distribution* dist;
  std::atomic<bool> stopped{false};
  pid scope() const { return rt.whereis(kScopeName); }

  // Written only by the scope process; read from anywhere.
  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, std::vector<member>> groups;

  // Only the (one) scope process touches these; they outlive it, so that
  // a restarted scope keeps its subscribers.
  std::map<std::string, std::vector<pid>> subscribers;
  pid last_scope;  // to take its place among the distribution's node watchers

  void scope_main();
};

namespace {

std::uint64_t next_stamp() {
  static std::atomic<std::uint64_t> last{0};
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::uint64_t prev = last.load();
  std::uint64_t next;
  do {
    next = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

}  // namespace

void pg::impl::scope_main() {
  if (auto named = tp::register_name(kScopeName); !named) throw std::runtime_error(named.err().message);
  // Local members: pid -> (monitor, groups).
  struct watched {
    ref monitor;
    std::set<std::string> in;
  };
  std::unordered_map<pid, watched> local;
  std::unordered_map<ref, pid> subscriber_watch;  // our monitors of subscribers (a dead one is forgotten)
  std::unordered_map<std::uint32_t, std::uint64_t> connection_of;  // node -> its current connection

  // Taking over from a scope that was killed (nothing, on the first start):
  // watch the local members and the subscribers again (one that ended
  // meanwhile gets its DOWN at once), and ask every peer for its members.
  {
    std::shared_lock lock(mutex);
    for (auto& [name, ms] : groups) {
      for (const member& m : ms) {
        if (!rt.is_local(m.who)) continue;
        auto& w = local[m.who];
        if (!w.monitor) w.monitor = tp::monitor(m.who);
        w.in.insert(name);
      }
    }
  }
  {
    std::set<pid> subs;
    for (auto& [name, ps] : subscribers) subs.insert(ps.begin(), ps.end());
    for (const pid& p : subs) subscriber_watch.emplace(tp::monitor(p), p);
  }
  const bool restarted = static_cast<bool>(last_scope);
  if (dist != nullptr) {
    if (last_scope) dist->demonitor_nodes(last_scope);
    dist->monitor_nodes(tp::self());  // before the list below: no connection falls between
  }
  last_scope = tp::self();

  auto notify = [&](const std::string& group, std::vector<pid> joined, std::vector<pid> left) {
    auto it = subscribers.find(group);
    if (it == subscribers.end() || (joined.empty() && left.empty())) return;
    for (const pid& s : it->second) tp::send(s, group_event{group, joined, left});
  };
  auto broadcast = [&](message m) {
    if (dist == nullptr) return;
    for (const std::string& node : dist->nodes()) {
      (void)dist->send_named(node, kScopeName, m.clone(), tp::self());
    }
  };
  // Adds members (no duplicates); returns the pids that were new.
  auto add = [&](const std::string& group, const std::vector<member>& ms) {
    std::vector<pid> added;
    if (ms.empty()) return added;
    std::unique_lock lock(mutex);
    auto& g = groups[group];
    for (const member& m : ms) {
      if (std::none_of(g.begin(), g.end(), [&](const member& x) { return x.who == m.who; })) {
        g.push_back(m);
        added.push_back(m.who);
      }
    }
    return added;
  };
  auto remove_if = [&](const std::string& group, auto pred) {
    std::vector<pid> removed;
    std::unique_lock lock(mutex);
    auto it = groups.find(group);
    if (it == groups.end()) return removed;
    std::erase_if(it->second, [&](const member& m) {
      if (!pred(m)) return false;
      removed.push_back(m.who);
      return true;
    });
    if (it->second.empty()) groups.erase(it);
    return removed;
  };
  auto local_snapshot = [&] {
    pg_sync_msg snap;
    snap.node = node_name(rt.node());
    std::shared_lock lock(mutex);
    for (auto& [name, ms] : groups) {
      std::vector<member> mine;
      for (const member& m : ms) {
        if (rt.is_local(m.who)) mine.push_back(m);
      }
      if (!mine.empty()) snap.groups.emplace_back(name, std::move(mine));
    }
    return snap;
  };
  auto group_names = [&] {
    std::vector<std::string> names;
    std::shared_lock lock(mutex);
    for (auto& [name, ms] : groups) names.push_back(name);
    return names;
  };
  // Drops every member of `node` (and returns what changed per group).
  auto drop_node = [&](std::uint32_t node) {
    for (const std::string& name : group_names()) {
      notify(name, {}, remove_if(name, [&](const member& m) { return m.who.node == node; }));
    }
  };

  // After a restart: what came while no scope ran was lost. Nodes that
  // went down meanwhile leave; every connected peer gets this node's
  // members (one that connected meanwhile dropped them, waiting for them)
  // and is asked for its own.
  if (restarted && dist != nullptr) {
    std::set<std::uint32_t> connected;
    for (const dist::node_up& c : dist->connections()) {
      const std::uint32_t node = node_index(c.node);
      connected.insert(node);
      connection_of[node] = c.connection;
      (void)dist->send_named(c.node, kScopeName, local_snapshot(), tp::self());
      (void)dist->send_named(c.node, kScopeName, pg_ask_msg{node_name(rt.node())}, tp::self());
    }
    std::set<std::uint32_t> known;
    {
      std::shared_lock lock(mutex);
      for (auto& [name, ms] : groups) {
        for (const member& x : ms) {
          if (x.who.node != rt.node()) known.insert(x.who.node);
        }
      }
    }
    for (std::uint32_t node : known) {
      if (!connected.count(node)) drop_node(node);
    }
  }

  for (;;) {
    auto m = tp::receive();
    if (auto* req = m->get_if<call_request>()) {
      if (auto* j = req->body.get_if<join_req>()) {
        std::vector<member> fresh;
        bool bad = false;
        for (const pid& p : j->pids) bad |= !rt.is_local(p);
        if (bad) {
          tp::reply(*req, result<void>(errc::bad_argument, "only processes of this node can join its groups"));
          continue;
        }
        for (const pid& p : j->pids) {
          auto& w = local[p];
          if (!w.monitor) w.monitor = tp::monitor(p);
          if (w.in.insert(j->group).second) fresh.push_back(member{p, next_stamp()});
        }
        auto added = add(j->group, fresh);
        tp::reply(*req, result<void>());
        if (!fresh.empty()) broadcast(pg_join_msg{j->group, fresh});
        notify(j->group, added, {});
      } else if (auto* l = req->body.get_if<leave_req>()) {
        auto it = local.find(l->who);
        if (it == local.end() || it->second.in.erase(l->group) == 0) {
          tp::reply(*req, result<void>(errc::not_found, to_string(l->who) + " is not in group '" + l->group + "'"));
          continue;
        }
        if (it->second.in.empty()) {
          tp::demonitor(it->second.monitor);
          local.erase(it);
        }
        auto removed = remove_if(l->group, [&](const member& x) { return x.who == l->who; });
        tp::reply(*req, result<void>());
        broadcast(pg_leave_msg{l->group, {l->who}});
        notify(l->group, {}, removed);
      } else if (auto* mon = req->body.get_if<monitor_req>()) {
        if (!rt.is_local(mon->subscriber)) {
          tp::reply(*req, result<void>(errc::bad_argument, "only processes of this node can monitor its groups"));
          continue;
        }
        auto& subs = subscribers[mon->group];
        if (std::find(subs.begin(), subs.end(), mon->subscriber) == subs.end()) {
          subs.push_back(mon->subscriber);
          subscriber_watch.emplace(tp::monitor(mon->subscriber), mon->subscriber);
        }
        tp::reply(*req, result<void>());
      } else if (auto* q = req->body.get_if<subscribers_req>()) {
        auto it = subscribers.find(q->group);
        tp::reply(*req, it == subscribers.end() ? std::size_t{0} : it->second.size());
      } else if (req->body.is<stop_req>()) {
        if (dist != nullptr) dist->demonitor_nodes(tp::self());
        tp::reply(*req, result<void>());
        return;
      }
    } else if (auto* d = m->get_if<down_msg>()) {
      if (auto w = subscriber_watch.find(d->monitor); w != subscriber_watch.end()) {
        subscriber_watch.erase(w);
        for (auto s = subscribers.begin(); s != subscribers.end();) {
          std::erase(s->second, d->who);
          s = s->second.empty() ? subscribers.erase(s) : std::next(s);
        }
        continue;
      }
      auto it = local.find(d->who);
      if (it == local.end() || it->second.monitor != d->monitor) continue;
      for (const std::string& group : it->second.in) {
        auto removed = remove_if(group, [&](const member& x) { return x.who == d->who; });
        broadcast(pg_leave_msg{group, {d->who}});
        notify(group, {}, removed);
      }
      local.erase(it);
    } else if (auto* up = m->get_if<dist::node_up>()) {
      // A new connection: what we knew of the node is replaced by the
      // snapshot it sends over this connection, which comes after this.
      const std::uint32_t node = node_index(up->node);
      connection_of[node] = up->connection;
      drop_node(node);
      (void)dist->send_named(up->node, kScopeName, local_snapshot(), tp::self());
    } else if (auto* down = m->get_if<dist::node_down>()) {
      const std::uint32_t node = node_index(down->node);
      auto it = connection_of.find(node);
      if (it == connection_of.end() || it->second != down->connection) continue;  // an older connection
      connection_of.erase(it);
      drop_node(node);
    } else if (auto* sync = m->get_if<pg_sync_msg>()) {
      // Replace everything we knew of the sender's node with its snapshot.
      const std::uint32_t node = node_index(sync->node);
      if (node == rt.node()) continue;
      std::map<std::string, std::vector<member>> fresh;
      for (auto& [name, ms] : sync->groups) {
        for (const member& x : ms) {
          if (x.who.node == node) fresh[name].push_back(x);  // a node speaks only for its own
        }
      }
      std::set<std::string> names;
      for (auto& [name, ms] : fresh) names.insert(name);
      for (const std::string& name : group_names()) names.insert(name);
      for (const std::string& name : names) {
        const auto& now = fresh[name];
        auto left = remove_if(name, [&](const member& x) {
          return x.who.node == node &&
                 std::none_of(now.begin(), now.end(), [&](const member& y) { return y.who == x.who; });
        });
        auto joined = add(name, now);
        notify(name, joined, left);
      }
    } else if (auto* ask = m->get_if<pg_ask_msg>()) {
      if (dist != nullptr && dist::parse_node_name(ask->node)) {
        (void)dist->send_named(ask->node, kScopeName, local_snapshot(), tp::self());
      }
    } else if (auto* j = m->get_if<pg_join_msg>()) {
      // Only this node speaks for its own processes.
      std::erase_if(j->members, [&](const member& x) { return x.who.node == rt.node(); });
      notify(j->group, add(j->group, j->members), {});
    } else if (auto* l = m->get_if<pg_leave_msg>()) {
      std::set<pid> gone(l->pids.begin(), l->pids.end());
      notify(l->group, {}, remove_if(l->group, [&](const member& x) {
               return x.who.node != rt.node() && gone.count(x.who) > 0;
             }));
    }
  }
}

pg::pg(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

result<std::unique_ptr<pg>> pg::start(runtime& rt, dist::distribution* dist, const pid& supervisor) {
  static std::once_flag types_once;
  std::call_once(types_once, [] {
    auto& t = dist::message_types::global();
    t.add<pg_join_msg>("panal.pg.join");
    t.add<pg_leave_msg>("panal.pg.leave");
    t.add<pg_sync_msg>("panal.pg.sync");
    t.add<pg_ask_msg>("panal.pg.ask");
  });
  auto i = std::make_shared<impl>(rt, dist);
  auto body = [i] { i->scope_main(); };
  if (supervisor) {
    auto p = supervisor::start_child(rt, supervisor, child_spec::worker("pg", body));
    if (!p) return p.err();
  } else {
    auto p = rt.spawn(body);
    if (!p) return p.err();
  }
  // It registers its name first thing: wait for that, so joins find it.
  if (!rt.await_name(kScopeName, std::chrono::seconds(2))) return {errc::timeout, "the pg scope did not start"};
  return std::unique_ptr<pg>(new pg(std::move(i)));
}

pg::~pg() { stop(); }

void pg::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  // Under a supervisor, it stopped the scope already.
  if (!impl_->rt.running()) return;
  if (const pid s = impl_->scope()) (void)impl_->rt.call(s, stop_req{}, std::chrono::seconds(10));
}

namespace {
result<void> as_void(result<message> r) {
  if (!r) return r.err();
  return std::move(r->get<result<void>>());
}
}  // namespace

result<void> pg::join(const std::string& group, const pid& p) { return join(group, std::vector<pid>{p}); }

result<void> pg::join(const std::string& group, const std::vector<pid>& ps) {
  return as_void(impl_->rt.call(impl_->scope(), join_req{group, ps}, std::chrono::seconds(30)));
}

result<void> pg::leave(const std::string& group, const pid& p) {
  return as_void(impl_->rt.call(impl_->scope(), leave_req{group, p}, std::chrono::seconds(30)));
}

result<void> pg::monitor(const std::string& group, const pid& subscriber) {
  return as_void(impl_->rt.call(impl_->scope(), monitor_req{group, subscriber}, std::chrono::seconds(30)));
}

result<std::size_t> pg::subscribers(const std::string& group) {
  auto r = impl_->rt.call(impl_->scope(), subscribers_req{group}, std::chrono::seconds(30));
  if (!r) return r.err();
  if (!r->is<std::size_t>()) return error{errc::malformed, "unexpected answer from the pg scope"};
  return r->get<std::size_t>();
}

std::vector<member> pg::members_with_stamps(const std::string& group) const {
  std::shared_lock lock(impl_->mutex);
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? std::vector<member>{} : it->second;
}

std::vector<pid> pg::members(const std::string& group) const {
  std::vector<pid> out;
  for (const member& m : members_with_stamps(group)) out.push_back(m.who);
  return out;
}

std::vector<pid> pg::local_members(const std::string& group) const {
  std::vector<pid> out;
  for (const member& m : members_with_stamps(group)) {
    if (impl_->rt.is_local(m.who)) out.push_back(m.who);
  }
  return out;
}

std::vector<std::string> pg::which_groups() const {
  std::vector<std::string> out;
  std::shared_lock lock(impl_->mutex);
  for (auto& [name, ms] : impl_->groups) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<pid> pg::oldest(const std::string& group) const {
  std::shared_lock lock(impl_->mutex);
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end() || it->second.empty()) return std::nullopt;
  const member* best = &it->second.front();
  for (const member& m : it->second) {
    if (m.stamp < best->stamp || (m.stamp == best->stamp && m.who < best->who)) best = &m;
  }
  return best->who;
}

}  // namespace panal::registry
