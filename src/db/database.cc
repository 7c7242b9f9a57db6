#include "db/database.h"

#include <algorithm>
#include <thread>

#include "db/client_process.h"
#include "db/cluster_map.h"
#include "db/context.h"
#include "db/data.h"
#include "db/messages.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "util/log.h"

namespace panal::db {

namespace tp = this_process;

namespace {

constexpr const char* kManager = "panal_dbs";

struct task {
  std::function<message()> run;
};

}  // namespace

databases::databases(runtime& rt, context& ctx, pid root) : rt_(rt), ctx_(ctx), root_(root) {}

void databases::serve() {
  if (auto r = tp::register_name(kManager); !r) throw std::runtime_error(r.err().message);
  // A registered name anyone (a peer node too) can send to: what is not a
  // call of ours is answered or dropped, never left in the mailbox.
  for (;;) {
    auto m = tp::receive();
    auto* req = m->get_if<call_request>();
    if (req == nullptr) continue;
    if (auto* t = req->body.get_if<task>()) tp::reply(*req, t->run());
    else tp::reply(*req, result<void>(errc::bad_argument, "panal_dbs takes only this node's own requests"));
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
    for (const pid& p : ctx_.groups.local_members(group)) {
      if (p == *started) return started;
    }
    tp::sleep_for(std::chrono::milliseconds(1));
  }
  return {errc::start_failed, to_string(*started) + " did not join " + group + " in time"};
}

struct databases::roster {
  mutable std::mutex mutex;  // read by the role supervisor's own supervisor when it (re)starts it
  std::map<std::string, child_spec> children;

