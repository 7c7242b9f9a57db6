#include "node/node.h"

#include <msgpack.hpp>
#include <thread>

#include "db/auth_throttle.h"
#include "db/cluster_map.h"
#include "db/context.h"
#include "db/database.h"
#include "db/messages.h"
#include "db/server.h"
#include "db/session.h"
#include "dist/distribution.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "util/log.h"
#include "wire/unpack.h"

namespace panal {

namespace tp = this_process;

struct node::impl {
  node_options options;
  std::unique_ptr<runtime> rt;
  std::unique_ptr<dist::distribution> dist;
  std::unique_ptr<registry::pg> groups;
  db::routes routes;
  std::unique_ptr<db::context> ctx;
  pid root;
  std::unique_ptr<db::databases> dbs;
  bool stopped = false;
};

namespace {

// Arguments of the remote start functions, as msgpack.
struct start_args {
  std::string db;
  std::string name;  // client name
  std::uint32_t count = 1;
  std::uint64_t max_key = 0, max_value = 0, max_keys = 0, max_memory = 0;
  std::string ckey;
  std::uint32_t slots = 16384;
  std::uint32_t replicas = 3, write_acks = 0;
  std::uint64_t lease_ms = 0;
  std::uint64_t timeout_ms = 0;  // stop_data
  MSGPACK_DEFINE(db, name, count, max_key, max_value, max_keys, max_memory, ckey, slots, replicas, write_acks,
                 lease_ms, timeout_ms);
};

std::string pack_args(const start_args& a) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, a);
  return std::string(buf.data(), buf.size());
}

result<start_args> unpack_args(const std::string& bytes) {
  auto h = wire::unpack(bytes);
  if (!h) return h.err();
  try {
    return h->get().as<start_args>();
  } catch (const std::exception& e) {
    return {errc::malformed, std::string("bad start arguments: ") + e.what()};
  }
}

constexpr const char* kStatus = "panal_status";

void tree_lines(runtime& rt, const pid& sup, int depth, std::vector<std::string>& out) {
  auto kids = supervisor::which_children(rt, sup);
  if (!kids) {
    out.push_back(std::string(static_cast<std::size_t>(depth) * 2, ' ') + "(" + kids.err().message + ")");
    return;
  }
  for (const auto& k : *kids) {
    out.push_back(std::string(static_cast<std::size_t>(depth) * 2, ' ') + k.id +
                  (k.type == child_type::supervisor ? " (supervisor) " : " ") +
                  (k.child ? to_string(k.child) : std::string("not running")) + ", restarts " +
                  std::to_string(k.restarts));
    if (k.type == child_type::supervisor && k.child) tree_lines(rt, k.child, depth + 1, out);
  }
}

// Answers "tree" with this node's supervision tree (for `panal status`).
void status_main(pid root) {
  if (auto r = tp::register_name(kStatus); !r) throw std::runtime_error(r.err().message);
  // Peers may send anything to a registered name: what is not a call is
  // dropped at once (a selective receive would keep it forever). A call
  // with "mailbox" answers the messages waiting here (for tests and views).
  for (;;) {
    auto m = tp::receive();
    auto* req = m->get_if<call_request>();
    if (req == nullptr) continue;
    if (auto* what = req->body.get_if<std::string>(); what && *what == "mailbox") {
      tp::reply(*req, std::vector<std::string>{"mailbox " + std::to_string(tp::mailbox_size())});
      continue;
    }
    std::vector<std::string> lines{"node " + to_string(root)};
    tree_lines(tp::current_runtime(), root, 1, lines);
    tp::reply(*req, std::move(lines));
  }
}

