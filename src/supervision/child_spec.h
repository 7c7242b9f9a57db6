// How a supervisor starts, restarts and stops one child (OTP child specs).
//
// Thread-safety: plain values; copied into the supervisor.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace panal {

// permanent: always restarted. transient: restarted only after a failure
// (an exit other than normal or shutdown). temporary: never restarted, and
// forgotten when it ends.
enum class restart_type { permanent, transient, temporary };
enum class child_type { worker, supervisor };
enum class strategy { one_for_one, one_for_all, rest_for_one };

const char* to_string(restart_type r);
const char* to_string(strategy s);

struct supervisor_flags {
  strategy how = strategy::one_for_one;
  // At most `intensity` restarts within `period`; one more and the
  // supervisor stops all its children and exits with reason
  // shutdown: reached_max_restart_intensity, for its own supervisor to judge.
  int intensity = 3;
  clock::duration period = std::chrono::seconds(5);
  std::string name = "supervisor";  // for reports
};

struct child_spec {
  std::string id;
  // Runs inside the supervisor process; must start the child linked to the
  // caller (e.g. this_process::spawn_link) and return its pid.
  std::function<result<pid>()> start;
  restart_type restart = restart_type::permanent;
  // How long the child gets to stop after exit(child, shutdown) before it is
  // killed. zero(): kill at once (brutal_kill); infinity: wait (supervisors).
  clock::duration shutdown = std::chrono::seconds(5);
  child_type type = child_type::worker;

  // A worker process running `body`.
  static child_spec worker(std::string id, std::function<void()> body,
                           restart_type restart = restart_type::permanent, spawn_options options = {});
  // A nested supervisor.
  static child_spec supervisor(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                               restart_type restart = restart_type::permanent);
};

}  // namespace panal