  std::vector<child_spec> specs() const {
    std::lock_guard lock(mutex);
    std::vector<child_spec> out;
    for (auto& [id, spec] : children) out.push_back(spec);
    return out;
  }
  void put(const child_spec& spec) {
    std::lock_guard lock(mutex);
    children.insert_or_assign(spec.id, spec);
  }
  void erase(const std::string& id) {
    std::lock_guard lock(mutex);
    children.erase(id);
  }
};

result<databases::role_sups> databases::ensure(const std::string& db) {
  auto& rs = rosters_[db];
  if (!rs.server) {
    rs = {std::make_shared<roster>(), std::make_shared<roster>(), std::make_shared<roster>()};
  }
  pid sup;
  if (auto kids = supervisor::which_children(rt_, root_); kids) {
    for (auto& k : *kids) {
      if (k.id == "db:" + db && k.child) sup = k.child;
    }
  }
  if (!sup) {
    // Roles restart up to 10 times in 10 s before their supervisor gives up;
    // then db:<name> restarts it (with its roster), at most 3 times in 10 s.
    auto role = [&](const std::string& id, const std::shared_ptr<roster>& r) {
      const supervisor_flags flags{strategy::one_for_one, 10, std::chrono::seconds(10), "db:" + db + "/" + id};
      child_spec spec = child_spec::supervisor(id, flags, {});
      spec.start = [flags, r] { return supervisor::start_link(flags, r->specs()); };
      return spec;
    };
    auto spec = child_spec::supervisor(
        "db:" + db, {.how = strategy::one_for_one, .intensity = 3, .period = std::chrono::seconds(10), .name = "db:" + db},
        {role("server", rs.server), role("data", rs.data), role("client", rs.client)});
    auto started = supervisor::start_child(rt_, root_, std::move(spec));
    if (!started) return started.err();
    sup = *started;
  }
  auto kids = supervisor::which_children(rt_, sup);
  if (!kids) return kids.err();
  role_sups r;
  for (auto& k : *kids) {
    if (k.id == "server") r.server = k.child;
    if (k.id == "data") r.data = k.child;
    if (k.id == "client") r.client = k.child;
  }
  if (!r.server || !r.data || !r.client) {
    return {errc::not_running, "the supervisors of '" + db + "' are restarting; retry"};
  }
  return r;
}

result<pid> databases::start_role(const pid& sup, roster& r, const child_spec& spec) {
  auto p = supervisor::start_child(rt_, sup, spec);
  if (p) r.put(spec);
  return p;
}

result<pid> databases::start_server_here(const server_config& config) {
  if (!ctx_.groups.local_members(server_group(config.db)).empty()) {
    return {errc::already_exists, "a server of '" + config.db + "' already runs on " + node_name(rt_.node())};
  }
  auto sups = ensure(config.db);
  if (!sups) return sups.err();
  context* ctx = &ctx_;
  return joined(start_role(sups->server, *rosters_[config.db].server,
                           child_spec::worker("server", [ctx, config] { server_main(*ctx, config); })),
                server_group(config.db));
}

result<std::vector<pid>> databases::start_data_here(const std::string& db, unsigned count) {
  auto sups = ensure(db);
  if (!sups) return sups.err();
  context* ctx = &ctx_;
  std::vector<pid> started;
  for (unsigned i = 0; i < count; ++i) {
    // The index is the member's identity: a restart keeps it.
    const std::uint32_t index = ++next_index_[db];
    auto p = joined(start_role(sups->data, *rosters_[db].data,
                               child_spec::worker("data" + std::to_string(index),
                                                  [ctx, db, index] { data_main(*ctx, db, index); })),
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
  context* ctx = &ctx_;
  return joined(start_role(sups->client, *rosters_[db].client,
                           child_spec::worker("client:" + name, [ctx, db, name] { client_main(*ctx, db, name); })),
                client_group(db));
}

result<void> databases::remove_data_here(const std::string& db, std::uint32_t index) {
  auto it = rosters_.find(db);
  if (it == rosters_.end()) return {errc::not_found, "no database '" + db + "' on this node"};
  const std::string id = "data" + std::to_string(index);
  it->second.data->erase(id);  // gone for good: a restart of the supervisor must not bring it back
  auto sups = ensure(db);
  if (!sups) return sups.err();
  if (auto t = supervisor::terminate_child(rt_, sups->data, id); !t) return t;
  return supervisor::delete_child(rt_, sups->data, id);
}

result<pid> databases::stop_data(const std::string& db, unsigned count, clock::duration timeout) {
  context* ctx = &ctx_;
  return rt_.spawn([this, ctx, db, count, timeout] {
    // Wait for the caller to watch us: then even a refusal at once reaches it with its reason.
    if (!tp::receive_as<pid>(std::chrono::seconds(30))) tp::exit(exit_reason::error("nobody asked to drain"));
    const auto deadline = clock::now() + timeout;
    // This node's data processes, highest index first.
    std::vector<std::pair<std::uint32_t, pid>> mine;
    for (const pid& p : ctx->groups.local_members(data_group(db))) {
      auto r = tp::call(p, stats_request{}, std::chrono::seconds(5));
      if (r && r->is<stats_reply>()) mine.emplace_back(r->get<stats_reply>().index, p);
    }
    std::sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (mine.size() < count) {
      tp::exit(exit_reason::error("only " + std::to_string(mine.size()) + " data processes of '" + db + "' run here"));
    }
    mine.resize(count);
    auto m = ctx->routes.get(db);
    std::size_t eligible = 0;
    if (m) {
      for (const auto& x : m->slots.members()) eligible += x.eligible ? 1 : 0;
    }
    if (!m || eligible <= count) {
      tp::exit(exit_reason::error("draining would leave '" + db + "' without a data process to take its slots"));
    }
    for (auto& [index, p] : mine) {
      auto r = tp::call(p, drain_request{0, false}, std::chrono::seconds(5));
      if (!r) tp::exit(exit_reason::error("data process " + to_string(p) + ": " + r.err().message));
      log::info("db", "draining data process ", index, " of '", db, "' (", p, ")");
    }
    for (auto& [index, p] : mine) {
      for (;;) {
        auto r = tp::call(p, drain_request{0, true}, std::chrono::seconds(5));
        if (r && r->is<drain_reply>() && r->get<drain_reply>().drained) break;
        if (clock::now() >= deadline) {
          tp::exit(exit_reason::error("data process " + to_string(p) + " did not drain in time"));
        }
        tp::sleep_for(std::chrono::milliseconds(50));
      }
      const std::uint32_t i = index;
      auto done = ask<bool>([this, db, i]() -> result<bool> {
        if (auto r = remove_data_here(db, i); !r) return r.err();
        return true;
      });
      if (!done) tp::exit(exit_reason::error("stopping data process " + std::to_string(i) + ": " + done.err().message));
      log::info("db", "data process ", index, " of '", db, "' drained and stopped");
    }
  });
}

void routes_main(context& ctx) {
  if (auto r = tp::register_name(routes_process); !r) throw std::runtime_error(r.err().message);
  for (;;) {
    auto m = tp::receive();
    auto* u = m->get_if<map_update>();
    if (u == nullptr) continue;
    auto map = decode(*u, ctx.routes.get(u->db).get());
    if (!map) continue;
    (void)ctx.routes.update(map);
    // A data process here may have put it in the table first: tell them all
    // unless the table holds a newer one.
    if (auto held = ctx.routes.get(map->db); held && held->newer_than(*map)) continue;
    for (const pid& p : ctx.groups.local_members(data_group(map->db))) tp::send(p, map_changed{map->db});
  }
}

}  // namespace panal::db