db::server_config config_of(const start_args& a, std::chrono::milliseconds down_after) {
  db::server_config c;
  c.db = a.db;
  c.settings.slots = a.slots;
  c.settings.replicas = std::max<std::uint32_t>(a.replicas, 1);
  c.settings.write_acks = a.write_acks != 0 ? std::min(a.write_acks, c.settings.replicas) : c.settings.replicas / 2 + 1;
  c.settings.max_key_bytes = a.max_key;
  c.settings.max_value_bytes = a.max_value;
  c.settings.max_keys = a.max_keys;
  c.settings.max_memory = a.max_memory;
  const auto most = 2 * static_cast<std::uint64_t>(down_after.count());
  c.settings.lease_ms = a.lease_ms != 0 ? std::min(a.lease_ms, most) : static_cast<std::uint64_t>(down_after.count());
  c.ckey = a.ckey;
  return c;
}

start_args args_of(const std::string& db, const server_options& o) {
  start_args a;
  a.db = db;
  a.max_key = o.limits.max_key_bytes;
  a.max_value = o.limits.max_value_bytes;
  a.max_keys = o.limits.max_keys;
  a.max_memory = o.limits.max_memory;
  a.ckey = o.ckey;
  a.slots = o.slots;
  a.replicas = o.replicas;
  a.write_acks = o.write_acks;
  a.lease_ms = static_cast<std::uint64_t>(o.lease.count());
  return a;
}

}  // namespace

node::node(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

result<std::unique_ptr<node>> node::start(node_options options) {
  db::register_types();
  if (options.tls.enabled() && options.name == "nonode@nohost") {
    return {errc::bad_argument, "TLS is for a node's port: give the node a name like n1@127.0.0.1:7001"};
  }
  auto i = std::make_unique<impl>();
  i->options = options;
  i->rt = std::make_unique<runtime>(runtime_options{.threads = options.threads, .node_name = options.name,
                                                    .spin_before_sleep = options.spin_before_sleep});
  const bool distributed = options.name != "nonode@nohost";
  // The root supervisor first: the distribution's processes and the pg
  // scope are its children, as the databases are.
  auto root = supervisor::start(*i->rt, {.how = strategy::one_for_one, .intensity = 10,
                                         .period = std::chrono::seconds(10), .name = "node"},
                                {});
  if (!root) {
    i->rt->stop();
    return root.err();
  }
  i->root = *root;
  if (distributed) {
    auto d = dist::distribution::start(*i->rt, {.cookie = options.cookie, .tick = options.tick,
                                                .down_after = options.down_after,
                                                .reconnect_every = std::min<clock::duration>(options.tick,
                                                                                             std::chrono::seconds(1)),
                                                .forget_after = options.forget_after,
                                                .max_send_queue = options.max_send_queue,
                                                .tls = options.tls},
                                       i->root);
    if (!d) {
      i->rt->stop();
      return d.err();
    }
    i->dist = std::move(*d);
  }
  auto g = registry::pg::start(*i->rt, i->dist.get(), i->root);
  if (!g) return g.err();
  i->groups = std::move(*g);
  const auto down_after = std::chrono::duration_cast<std::chrono::milliseconds>(options.down_after);
  i->ctx = std::make_unique<db::context>(db::context{*i->groups, i->routes, i->dist.get(), options.name, down_after});
  i->ctx->sessions.max_sessions = options.max_sessions;
  i->ctx->auth = std::make_shared<db::auth_throttle>();
  i->dbs = std::make_unique<db::databases>(*i->rt, *i->ctx, i->root);
  db::context* ctx = i->ctx.get();
  auto routes = supervisor::start_child(*i->rt, i->root, child_spec::worker("routes", [ctx] { db::routes_main(*ctx); }));
  if (!routes) return routes.err();
  db::databases* manager = i->dbs.get();
  auto served = supervisor::start_child(*i->rt, i->root, child_spec::worker("databases", [manager] { manager->serve(); }));
  if (!served) return served.err();
  const pid root_pid = i->root;
  auto status = supervisor::start_child(*i->rt, i->root, child_spec::worker("status", [root_pid] {
    status_main(root_pid);
  }));
  if (!status) return status.err();
  if (i->dist) {
    db::databases* dbs = i->dbs.get();
    i->dist->register_spawn("panal.db.start_server", [dbs, down_after](const std::string& bytes) -> result<pid> {
      auto a = unpack_args(bytes);
      if (!a) return a.err();
      return dbs->start_server(config_of(*a, down_after));
    });
    i->dist->register_spawn("panal.db.stop_data", [dbs](const std::string& bytes) -> result<pid> {
      auto a = unpack_args(bytes);
      if (!a) return a.err();
      return dbs->stop_data(a->db, a->count, std::chrono::milliseconds(a->timeout_ms));
    });
    i->dist->register_spawn("panal.db.start_data", [dbs](const std::string& bytes) -> result<pid> {
      auto a = unpack_args(bytes);
      if (!a) return a.err();
      auto ps = dbs->start_data(a->db, 1);
      if (!ps) return ps.err();
      return ps->front();
    });
    i->dist->set_client_handler([ctx](std::shared_ptr<dist::stream> conn, std::string first, std::string rest) {
      db::serve_client(*ctx, std::move(conn), std::move(first), std::move(rest));
    });
    i->dist->register_spawn("panal.db.start_client", [dbs](const std::string& bytes) -> result<pid> {
      auto a = unpack_args(bytes);
      if (!a) return a.err();
      return dbs->start_client(a->db, a->name);
    });
  }
  return std::unique_ptr<node>(new node(std::move(i)));
}

node::~node() { stop(); }

void node::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->root) (void)supervisor::stop(*impl_->rt, impl_->root, std::chrono::seconds(30));
  if (impl_->groups) impl_->groups->stop();
  if (impl_->dist) impl_->dist->stop();
  impl_->rt->stop();
}

