#include "runtime/io.h"

#include <boost/asio/error.hpp>

#include "runtime/scheduler.h"
#include "runtime/this_process.h"

namespace panal::io {

using panal::detail::process;
using panal::detail::scheduler;

boost::asio::io_context& context() {
  process* p = scheduler::current_process();
  return p->sched.io();
}

namespace detail {

std::shared_ptr<wait_state> begin_wait() {
  process* p = scheduler::current_process();
  p->check_exit();
  auto st = std::make_shared<wait_state>();
  st->waiter = p->self;
  st->generation = ++p->io_generation;
  return st;
}

pid current_pid() { return scheduler::current_process()->self; }

void deliver(const pid& to, message m) {
  scheduler* s = scheduler::current();
  if (s == nullptr) return;
  s->count_mailbox_completion();
  if (process* p = s->find(to)) p->deliver(std::move(m));
}

void complete(wait_state& st) {
  st.done = true;
  scheduler* s = scheduler::current();
  if (s == nullptr) return;
  process* p = s->find(st.waiter);
  // A stale completion (the waiter was killed, or moved on) wakes nobody.
  if (p != nullptr && p->io_generation == st.generation && p->waiting == process::wait_state::io) p->wake();
}

void end_wait(wait_state& st) {
  process* p = scheduler::current_process();
  while (!st.done) {
    p->check_exit();
    if (p->pending_exit) {  // dying inside a destructor: give up the wait
      st.ec = boost::asio::error::operation_aborted;
      break;
    }
    p->wait(process::wait_state::io, clock::time_point::max());
  }
  ++p->io_generation;
}

}  // namespace detail
}  // namespace panal::io
