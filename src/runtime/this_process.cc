#include "runtime/this_process.h"

#include <boost/fiber/operations.hpp>

#include <cstdio>
#include <cstdlib>

#include "runtime/scheduler.h"
#include "runtime/spawn.h"

namespace panal::this_process {

using detail::process;
using detail::route;
using detail::scheduler;
using detail::signal;

namespace {

process& me() {
  process* p = scheduler::current_process();
  if (p == nullptr) {
    std::fputs("panal: this_process:: called outside a process\n", stderr);
    std::abort();
  }
  return *p;
}

clock::time_point deadline_after(clock::duration timeout) {
  if (timeout == infinity) return clock::time_point::max();
  return clock::now() + timeout;
}

}  // namespace

bool inside() { return scheduler::current_process() != nullptr; }
pid self() { return me().self; }
pid parent() { return me().parent; }
runtime& current_runtime() { return me().sched.rt(); }
unsigned thread_index() { return me().sched.index(); }

void send(const pid& to, message m) {
  process& p = me();
  route(p.sched.rt(), signal{signal::kind::message, p.self, to, {}, std::move(m)});
}

namespace {

// The oldest message, if one waits (no clock, no wait).
std::optional<message> take_oldest(process& p) {
  p.check_exit();
  if (p.mailbox.empty()) return std::nullopt;
  message m = std::move(p.mailbox.front());
  p.mailbox.pop_front();
  return m;
}

// The first message that matches, waiting until `deadline` (none: do not
// wait). Only the wait reads the clock, to say whether the deadline passed:
// one request at a time, a data process's receive read it three times.
std::optional<message> receive_matching(function_ref<bool(const message&)> pred,
                                        std::optional<clock::time_point> deadline) {
  process& p = me();
  std::size_t scanned = 0;  // messages already refused by pred stay refused
  for (bool expired = !deadline;;) {
    p.check_exit();
    for (; scanned < p.mailbox.size(); ++scanned) {
      if (pred(p.mailbox[scanned])) {
        message m = std::move(p.mailbox[scanned]);
        if (scanned == 0) p.mailbox.pop_front();
        else p.mailbox.erase_at(scanned);
        return m;
      }
    }
    if (p.pending_exit || expired) return std::nullopt;  // (dying inside a destructor: do not wait)
    expired = !p.wait(process::wait_state::receive, *deadline);
  }
}

constexpr auto any_message = [](const message&) { return true; };

}  // namespace

std::optional<message> receive(clock::duration timeout) {
  if (auto m = take_oldest(me())) return m;
  if (timeout <= clock::duration::zero()) return std::nullopt;  // without reading the clock
  return receive_matching(any_message, deadline_after(timeout));
}

std::optional<message> receive_if(function_ref<bool(const message&)> pred, clock::duration timeout) {
  if (timeout <= clock::duration::zero()) return receive_matching(pred, std::nullopt);
  return receive_matching(pred, deadline_after(timeout));
}

std::optional<message> receive_until(clock::time_point deadline) {
  if (auto m = take_oldest(me())) return m;
  return receive_matching(any_message, deadline);
}

std::size_t mailbox_size() { return me().mailbox.size(); }
const message* peek(std::size_t i) {
  process& p = me();
  return i < p.mailbox.size() ? &p.mailbox[i] : nullptr;
}

result<pid> spawn(std::function<void()> body, spawn_options options) {
  process& p = me();
  return detail::spawn(p.sched.rt(), std::move(body), options, detail::spawn_links{p.self, {}, {}, {}});
}

result<pid> spawn_link(std::function<void()> body, spawn_options options) {
  process& p = me();
  auto child = detail::spawn(p.sched.rt(), std::move(body), options, detail::spawn_links{p.self, p.self, {}, {}});
  if (child) p.links.insert(*child);
  return child;
}

result<std::pair<pid, ref>> spawn_monitor(std::function<void()> body, spawn_options options) {
  process& p = me();
  ref tag = p.sched.rt().make_ref();
  auto child = detail::spawn(p.sched.rt(), std::move(body), options, detail::spawn_links{p.self, {}, p.self, tag});
  if (!child) return child.err();
  p.monitors.emplace(tag, *child);
  return std::pair{*child, tag};
}

void link(const pid& other) {
  process& p = me();
  if (other == p.self || !p.links.insert(other).second) return;
  route(p.sched.rt(), signal{signal::kind::link, p.self, other, {}, {}});
  p.check_exit();  // linking to a dead pid may have killed us already (same thread)
}

void unlink(const pid& other) {
  process& p = me();
  if (p.links.erase(other) == 0) return;
  route(p.sched.rt(), signal{signal::kind::unlink, p.self, other, {}, {}});
}

ref monitor(const pid& target) {
  process& p = me();
  ref tag = p.sched.rt().make_ref();
  p.monitors.emplace(tag, target);
  route(p.sched.rt(), signal{signal::kind::monitor, p.self, target, tag, {}});
  return tag;
}

void demonitor(const ref& r, bool flush) {
  process& p = me();
  auto it = p.monitors.find(r);
  if (it != p.monitors.end()) {
    route(p.sched.rt(), signal{signal::kind::demonitor, p.self, it->second, r, {}});
    p.monitors.erase(it);
  }
  if (flush) {
    p.mailbox.erase_if([&](const message& m) {
      auto* d = m.get_if<down_msg>();
      return d != nullptr && d->monitor == r;
    });
  }
}

bool trap_exit(bool on) {
  process& p = me();
  bool was = p.trap_exit;
  p.trap_exit = on;
  return was;
}

bool trapping_exits() { return me().trap_exit; }

void exit(exit_reason reason) {
  me();
  if (reason.what == exit_reason::kind::kill) reason = exit_reason::killed();
  throw process_exit{std::move(reason)};
}

void exit(const pid& to, exit_reason reason) {
  process& p = me();
  route(p.sched.rt(), signal{signal::kind::exit, p.self, to, {}, std::move(reason)});
  p.check_exit();  // exit(self(), ...) takes effect now
}

void sleep_for(clock::duration d) {
  process& p = me();
  const auto deadline = deadline_after(d);
  for (;;) {
    p.check_exit();
    if (p.pending_exit || clock::now() >= deadline) return;
    p.wait(process::wait_state::sleep, deadline);
  }
}

void yield() {
  process& p = me();
  boost::this_fiber::yield();
  p.check_exit();
}

ref send_after(clock::duration delay, const pid& to, message m) {
  return me().sched.send_after(delay, to, std::move(m));
}

bool cancel_timer(const ref& timer) {
  process& p = me();
  runtime& rt = p.sched.rt();
  scheduler& owner = rt.scheduler_for(pid{timer.node, timer.incarnation, timer.id});
  if (&owner == &p.sched) return p.sched.cancel_timer(timer.id);
  const std::uint64_t id = timer.id;
  route(rt, signal{signal::kind::run, {}, pid{timer.node, timer.incarnation, timer.id}, {},
                   std::function<void()>([&owner, id] { owner.cancel_timer(id); })});
  return false;
}

result<void> register_name(std::string name) {
  process& p = me();
  auto r = p.sched.rt().register_name(name, p.self);
  if (r) p.names.push_back(std::move(name));
  return r;
}

void unregister_name(std::string_view name) {
  process& p = me();
  p.sched.rt().unregister_name(name, p.self);
  std::erase(p.names, std::string(name));
}

pid whereis(std::string_view name) { return me().sched.rt().whereis(name); }

result<message> call(const pid& to, message request, clock::duration timeout) {
  process& p = me();
  ref mon = monitor(to);
  ref tag = p.sched.rt().make_ref();
  send(to, call_request{p.self, tag, std::move(request)});
  auto m = receive_if(
      [&](const message& x) {
        if (auto* r = x.get_if<call_reply>()) return r->tag == tag;
        if (auto* d = x.get_if<down_msg>()) return d->monitor == mon;
        return false;
      },
      timeout);
  if (!m) {
    demonitor(mon, true);
    return {errc::timeout, "no reply from " + to_string(to) + " in time"};
  }
  if (auto* r = m->get_if<call_reply>()) {
    demonitor(mon, true);
    return std::move(r->body);
  }
  return {errc::noproc, to_string(to) + " is not alive (" + to_string(m->get<down_msg>().reason) + ")"};
}

void reply(const call_request& request, message body) {
  send(request.from, call_reply{request.tag, std::move(body)});
}

}  // namespace panal::this_process
