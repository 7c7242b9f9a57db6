#include "node/node.h"

#include <algorithm>
#include <atomic>
#include <mutex>
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
#include "metrics/request_metrics.h"
#include "node/cluster_view.h"
#include "node/http_server.h"
#include "node/metrics_report.h"
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
  std::unique_ptr<metrics::request_metrics> requests;
  http::listening http;  // fd -1: no HTTP listener
  std::atomic<node*> owner{nullptr};  // set once start() has made the node
  // The view for the page, made at most once a second however many ask.
  std::mutex view_mutex;
  std::string view;
  clock::time_point view_at{};
  bool view_busy = false;

  std::string shared_view(node& n) {
    {
      std::lock_guard lock(view_mutex);
      if (!view.empty() && (view_busy || clock::now() - view_at < std::chrono::seconds(1))) return view;
      view_busy = true;
    }
    std::string fresh = n.view_json();
    std::lock_guard lock(view_mutex);
    view_busy = false;
    view_at = clock::now();
    view = fresh;
    return fresh;
  }
  bool stopped = false;

  // Inside one of the node's processes.
  std::string render() {
    return render_metrics({*rt, *groups, *requests, *ctx->open_sessions, dist.get(), root, options.name});
  }
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

// "tree": a line per child, indented by depth (what `panal status` prints).
std::vector<std::string> tree_lines(const pid& root) {
  std::vector<std::string> out{"node " + to_string(root)};
  for (const auto& r : supervisor::walk_tree(tp::current_runtime(), root, std::chrono::seconds(2))) {
    const std::string indent(static_cast<std::size_t>(r.depth) * 2, ' ');
    if (!r.error.empty()) {
      out.push_back(indent + "(" + r.error + ")");
      continue;
    }
    const auto& k = r.child;
    out.push_back(indent + k.id + (k.type == child_type::supervisor ? " (supervisor) " : " ") +
                  (k.child ? to_string(k.child) : std::string("not running")) + ", restarts " +
                  std::to_string(k.restarts));
  }
  return out;
}

// "tree_rows": five strings per child (depth, id, "s" for a supervisor or
// "w", pid or "", restarts); a supervisor that did not answer is a row with
// id "" and its error in place of the pid.
std::vector<std::string> tree_fields(const pid& root) {
  std::vector<std::string> out;
  for (const auto& r : supervisor::walk_tree(tp::current_runtime(), root, std::chrono::seconds(2))) {
    const auto& k = r.child;
    out.insert(out.end(), {std::to_string(r.depth), k.id, k.type == child_type::supervisor ? "s" : "w",
                           !r.error.empty() ? r.error : k.child ? to_string(k.child) : std::string(),
                           std::to_string(k.restarts)});
  }
  return out;
}

// Four strings per process: pid, name, mailbox length, messages received
// (a flat list: any name travels as it is).
std::vector<std::string> process_fields() {
  std::vector<std::string> out;
  for (const auto& p : tp::current_runtime().processes()) {
    out.insert(out.end(), {to_string(p.self), p.name, std::to_string(p.mailbox), std::to_string(p.received)});
  }
  return out;
}

// Answers "tree" with this node's supervision tree (for `panal status`),
// "metrics" with its metrics, "processes" with its processes.
void status_main(pid root, node::impl* node) {
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
    if (auto* what = req->body.get_if<std::string>(); what && *what == "metrics") {
      tp::reply(*req, node->render());
      continue;
    }
    if (auto* what = req->body.get_if<std::string>(); what && *what == "processes") {
      tp::reply(*req, process_fields());
      continue;
    }
    if (auto* what = req->body.get_if<std::string>(); what && *what == "tree_rows") {
      tp::reply(*req, tree_fields(root));
      continue;
    }
    tp::reply(*req, tree_lines(root));
  }
}

// What the HTTP listener serves (docs/operations.md).
http::response serve_http(node::impl& i, const std::string& path) {
  http::response r;
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = i.render();
    return r;
  }
  node* n = i.owner.load();
  if (n == nullptr) {
    r.status = 503;
    r.body = "the node is starting\n";
    return r;
  }
  if (path == "/api/cluster") {
    r.content_type = "application/json";
    r.body = i.shared_view(*n);
    return r;
  }
  if (path == "/events") {
    // The view every second, as server-sent events, while the client stays.
    r.content_type = "text/event-stream";
    r.body = "retry: 2000\n\ndata: " + i.shared_view(*n) + "\n\n";
    r.next = [&i, n](std::string& event) {
      event = "data: " + i.shared_view(*n) + "\n\n";
      return true;
    };
    return r;
  }
  if (path == "/" || path == "/index.html") {
    r.content_type = "text/html; charset=utf-8";
    r.body = live_page();
    return r;
  }
  r.status = 404;
  r.body = "not found: this node serves /, /metrics, /api/cluster and /events\n";
  return r;
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
  i->requests = std::make_unique<metrics::request_metrics>(i->rt->thread_count());
  i->ctx->requests = i->requests.get();
  i->dbs = std::make_unique<db::databases>(*i->rt, *i->ctx, i->root);
  db::context* ctx = i->ctx.get();
  auto routes = supervisor::start_child(*i->rt, i->root, child_spec::worker("routes", [ctx] { db::routes_main(*ctx); }));
  if (!routes) return routes.err();
  db::databases* manager = i->dbs.get();
  auto served = supervisor::start_child(*i->rt, i->root, child_spec::worker("databases", [manager] { manager->serve(); }));
  if (!served) return served.err();
  const pid root_pid = i->root;
  node::impl* self = i.get();
  auto status = supervisor::start_child(*i->rt, i->root, child_spec::worker("status", [root_pid, self] {
    status_main(root_pid, self);
  }));
  if (!status) return status.err();
  if (!options.http.empty()) {
    auto l = http::listen(options.http);
    if (!l) {
      (void)supervisor::stop(*i->rt, i->root, std::chrono::seconds(10));
      i->rt->stop();
      return l.err();
    }
    i->http = *l;
    auto served_http = supervisor::start_child(*i->rt, i->root, child_spec::worker("http", [self] {
      http::serve(self->http.fd, [self](const std::string&, const std::string& path) { return serve_http(*self, path); });
    }));
    if (!served_http) return served_http.err();
  }
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
  auto made = std::unique_ptr<node>(new node(std::move(i)));
  made->impl_->owner.store(made.get());
  return made;
}

