// What code running inside a process can do: the Erlang built-ins.
//
// Promises:
// - Every call that waits (receive, sleep_for, call, io::await) suspends
//   only the calling fiber; the thread goes on running other processes.
// - Every wait is an exit point: if an exit signal has killed the process
//   while it waited (or before), the call does not return but unwinds the
//   process with `process_exit`. Do not swallow it with catch (...); if you
//   must, rethrow. Code that never waits cannot be killed.
// - receive_if() takes the first message that matches, leaving the others
//   in order (selective receive).
//
// Thread-safety: call these only from inside a process of a runtime, on
// that process's own fiber. Calling them elsewhere aborts with a message.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/runtime.h"
#include "runtime/system_messages.h"

namespace panal {

// Thrown at an exit point to unwind a process that was killed by a signal
// or that called exit(). Caught by the runtime at the bottom of the process.
struct process_exit {
  exit_reason reason;
};

namespace this_process {

bool inside();                 // true on the fiber of a process
pid self();
pid parent();                  // the spawner; null if spawned from outside
runtime& current_runtime();
unsigned thread_index();        // the scheduler thread it lives on, for its whole life

void send(const pid& to, message m);

std::optional<message> receive(clock::duration timeout = infinity);
// The same, until `deadline`. It reads no clock before it waits (a loop
// that has read it just now saves a read): a deadline already past lets the
// other ready processes of its thread run (and the dispatcher's turn come),
// then it returns nothing.
std::optional<message> receive_until(clock::time_point deadline);
std::optional<message> receive_if(function_ref<bool(const message&)> pred,
                                  clock::duration timeout = infinity);
// The first message holding a T, moved out.
template <class T>
std::optional<T> receive_as(clock::duration timeout = infinity) {
  auto m = receive_if([](const message& x) { return x.is<T>(); }, timeout);
  if (!m) return std::nullopt;
  return std::move(m->template get<T>());
}
std::size_t mailbox_size();
// The i-th message waiting in the mailbox (0: the next), left there; null
// past the end. Valid until the next receive, send to self or wait.
const message* peek(std::size_t i);

result<pid> spawn(std::function<void()> body, spawn_options options = {});
// Spawns and links atomically: the link exists before the child can run.
result<pid> spawn_link(std::function<void()> body, spawn_options options = {});
// Spawns and monitors atomically.
result<std::pair<pid, ref>> spawn_monitor(std::function<void()> body, spawn_options options = {});

void link(const pid& other);    // linking to a dead pid: exit signal noproc
void unlink(const pid& other);
ref monitor(const pid& target); // a dead pid: DOWN with noproc at once
// Stops the monitor; with flush, also drops a DOWN already in the mailbox.
void demonitor(const ref& r, bool flush = true);
bool trap_exit(bool on);        // returns the previous setting
bool trapping_exits();

[[noreturn]] void exit(exit_reason reason);
// Sends an exit signal to `to` (Erlang's exit/2).
void exit(const pid& to, exit_reason reason);

void sleep_for(clock::duration d);
void yield();

// Sends `m` to `to` after `delay`, from the runtime. cancel_timer() returns
// true if the timer was still pending (the message will not be sent); it
// must be called on the thread that set the timer, else it only asks for
// cancellation and returns false.
ref send_after(clock::duration delay, const pid& to, message m);
bool cancel_timer(const ref& timer);

result<void> register_name(std::string name);   // registers self
void unregister_name(std::string_view name);
pid whereis(std::string_view name);

// Request-reply: sends call_request{self, tag, request} to `to`, waits for
// the call_reply with that tag. noproc if `to` dies or does not exist,
// timeout if no reply in time. Other messages stay in the mailbox.
result<message> call(const pid& to, message request, clock::duration timeout = infinity);
// Answers a call_request.
void reply(const call_request& request, message body);

}  // namespace this_process
}  // namespace panal