runtime& node::rt() { return *impl_->rt; }
registry::pg& node::registry() { return *impl_->groups; }
pid node::root_supervisor() const { return impl_->root; }
dist::distribution* node::distribution() { return impl_->dist.get(); }
const std::string& node::name() const { return impl_->options.name; }

result<void> node::connect(const std::string& other) {
  if (!impl_->dist) return {errc::bad_argument, "this node is not distributed: give it a name like n1@127.0.0.1:7001"};
  return impl_->dist->connect(other);
}

result<void> node::partition(const std::vector<std::string>& nodes) {
  if (!impl_->dist) return {errc::bad_argument, "this node is not distributed"};
  impl_->dist->partition(nodes);
  return {};
}

void node::heal() {
  if (impl_->dist) impl_->dist->heal();
}

std::vector<std::string> node::nodes() const { return impl_->dist ? impl_->dist->nodes() : std::vector<std::string>{}; }

namespace {

// Runs `local` for this node and the named remote function elsewhere.
template <class Local>
result<std::vector<pid>> on_each(node::impl& i, const std::vector<std::string>& on, const std::string& fn,
                                 const std::string& args, Local local) {
  std::vector<std::string> targets = on;
  if (targets.empty()) targets.push_back(i.options.name);
  std::vector<pid> out;
  for (const std::string& n : targets) {
    if (n == i.options.name) {
      auto r = local();
      if (!r) return r.err();
      for (const pid& p : *r) out.push_back(p);
    } else {
      if (!i.dist) return {errc::bad_argument, "this node is not distributed and cannot reach " + n};
      auto p = i.dist->spawn_on(n, fn, args);
      if (!p) return error{p.code(), n + ": " + p.err().message};
      out.push_back(*p);
    }
  }
  return out;
}

}  // namespace