node::~node() { stop(); }

void node::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->root) (void)supervisor::stop(*impl_->rt, impl_->root, std::chrono::seconds(30));
  if (impl_->groups) impl_->groups->stop();
  if (impl_->dist) impl_->dist->stop();
  impl_->rt->stop();
  if (impl_->http.fd >= 0) ::close(impl_->http.fd);
  impl_->http.fd = -1;
}

unsigned short node::http_port() const { return impl_->http.port; }

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

std::vector<std::string> node::databases() const {
  std::vector<std::string> out;
  for (const auto& g : impl_->groups->which_groups()) {
    if (auto db = db::database_of(g, "server"); !db.empty()) out.push_back(std::move(db));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<pid> node::master(const std::string& db) const { return impl_->groups->oldest(db::server_group(db)); }

namespace {

result<message> ask_status(node::impl& i, const std::string& node_name, const std::string& what,
                           clock::duration timeout) {
  if (node_name.empty() || node_name == i.options.name) {
    const pid status = i.rt->whereis(kStatus);
    if (!status) return error{errc::noproc, "the status process is not running"};
    return i.rt->call(status, what, timeout);
  }
  if (!i.dist) return error{errc::bad_argument, "this node is not distributed"};
  return i.dist->call_named(node_name, kStatus, what, timeout);
}

// An answer of `what` that is a list of strings, `per` of them per item.
result<std::vector<std::string>> ask_strings(node::impl& i, const std::string& node_name, const std::string& what,
                                             std::size_t per, clock::duration timeout) {
  auto r = ask_status(i, node_name, what, timeout);
  if (!r) return r.err();
  if (!r->is<std::vector<std::string>>() || r->get<std::vector<std::string>>().size() % per != 0) {
    return {errc::malformed, "unexpected status answer"};
  }
  return std::move(r->get<std::vector<std::string>>());
}

}  // namespace

result<std::vector<std::string>> node::supervision(const std::string& node_name, clock::duration timeout) {
  return ask_strings(*impl_, node_name, "tree", 1, timeout);
}

result<std::vector<node::tree_entry>> node::supervision_tree(const std::string& node_name, clock::duration timeout) {
  auto r = ask_strings(*impl_, node_name, "tree_rows", 5, timeout);
  if (!r) return r.err();
  auto& f = *r;
  std::vector<tree_entry> out;
  for (std::size_t i = 0; i < f.size(); i += 5) {
    tree_entry e;
    e.depth = static_cast<unsigned>(std::strtoul(f[i].c_str(), nullptr, 10));
    e.id = std::move(f[i + 1]);
    e.supervisor = f[i + 2] == "s";
    (e.id.empty() ? e.error : e.pid) = std::move(f[i + 3]);
    e.restarts = static_cast<unsigned>(std::strtoul(f[i + 4].c_str(), nullptr, 10));
    out.push_back(std::move(e));
  }
  return out;
}

result<std::string> node::metrics(const std::string& node_name, clock::duration timeout) {
  auto r = ask_status(*impl_, node_name, "metrics", timeout);
  if (!r) return r.err();
  if (!r->is<std::string>()) return {errc::malformed, "unexpected status answer"};
  return std::move(r->get<std::string>());
}

result<std::vector<process_row>> node::processes(const std::string& node_name, clock::duration timeout) {
  auto r = ask_strings(*impl_, node_name, "processes", 4, timeout);
  if (!r) return r.err();
  auto& f = *r;
  std::vector<process_row> out;
  for (std::size_t i = 0; i < f.size(); i += 4) {
    out.push_back({std::move(f[i]), std::move(f[i + 1]), std::strtoull(f[i + 2].c_str(), nullptr, 10),
                   std::strtoull(f[i + 3].c_str(), nullptr, 10)});
  }
  return out;
}

std::string node::view_json(clock::duration timeout) {
  return cluster_json(*this, impl_->requests->read(), timeout);
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
        if (tp::inside()) {
          tp::sleep_for(std::chrono::milliseconds(5));  // (the thread runs on)
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
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
  const std::uint32_t n = m->slots.slot_count();
  const std::uint32_t cells = std::min<std::uint32_t>(n, map_info::sample_cells);
  for (std::uint32_t c = 0; c < cells; ++c) {
    const std::uint32_t primary = m->slots.primary(static_cast<std::uint32_t>(std::uint64_t{c} * n / cells));
    out.sampled_primaries.push_back(primary == store::slot_map::no_primary ? -1 : static_cast<std::int32_t>(primary));
  }
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
