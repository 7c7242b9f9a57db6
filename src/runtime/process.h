// Internal: the control block of one process.
//
// A process is owned by its scheduler thread; every member is read and
// written only on that thread (that is what makes the runtime lock-free on
// its hot path). Other threads reach a process only through signals routed
// to its scheduler (see scheduler.h).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/exit_reason.h"
#include "runtime/message.h"
#include "runtime/pid.h"
#include "runtime/runtime.h"
#include "util/ring.h"

namespace boost::fibers {
class context;
}

namespace panal::detail {

class scheduler;

// Everything one process can do to another travels as a signal, through the
// same path as messages, so that the order between a pair is kept for all.
struct signal {
  enum class kind : std::uint8_t {
    message,    // payload: the message
    exit,       // payload: exit_reason (exit/2)
    link_exit,  // payload: exit_reason (a linked process ended)
    link,
    unlink,
    monitor,    // tag: the monitor ref; from: the watcher
    demonitor,  // tag
    down,       // tag; from: the dead process; payload: exit_reason
    spawn,      // payload: std::unique_ptr<process>
    run,        // payload: std::function<void()>, run on the target thread
  };
  kind what = kind::message;
  pid from;
  pid to;
  ref tag;
  message payload;
};

class process {
 public:
  enum class wait_state : std::uint8_t { none, receive, sleep, io };

  process(scheduler& sched, pid self, pid parent, std::function<void()> body, std::size_t stack_size);

  // Delivery and signals; called on the owning thread, never by the process
  // on itself except through this_process.
  void deliver(message m);
  void on_exit_signal(const pid& from, exit_reason reason, bool from_link);
  void kill_with(exit_reason reason);
  void wake();

  // Called by the process on its own fiber. False when it woke because
  // `deadline` passed (Boost's wait reads the clock to say so: the caller
  // need not).
  bool wait(wait_state why, clock::time_point deadline);
  void check_exit();  // throws process_exit if the process has been killed

  scheduler& sched;
  const pid self;
  const pid parent;
  std::function<void()> body;
  std::size_t stack_size;
  boost::fibers::context* ctx = nullptr;

  ring<message> mailbox;
  std::unordered_set<pid> links;
  std::unordered_map<ref, pid> monitored_by;  // monitor ref -> watcher
  std::unordered_map<ref, pid> monitors;      // monitors this process holds: ref -> target
  std::vector<std::string> names;
  std::optional<exit_reason> pending_exit;
  std::shared_ptr<inbox::state> external;     // set: an inbox owned by an OS thread
  std::uint64_t io_generation = 0;            // tells a stale io completion from a live one
  std::uint64_t received = 0;                 // messages delivered, ever (for `panal top`)
  wait_state waiting = wait_state::none;
  bool trap_exit = false;
  bool done = false;
};

}  // namespace panal::detail
