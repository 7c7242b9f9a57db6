#include "db/database.h"

#include <thread>

#include "db/messages.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"

namespace panal::db {

namespace tp = this_process;

namespace {

constexpr const char* kManager = "panal_dbs";

struct task {
  std::function<message()> run;
};

}  // namespace

databases::databases(runtime& rt, registry::pg& groups, pid root) : rt_(rt), groups_(groups), root_(root) {}

void databases::serve() {
  if (auto r = tp::register_name(kManager); !r) throw std::runtime_error(r.err().message);
  for (;;) {
    auto req = tp::receive_as<call_request>();
    if (auto* t = req->body.get_if<task>()) tp::reply(*req, t->run());
  }
}

template <class T>
result<T> databases::ask(std::function<result<T>()> work) {
  // The manager registers itself when it first runs (and again after a restart).
  pid manager = rt_.whereis(kManager);
  for (int i = 0; !manager && i < 1000; ++i) {
    if (tp::inside()) tp::sleep_for(std::chrono::milliseconds(2));
    else std::this_thread::sleep_for(std::chrono::milliseconds(2));
    manager = rt_.whereis(kManager);
  }
  if (!manager) return {errc::noproc, "the database manager is not running"};
  auto r = rt_.call(manager, task{[work = std::move(work)] { return message(work()); }}, std::chrono::seconds(30));
  if (!r) return r.err();
  return std::move(r->get<result<T>>());
}

result<pid> databases::start_server(const server_config& config) {
  return ask<pid>([this, config] { return start_server_here(config); });
}
result<std::vector<pid>> databases::start_data(const std::string& db, unsigned count) {
  return ask<std::vector<pid>>([this, db, count] { return start_data_here(db, count); });
}
result<pid> databases::start_client(const std::string& db, const std::string& name) {
  return ask<pid>([this, db, name] { return start_client_here(db, name); });
}

// A role is started when it has joined its group: then every node can see it.
result<pid> databases::joined(result<pid> started, const std::string& group) {
  if (!started) return started;
  for (int i = 0; i < 5000; ++i) {
    for (const pid& p : groups_.local_members(group)) {
      if (p == *started) return started;
    }
    tp::sleep_for(std::chrono::milliseconds(1));
  }
  return {errc::start_failed, to_string(*started) + " did not join " + group + " in time"};
}

result<databases::role_sups> databases::ensure(const std::string& db) {
  if (auto it = dbs_.find(db); it != dbs_.end()) {
    // Still there? (Its supervisor may have given up.)
    auto kids = supervisor::which_children(rt_, root_);
    if (kids) {
      for (auto& k : *kids) {
        if (k.id == "db:" + db && k.child) return it->second;
      }
    }
    dbs_.erase(it);
  }
  // Roles restart up to 10 times in 10 s before their supervisor gives up.
  const supervisor_flags roles{.how = strategy::one_for_one, .intensity = 10, .period = std::chrono::seconds(10)};
  auto spec = child_spec::supervisor(
      "db:" + db, {.how = strategy::one_for_one, .intensity = 3, .period = std::chrono::seconds(10), .name = "db:" + db},
      {child_spec::supervisor("server", {roles.how, roles.intensity, roles.period, "db:" + db + "/server"}, {}),
       child_spec::supervisor("data", {roles.how, roles.intensity, roles.period, "db:" + db + "/data"}, {}),
       child_spec::supervisor("client", {roles.how, roles.intensity, roles.period, "db:" + db + "/client"}, {})});
  auto sup = supervisor::start_child(rt_, root_, std::move(spec));
  if (!sup) return sup.err();
  auto kids = supervisor::which_children(rt_, *sup);
  if (!kids) return kids.err();
  role_sups r;
  for (auto& k : *kids) {
    if (k.id == "server") r.server = k.child;
    if (k.id == "data") r.data = k.child;
    if (k.id == "client") r.client = k.child;
  }
  dbs_[db] = r;
  return r;
}

result<pid> databases::start_server_here(const server_config& config) {
  if (!groups_.local_members(server_group(config.db)).empty()) {
    return {errc::already_exists, "a server of '" + config.db + "' already runs on " + node_name(rt_.node())};
  }
  auto sups = ensure(config.db);
  if (!sups) return sups.err();
  registry::pg* groups = &groups_;
  return joined(supervisor::start_child(rt_, sups->server, child_spec::worker("server", [groups, config] {
                                          server_main(*groups, config);
                                        })),
                server_group(config.db));
}

result<std::vector<pid>> databases::start_data_here(const std::string& db, unsigned count) {
  auto sups = ensure(db);
  if (!sups) return sups.err();
  registry::pg* groups = &groups_;
  std::vector<pid> started;
  for (unsigned i = 0; i < count; ++i) {
    auto p = joined(supervisor::start_child(rt_, sups->data,
                                            child_spec::worker("data" + std::to_string(next_child_++),
                                                               [groups, db] { data_main(*groups, db); })),
                    data_group(db));
    if (!p) return p.err();
    started.push_back(*p);
  }
  return started;
}

result<pid> databases::start_client_here(const std::string& db, const std::string& name) {
  if (rt_.whereis("panal_client:" + db + ":" + name)) {
    return {errc::already_exists, "a client named '" + name + "' of '" + db + "' already runs here"};
  }
  auto sups = ensure(db);
  if (!sups) return sups.err();
  registry::pg* groups = &groups_;
  return joined(supervisor::start_child(rt_, sups->client,
                                        child_spec::worker("client:" + name,
                                                           [groups, db, name] { client_main(*groups, db, name); })),
                client_group(db));
}

}  // namespace panal::db
