#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include "runtime/scheduler.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/properties.hpp>
#include <boost/fiber/scheduler.hpp>

#include <sched.h>

#include <algorithm>
#include <exception>

#include "runtime/inbox_state.h"
#include "runtime/io.h"
#include "runtime/stack_pool.h"
#include "runtime/this_process.h"
#include "util/log.h"

namespace panal::detail {
namespace {

using boost::fibers::context;

thread_local scheduler* tls_scheduler = nullptr;
thread_local process* tls_process = nullptr;

// Ties a fiber to its process, so that the algorithm can tell which process
// it is about to resume (this_process::self() is then a thread-local read).
struct process_tag : boost::fibers::fiber_properties {
  process_tag(context* ctx, process* p) : fiber_properties(ctx), proc(p) {}
  process* proc;
};

// Boost.Fiber scheduling algorithm: FIFO ready queue, and the thread's
// io_context runs whenever no fiber is ready. Every dispatcher turn (once
// per round of ready fibers) drains the cross-thread queue; every
// kPollEvery turns it also polls the io_context so that sockets and timers
// are served even when fibers are always ready.
class fiber_algorithm final : public boost::fibers::algo::algorithm {
 public:
  explicit fiber_algorithm(scheduler& s) : sched_(s) {}

  void awakened(context* ctx) noexcept override { ctx->ready_link(ready_); }

  context* pick_next() noexcept override {
    if (context::active()->is_context(boost::fibers::type::dispatcher_context)) {
      sched_.on_dispatcher_turn();
      picks_since_dispatcher_ = 0;
    }
    if (ready_.empty()) {
      tls_process = nullptr;
      return nullptr;
    }
    // Boost's dispatcher queues itself behind the processes ready when it
    // resumes one. Its turn (timers, terminated fibers, our polls) waits
    // while processes are ready, up to kDispatcherDelay picks: one request
    // at a time a session and a data process hand the request over and
    // back, and it takes two turns per request instead of four.
    auto it = ready_.begin();
    if (picks_since_dispatcher_ < kDispatcherDelay && it->is_context(boost::fibers::type::dispatcher_context) &&
        std::next(it) != ready_.end()) {
      ++it;
    }
    context* ctx = &*it;
    ready_.erase(it);
    ++picks_since_dispatcher_;
    auto* tag = static_cast<process_tag*>(ctx->get_properties());
    tls_process = tag ? tag->proc : nullptr;
    return ctx;
  }

  bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

  void suspend_until(std::chrono::steady_clock::time_point const& deadline) noexcept override {
    sched_.drain_incoming();  // may make fibers ready
    if (ready_.empty()) sched_.wait_for_events(deadline);
  }

  void notify() noexcept override { sched_.interrupt(); }

