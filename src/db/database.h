// The databases of one node: for each, a db:<name> supervisor with a
// server, a data and a client supervisor below it, holding that node's
// role processes as dynamic children (one_for_one: a crashed role process
// is restarted alone, as the same member).
//
// Data processes are numbered per node and database (data1, data2, ...);
// the number is part of the member's identity, so the restart of data2 is
// data2 again and takes back exactly its slots. Each role supervisor starts
// its children from the database's roster (what was started here and not
// stopped), so when one gives up and its own supervisor restarts it, every
// role process comes back as the same member: none is lost on escalation.
//
// Thread-safety: all members may be called from any thread or process.
// The work is done, one request at a time, by a manager process registered
// as panal_dbs (a child of the node's root supervisor), so no OS lock is held
// while waiting for supervisors: a caller inside a process never blocks its
// scheduler thread. Draining (stop_data) runs in a process of its own.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "db/server.h"
#include "runtime/runtime.h"
#include "supervision/child_spec.h"

namespace panal::db {

struct context;

class databases {
 public:
  databases(runtime& rt, context& ctx, pid root_supervisor);

  // Refused (already_exists) if a server of the db runs on this node.
  result<pid> start_server(const server_config& config);
  result<std::vector<pid>> start_data(const std::string& db, unsigned count);
  // Each returns once the new process is a member of its group.
  // Refused (already_exists) if a client of that name runs here.
  result<pid> start_client(const std::string& db, const std::string& name);

  // Starts a process that drains `count` of this node's data processes of
  // `db` (the highest-numbered first) and then stops them; returns its pid.
  // It starts once it is sent any pid (the caller monitors it first), and
  // ends normally once they are stopped, or with an error saying why not.
  result<pid> stop_data(const std::string& db, unsigned count, clock::duration timeout);

  // The manager process's body.
  void serve();

 private:
  result<pid> start_server_here(const server_config& config);
  result<std::vector<pid>> start_data_here(const std::string& db, unsigned count);
  result<pid> start_client_here(const std::string& db, const std::string& name);
  result<void> remove_data_here(const std::string& db, std::uint32_t index);
  result<pid> joined(result<pid> started, const std::string& group);
  template <class T>
  result<T> ask(std::function<result<T>()> work);

  struct role_sups {
    pid server, data, client;
  };
  struct roster;  // the role processes a role supervisor (re)starts with
  struct rosters {
    std::shared_ptr<roster> server, data, client;
  };
  // The database's supervisors (started if need be), as they are now.
  result<role_sups> ensure(const std::string& db);
  // Starts `spec` under `sup` and keeps it in `r` (not if it fails to start).
  result<pid> start_role(const pid& sup, roster& r, const child_spec& spec);

  runtime& rt_;
  context& ctx_;
  pid root_;
  std::map<std::string, rosters> rosters_;                // the manager process only
  std::map<std::string, std::uint32_t> next_index_;       // per database
};

// The body of the node's route process (see context.h): keeps the node's
// route table and tells the node's data processes of new maps.
void routes_main(context& ctx);

}  // namespace panal::db
