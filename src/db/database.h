// The databases of one node: for each, a db:<name> supervisor with a
// server, a data and a client supervisor below it, holding that node's
// role processes as dynamic children (one_for_one: a crashed role process
// is restarted alone).
//
// Thread-safety: all members may be called from any thread or process.
// The work is done, one request at a time, by a manager process registered
// as panal_dbs (a child of the node's root supervisor), so no OS lock is held
// while waiting for supervisors: a caller inside a process never blocks its
// scheduler thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "db/roles.h"
#include "runtime/runtime.h"

namespace panal::db {

class databases {
 public:
  databases(runtime& rt, registry::pg& groups, pid root_supervisor);

  // Refused (already_exists) if a server of the db runs on this node.
  result<pid> start_server(const server_config& config);
  result<std::vector<pid>> start_data(const std::string& db, unsigned count);
  // Each returns once the new process is a member of its group.
  // Refused (already_exists) if a client of that name runs here.
  result<pid> start_client(const std::string& db, const std::string& name);

  // The manager process's body.
  void serve();

 private:
  result<pid> start_server_here(const server_config& config);
  result<std::vector<pid>> start_data_here(const std::string& db, unsigned count);
  result<pid> start_client_here(const std::string& db, const std::string& name);
  result<pid> joined(result<pid> started, const std::string& group);
  template <class T>
  result<T> ask(std::function<result<T>()> work);

  struct role_sups {
    pid server, data, client;
  };
  result<role_sups> ensure(const std::string& db);

  runtime& rt_;
  registry::pg& groups_;
  pid root_;
  std::map<std::string, role_sups> dbs_;  // the manager process only
  std::uint64_t next_child_ = 1;
};

}  // namespace panal::db
