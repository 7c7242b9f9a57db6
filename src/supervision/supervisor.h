// Supervisors: processes that start children from child specs and restart
// them according to a strategy, within a restart intensity (OTP semantics).
//
// Promises:
// - Children start in the order given and stop in the reverse order.
// - one_for_one restarts the child that ended; one_for_all stops the others
//   (reverse order) and restarts all; rest_for_one stops and restarts the
//   ones started after it. Restarted children get new pids.
// - Stopping a child: exit(child, shutdown), then kill if it is still alive
//   after its spec's shutdown time.
// - Past the restart intensity the supervisor stops its children and exits
//   with reason shutdown: "reached_max_restart_intensity"; its parent sees it.
// - Each exit, restart and give-up is logged as a report a person can read.
//
// Thread-safety: the functions below may be called from any thread or
// process; they talk to the supervisor with messages (runtime::call).
#pragma once

#include <string>
#include <vector>

#include "supervision/child_spec.h"

namespace panal::supervisor {

// Starts a supervisor process (not linked to the caller) and waits until all
// its children have started; fails with start_failed naming the child that
// did not start.
result<pid> start(runtime& rt, supervisor_flags flags, std::vector<child_spec> children,
                  spawn_options options = {});
// From inside a process: as start(), linked to the caller.
result<pid> start_link(supervisor_flags flags, std::vector<child_spec> children, spawn_options options = {});

// Runs the supervisor loop in the calling process; for custom start functions.
// `ack` (may be null) gets an init_ack message when the children are up.
void run(supervisor_flags flags, std::vector<child_spec> children, pid ack = {});

struct child_info {
  std::string id;
  pid child;           // null when not running
  child_type type = child_type::worker;
  restart_type restart = restart_type::permanent;
  unsigned restarts = 0;  // times this child was restarted
};

result<pid> start_child(runtime& rt, const pid& sup, child_spec spec);
result<void> terminate_child(runtime& rt, const pid& sup, const std::string& id);
result<pid> restart_child(runtime& rt, const pid& sup, const std::string& id);
result<void> delete_child(runtime& rt, const pid& sup, const std::string& id);
// `timeout`: a supervisor busy stopping a child answers only after it.
result<std::vector<child_info>> which_children(runtime& rt, const pid& sup, clock::duration timeout = infinity);
// Every child below `root`, depth first (depth 1: root's own children). A
// supervisor that does not answer within `timeout` shows as one row at its
// children's depth with `error` set and no child.
struct tree_row {
  unsigned depth = 1;
  child_info child;
  std::string error;
};
std::vector<tree_row> walk_tree(runtime& rt, const pid& root, clock::duration timeout);
// Stops the children in reverse order, then the supervisor (reason shutdown).
result<void> stop(runtime& rt, const pid& sup, clock::duration timeout = infinity);

}  // namespace panal::supervisor
