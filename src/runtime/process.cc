#include "runtime/process.h"

#include <boost/fiber/context.hpp>

#include <exception>

#include "runtime/inbox_state.h"
#include "runtime/scheduler.h"
#include "runtime/this_process.h"

namespace panal::detail {

using boost::fibers::context;

process::process(scheduler& s, pid self_pid, pid parent_pid, std::function<void()> fn, std::size_t stack)
    : sched(s), self(self_pid), parent(parent_pid), body(std::move(fn)), stack_size(stack) {}

void process::deliver(message m) {
  ++received;
  if (external) {
    {
      std::lock_guard lock(external->mutex);
      external->queue.push_back(std::move(m));
    }
    external->ready.notify_one();
    return;
  }
  mailbox.push_back(std::move(m));
  if (waiting == wait_state::receive) wake();
}

void process::on_exit_signal(const pid& from, exit_reason reason, bool from_link) {
  if (done) return;
  // An exit signal from a link acts only while the link exists: a late one
  // (after unlink, or a node-down notice for a link already gone) is dropped.
  if (from_link && links.erase(from) == 0) return;
  if (reason.what == exit_reason::kind::kill && !from_link) {
    kill_with(exit_reason::killed());  // untrappable
  } else if (trap_exit || external) {
    deliver(exit_msg{from, std::move(reason)});
  } else if (reason.is_normal()) {
    if (from == self) kill_with(std::move(reason));  // exit(self(), normal)
  } else {
    kill_with(std::move(reason));
  }
}

void process::kill_with(exit_reason reason) {
  if (done) return;
  if (!pending_exit) pending_exit = std::move(reason);
  wake();
}

void process::wake() {
  if (waiting == wait_state::none || ctx == nullptr) return;
  waiting = wait_state::none;
  // A timed wait whose deadline passed is already in the ready queue.
  if (!ctx->ready_is_linked()) context::active()->schedule(ctx);
}

bool process::wait(wait_state why, clock::time_point deadline) {
  waiting = why;
  bool before_deadline = true;
  if (deadline == clock::time_point::max()) {
    ctx->suspend();
  } else {
    before_deadline = ctx->wait_until(deadline);
  }
  waiting = wait_state::none;
  return before_deadline;
}

void process::check_exit() {
  // While unwinding (a destructor that waits), throwing would terminate:
  // the wait just returns and the process goes on dying.
  if (pending_exit && std::uncaught_exceptions() == 0) throw process_exit{*pending_exit};
}

}  // namespace panal::detail