result<std::vector<pid>> node::start_server(const std::string& db, const std::vector<std::string>& on,
                                            const server_options& options) {
  if (db.empty()) return {errc::bad_argument, "a database needs a name"};
  // A request must fit one node-to-node frame (64 MiB) on its way to the master.
  if (options.limits.max_value_bytes + options.limits.max_key_bytes > (60u << 20)) {
    return {errc::bad_argument, "max_value_bytes + max_key_bytes must stay under 60 MiB"};
  }
  if (options.limits.max_key_bytes > 65535) return {errc::bad_argument, "max_key_bytes must be at most 65535"};
  if (options.replicas == 0) return {errc::bad_argument, "replicas must be at least 1"};
  if (options.write_acks > options.replicas) return {errc::bad_argument, "write_acks cannot exceed replicas"};
  // A master that takes over waits one lease for the old one's grants to run
  // out; it notices the old one gone after down_after, when that master
  // stopped granting at most half a lease earlier. Safe while lease <= 2 down_after.
  if (options.lease > 2 * std::chrono::duration_cast<std::chrono::milliseconds>(impl_->options.down_after)) {
    return {errc::bad_argument, "lease must be at most twice the node's down_after"};
  }
  const start_args a = args_of(db, options);
  return on_each(*impl_, on, "panal.db.start_server", pack_args(a), [&]() -> result<std::vector<pid>> {
    auto p = impl_->dbs->start_server(config_of(a, impl_->ctx->down_after));
    if (!p) return p.err();
    return std::vector<pid>{*p};
  });
}

result<std::vector<pid>> node::start_data(const std::string& db, const std::vector<std::string>& on, unsigned count) {
  if (db.empty()) return {errc::bad_argument, "a database needs a name"};
  start_args a;
  a.db = db;
  std::vector<std::string> targets;
  for (const std::string& n : on.empty() ? std::vector<std::string>{impl_->options.name} : on) {
    for (unsigned k = 0; k < count; ++k) targets.push_back(n);
  }
  return on_each(*impl_, targets, "panal.db.start_data", pack_args(a),
                 [&] { return impl_->dbs->start_data(db, 1); });
}

result<client> node::start_client(const std::string& name, const std::string& db, const std::vector<std::string>& on) {
  if (db.empty() || name.empty()) return {errc::bad_argument, "a client needs a name and a database"};
  start_args a;
  a.db = db;
  a.name = name;
  auto ps = on_each(*impl_, on, "panal.db.start_client", pack_args(a), [&]() -> result<std::vector<pid>> {
    auto p = impl_->dbs->start_client(db, name);
    if (!p) return p.err();
    return std::vector<pid>{*p};
  });
  if (!ps) return ps.err();
  return client(*impl_->rt, ps->front(), db, std::chrono::seconds(5), &impl_->routes);
}

db_groups node::groups(const std::string& db) const {
  return {impl_->groups->members(db::server_group(db)), impl_->groups->members(db::data_group(db)),
          impl_->groups->members(db::client_group(db))};
}

std::optional<pid> node::master(const std::string& db) const { return impl_->groups->oldest(db::server_group(db)); }

result<std::vector<std::string>> node::supervision(const std::string& node_name) {
  result<message> r = error{errc::noproc, "no status process"};
  if (node_name.empty() || node_name == impl_->options.name) {
    const pid status = impl_->rt->whereis(kStatus);
    if (!status) return {errc::noproc, "the status process is not running"};
    r = impl_->rt->call(status, std::string("tree"), std::chrono::seconds(10));
  } else {
    if (!impl_->dist) return {errc::bad_argument, "this node is not distributed"};
    r = impl_->dist->call_named(node_name, kStatus, std::string("tree"), std::chrono::seconds(10));
  }
  if (!r) return r.err();
  if (!r->is<std::vector<std::string>>()) return {errc::malformed, "unexpected status answer"};
  return std::move(r->get<std::vector<std::string>>());
}

std::vector<data_stats> node::stats(const std::string& db) {
  std::vector<data_stats> out;
  for (const pid& p : impl_->groups->members(db::data_group(db))) {
    auto r = impl_->rt->call(p, db::stats_request{}, std::chrono::seconds(5));
    if (!r || !r->is<db::stats_reply>()) continue;
    const auto& s = r->get<db::stats_reply>();
    out.push_back({p, s.keys, s.keys_primary, s.memory, s.entries, s.tombstones, s.state, s.index, s.member, s.epoch,
                   s.slots_primary, s.slots_held, s.slots_filling, s.keys_in, s.bytes_in, s.keys_out, s.bytes_out,
                   s.rate, s.syncs_agreed, s.syncs_copied});
  }
  return out;
}