 private:
  static constexpr unsigned kDispatcherDelay = 8;
  scheduler& sched_;
  boost::fibers::scheduler::ready_queue_type ready_;
  unsigned picks_since_dispatcher_ = 0;
};

constexpr unsigned kPollEvery = 32;
// A sched_yield that took longer ran another thread on this CPU.
constexpr auto kYieldRan = std::chrono::microseconds(5);

inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

struct scheduler::timer_set {
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> pending;
};

scheduler::scheduler(runtime& rt, unsigned index)
    : rt_(rt),
      index_(index),
      io_(std::make_unique<boost::asio::io_context>(1)),
      stacks_(std::make_unique<stack_pool>(rt.options().stack_size, rt.options().guard_pages)),
      timers_(std::make_unique<timer_set>()) {}

scheduler::~scheduler() { join(); }

scheduler* scheduler::current() { return tls_scheduler; }
process* scheduler::current_process() { return tls_process; }

std::uint64_t scheduler::next_id() {
  return (next_serial_.fetch_add(1, std::memory_order_relaxed) << index_bits) | index_;
}

void scheduler::start() {
  thread_ = std::thread([this] { run_thread(); });
}

void scheduler::join() {
  if (thread_.joinable()) thread_.join();
}

void scheduler::run_thread() {
  tls_scheduler = this;
  boost::fibers::use_scheduling_algorithm<fiber_algorithm>(*this);
  auto work = boost::asio::make_work_guard(*io_);
  main_ctx_ = context::active();
  // The thread's main fiber sleeps until stop was asked and every process
  // has finished; the dispatcher runs processes and the io_context meanwhile.
  while (!(stopping_ && table_.empty())) {
    main_waiting_ = true;
    main_ctx_->suspend();
  }
  for (auto& [id, t] : timers_->pending) t->cancel();
  timers_->pending.clear();
  work.reset();
  tls_scheduler = nullptr;
  // Boost.Fiber's thread-exit cleanup releases the finished fibers (and
  // their stacks, back to stacks_) after this returns.
}

// ---- cross-thread queue ------------------------------------------------------

void scheduler::post(signal s) {
  bool was_empty;
  {
    std::lock_guard lock(incoming_mutex_);
    was_empty = incoming_.empty();
    incoming_.push_back(std::move(s));
    if (was_empty) has_incoming_.store(true, std::memory_order_release);
  }
  // One wake-up per batch: later senders find the queue non-empty.
  if (was_empty) boost::asio::post(*io_, [this] { drain_incoming(); });
}

void scheduler::drain_incoming() {
  if (!has_incoming_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(incoming_mutex_);
    draining_.swap(incoming_);
    has_incoming_.store(false, std::memory_order_relaxed);
  }
  for (auto& s : draining_) handle(std::move(s));
  draining_.clear();
}

void scheduler::on_dispatcher_turn() {
  drain_incoming();
  if (++turns_ % kPollEvery == 0) {
    io_->poll();
  }
}

void scheduler::wait_for_events(clock::time_point deadline) {
  // Counted for the busy share (docs/operations.md): one writer, so a
  // relaxed load and store.
  struct idle_clock {
    std::atomic<std::uint64_t>& total;
    clock::time_point from = clock::now();
    ~idle_clock() {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - from).count();
      total.store(total.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
    }
  } counted{idle_ns_};
  // Spin a little before sleeping, as Erlang's schedulers do: waking a
  // sleeping thread costs tens of microseconds (more on a VM), and a reply
  // from another thread often comes sooner than that.
  //
  // The spin pays only when the work comes from another CPU while this one
  // spins. When what the thread waits for needs this very CPU (several
  // nodes sharing one), spinning only delays it: so the thread yields the
  // CPU at every poll of the spin and goes to sleep once a yield ran
  // another thread. Three nodes on one CPU, R = 3: 2.7k writes/s with a
  // fixed spin, 7.2-7.8k without one, 8.2-8.4k with this.
  //
  // And it spins only while half its spins paid (spin_policy.h). Under
  // load one poll gathers what came meanwhile (50 connections: 93k
  // requests/s with the spin, 65k without, at 10.6 vs 15.3 us CPU each),
  // and a distributed operation waits on each message between nodes
  // (remote round trips: 30k/s with the spin, 22.6k without). A client's
  // lone request is one request at a time: spinning out its client's round
  // trip cost more CPU than the sleep it saves (32 vs 23 us per request,
  // where Redis takes 21), so the thread sleeps then (docs/benchmarks.md).
  const auto spin_max = rt_.options().spin_before_sleep;
  if (spin_max > clock::duration::zero() && spin_.spin_now()) {
    const auto spin_end = std::min(deadline, clock::now() + spin_max);
    for (unsigned i = 1;; ++i) {
      if (has_incoming_.load(std::memory_order_acquire)) {
        spin_.spun(0, 0, true);
        return;
      }
      if (i % 64 == 0) {
        const std::uint64_t to_mailboxes = mailbox_completions_;
        if (const std::size_t handled = io_->poll(); handled > 0) {
          spin_.spun(handled, mailbox_completions_ - to_mailboxes, false);
          return;
        }
        const auto now = clock::now();
        if (now >= spin_end) break;
        sched_yield();  // whoever else waits for this CPU runs now
        if (clock::now() - now > kYieldRan) break;  // someone did: this CPU is wanted, sleep
      }
      spin_pause();
    }
    spin_.spun(0, 0, false);
  }
  if (deadline == clock::time_point::max()) {
    io_->run_one();
  } else {
    io_->run_one_until(deadline);
  }
  // The sockets were just polled: the next periodic poll is due kPollEvery
  // turns from now (one request at a time, it never is: a request cost an
  // epoll_wait of nothing every few requests).
  turns_ = 0;
}

void scheduler::run_soon(std::function<void()> task) { boost::asio::post(*io_, std::move(task)); }

void scheduler::list_processes(std::vector<process_info>& out) const {
  for (const auto& [id, p] : table_) {
    if (p->done) continue;
    out.push_back({p->self, p->names.empty() ? std::string() : p->names.front(),
                   p->external ? 0 : p->mailbox.size(), p->received, p->external != nullptr});
  }
}

void scheduler::interrupt() {
  boost::asio::post(*io_, [] {});
}

// ---- signals --------------------------------------------------------------------

process* scheduler::find(const pid& p) {
  auto it = table_.find(p.id);
  if (it == table_.end() || it->second->self != p) return nullptr;
  return it->second;
}

void route(runtime& rt, signal&& s) {
  if (!rt.is_local(s.to)) {
    if (remote_router* r = rt.remote()) {
      r->forward(std::move(s));
    } else if (s.what == signal::kind::link) {
      route(rt, signal{signal::kind::link_exit, s.to, s.from, {}, exit_reason::noconnection()});
    } else if (s.what == signal::kind::monitor) {
      route(rt, signal{signal::kind::down, s.to, s.from, s.tag, exit_reason::noconnection()});
    }
    return;
  }
  scheduler& target = rt.scheduler_for(s.to);
  if (scheduler::current() == &target) {
    target.handle(std::move(s));
  } else {
    target.post(std::move(s));
  }
}

void scheduler::handle(signal&& s) {
  using k = signal::kind;
  if (s.what == k::spawn) {
    start_process(std::move(*s.payload.get_if<std::unique_ptr<process>>()));
    return;
  }
  if (s.what == k::run) {
    (*s.payload.get_if<std::function<void()>>())();
    return;
  }
  process* p = find(s.to);
  if (p == nullptr || p->done) {
    // The target is gone: a link or monitor on it is answered with noproc.
    if (s.what == k::link) {
      route(rt_, signal{k::link_exit, s.to, s.from, {}, exit_reason::noproc()});
    } else if (s.what == k::monitor) {
      route(rt_, signal{k::down, s.to, s.from, s.tag, exit_reason::noproc()});
    }
    return;
  }
  switch (s.what) {
    case k::message:
      p->deliver(std::move(s.payload));
      break;
    case k::exit:
      p->on_exit_signal(s.from, std::move(*s.payload.get_if<exit_reason>()), false);
      break;
    case k::link_exit:
      p->on_exit_signal(s.from, std::move(*s.payload.get_if<exit_reason>()), true);
      break;
    case k::link:
      p->links.insert(s.from);
      break;
    case k::unlink:
      p->links.erase(s.from);
      break;
    case k::monitor:
      p->monitored_by.emplace(s.tag, s.from);
      break;
    case k::demonitor:
      p->monitored_by.erase(s.tag);
      break;
    case k::down:
      // Dropped if the monitor was taken back meanwhile (inboxes keep all).
      if (p->external || p->monitors.erase(s.tag) > 0) {
        p->deliver(down_msg{s.tag, s.from, std::move(*s.payload.get_if<exit_reason>())});
      }
      break;
    case k::spawn:
    case k::run:
      break;
  }
}

// ---- process lifecycle ------------------------------------------------------------

void scheduler::start_process(std::unique_ptr<process> p) {
  process* raw = p.get();
  table_.emplace(raw->self.id, raw);
  if (raw->external) {
    p.release();  // owned by the table; freed in finish_process
    return;
  }
  if (stopping_) raw->pending_exit = exit_reason::killed();
  try {
    pooled_stack stack{stacks_.get(), raw->stack_size};
    boost::fibers::fiber(boost::fibers::launch::post, std::allocator_arg, stack,
                         [this, raw] {
                           run_process(raw);
                           delete raw;
                         })
        .detach();
    p.release();  // the fiber owns it now
  } catch (const std::exception& e) {
    // No stack (e.g. the kernel's map count is exhausted): the process ends
    // before it runs, and its links and monitors are told why.
    log::error("runtime", "cannot start process ", raw->self, ": ", e.what());
    finish_process(*raw, exit_reason::error(std::string("cannot allocate a process stack: ") + e.what()));
  }
}

void scheduler::run_process(process* p) {
  context* ctx = context::active();
  p->ctx = ctx;
  ctx->set_properties(new process_tag(ctx, p));
  tls_process = p;
  exit_reason reason;
  try {
    p->check_exit();  // killed before it ever ran
    p->body();
    if (p->pending_exit) reason = *p->pending_exit;
  } catch (process_exit& e) {
    reason = std::move(e.reason);
  } catch (const std::exception& e) {
    reason = exit_reason::error(e.what());
    log::error("runtime", "process ", p->self, " crashed: ", e.what());
  } catch (...) {
    reason = exit_reason::error("unknown exception");
    log::error("runtime", "process ", p->self, " crashed with an exception of unknown type");
  }
  p->body = nullptr;  // destroy what the body captured while the pid still lives
  finish_process(*p, reason);
  static_cast<process_tag*>(ctx->get_properties())->proc = nullptr;
  tls_process = nullptr;
}

void scheduler::finish_process(process& p, const exit_reason& reason) {
  using k = signal::kind;
  p.done = true;
  for (const auto& name : p.names) rt_.unregister_name(name, p.self);
  const exit_reason to_links = reason.what == exit_reason::kind::kill ? exit_reason::killed() : reason;
  for (const pid& other : p.links) route(rt_, signal{k::link_exit, p.self, other, {}, to_links});
  for (const auto& [tag, watcher] : p.monitored_by) route(rt_, signal{k::down, p.self, watcher, tag, reason});
  for (const auto& [tag, target] : p.monitors) route(rt_, signal{k::demonitor, p.self, target, tag, {}});
  p.links.clear();
  p.monitored_by.clear();
  p.monitors.clear();
  p.mailbox.clear();
  table_.erase(p.self.id);
  count_.fetch_sub(1, std::memory_order_relaxed);
  if (p.external) {
    {
      std::lock_guard lock(p.external->mutex);
      p.external->closed = true;
    }
    p.external->ready.notify_all();
    delete &p;
  }
  if (stopping_ && table_.empty() && main_waiting_) {
    main_waiting_ = false;
    context::active()->schedule(main_ctx_);
  }
}

void scheduler::begin_stop() {
  stopping_ = true;
  std::vector<process*> all;
  all.reserve(table_.size());
  for (auto& [id, p] : table_) all.push_back(p);
  for (process* p : all) {
    if (p->external) {
      finish_process(*p, exit_reason::shutdown());
    } else {
      p->kill_with(exit_reason::killed());
    }
  }
  if (table_.empty() && main_waiting_) {
    main_waiting_ = false;
    context::active()->schedule(main_ctx_);
  }
}

void scheduler::close_external(const pid& self) {
  process* p = find(self);
  if (p != nullptr && p->external) finish_process(*p, exit_reason::normal());
}

// ---- timers ---------------------------------------------------------------------------

ref scheduler::send_after(clock::duration delay, const pid& to, message m) {
  const std::uint64_t id = next_id();
  auto timer = std::make_unique<boost::asio::steady_timer>(*io_, delay);
  timer->async_wait([this, id, to, m = std::move(m)](const boost::system::error_code& ec) mutable {
    timers_->pending.erase(id);  // destroys the timer; `m` lives in this handler
    if (!ec) route(rt_, signal{signal::kind::message, pid{}, to, {}, std::move(m)});
  });
  timers_->pending.emplace(id, std::move(timer));
  return ref{rt_.node(), rt_.incarnation(), id};
}

bool scheduler::cancel_timer(std::uint64_t id) {
  auto it = timers_->pending.find(id);
  if (it == timers_->pending.end()) return false;
  timers_->pending.erase(it);  // destroying the timer cancels it: its handler sees operation_aborted
  return true;
}

}  // namespace panal::detail
