// Internal: the one place where processes are created (runtime::spawn,
// this_process::spawn, spawn_link, spawn_monitor).
#pragma once

#include <functional>

#include "runtime/pid.h"
#include "runtime/runtime.h"

namespace panal::detail {

// Set up before the child can run, so that a link or monitor never misses
// an early exit.
struct spawn_links {
  pid parent;
  pid link_to;        // non-null: the child starts linked to it
  pid monitored_by;   // non-null: the child starts monitored by it, with tag
  ref monitor_tag;
};

result<pid> spawn(runtime& rt, std::function<void()> body, const spawn_options& options,
                  const spawn_links& links);

}  // namespace panal::detail