std::vector<node::key_copy> node::locate(const std::string& db, const std::string& key) {
  std::vector<key_copy> out;
  for (const pid& p : impl_->groups->members(db::data_group(db))) {
    auto r = impl_->rt->call(p, db::locate_request{key}, std::chrono::seconds(5));
    if (!r || !r->is<db::locate_reply>()) continue;
    const auto& l = r->get<db::locate_reply>();
    out.push_back({p, l.role, l.held, l.tombstone, l.value, l.v_epoch, l.v_hlc, l.epoch});
  }
  return out;
}

std::optional<map_info> node::slot_map(const std::string& db) const {
  auto m = impl_->routes.get(db);
  if (!m) {
    // This node routes nothing of `db` yet: ask the master for its map.
    const auto master = impl_->groups->oldest(db::server_group(db));
    const pid routes = impl_->rt->whereis(db::routes_process);
    if (master && routes) {
      impl_->rt->send(*master, db::map_request{db, routes, 0});
      for (int i = 0; i < 200 && !m; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        m = impl_->routes.get(db);
      }
    }
  }
  if (!m) return std::nullopt;
  map_info out;
  out.epoch = m->epoch();
  out.master = m->master;
  out.replicas = m->settings.replicas;
  out.write_acks = m->settings.write_acks;
  out.slots = m->settings.slots;
  out.moving = m->slots.moving_slots();
  for (std::size_t i = 0; i < m->pids.size(); ++i) {
    out.members.push_back(m->slots.members()[i].id);
    out.pids.push_back(m->pids[i]);
    out.eligible.push_back(m->slots.members()[i].eligible);
  }
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint32_t s = 0; s < m->slots.slot_count(); ++s) {
    for (std::uint32_t t : m->slots.targets(s)) h = (h ^ m->slots.members()[t].id) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  out.owners_digest = h;
  return out;
}

result<void> node::stop_data(const std::string& db, const std::vector<std::string>& on, unsigned count,
                             clock::duration timeout) {
  if (db.empty() || count == 0) return {errc::bad_argument, "stop_data needs a database and a count"};
  if (auto m = slot_map(db)) {
    std::size_t eligible = 0;
    for (bool e : m->eligible) eligible += e ? 1 : 0;
    const std::size_t asked = count * (on.empty() ? 1 : on.size());
    if (eligible <= asked) {
      return {errc::bad_argument, "draining " + std::to_string(asked) + " would leave '" + db +
                                      "' without a data process to take its slots"};
    }
  }
  start_args a;
  a.db = db;
  a.count = count;
  a.timeout_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
  auto drainers = on_each(*impl_, on, "panal.db.stop_data", pack_args(a), [&]() -> result<std::vector<pid>> {
    auto p = impl_->dbs->stop_data(db, count, timeout);
    if (!p) return p.err();
    return std::vector<pid>{*p};
  });
  if (!drainers) return drainers.err();
  inbox in = impl_->rt->open_inbox();
  std::vector<ref> watches;
  for (const pid& p : *drainers) {
    watches.push_back(in.monitor(p));
    in.send(p, in.self());  // go
  }
  result<void> outcome;
  for (std::size_t n = 0; n < watches.size(); ++n) {
    auto d = in.receive_as<down_msg>(timeout + std::chrono::seconds(10));
    if (!d) return {errc::timeout, "draining did not finish in time"};
    if (!d->reason.is_normal() && outcome) {
      outcome = error{errc::start_failed, d->reason.detail.empty() ? to_string(d->reason) : d->reason.detail};
    }
  }
  return outcome;
}

}  // namespace panal
