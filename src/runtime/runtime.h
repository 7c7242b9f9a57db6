// The process runtime: N scheduler threads running lightweight processes.
//
// Promises:
// - Each scheduler thread runs one Boost.Asio io_context and one Boost.Fiber
//   scheduler. A process is a fiber with a mailbox; it lives on one thread
//   for its whole life and is only ever woken by that thread: a message or
//   signal from another thread is handed to the target thread's event loop.
// - send() never blocks. Messages between one pair of processes arrive in
//   the order they were sent, whatever threads the two live on.
// - An uncaught exception ends only its own process; its links and monitors
//   learn the reason (exit_reason::error with the exception's text).
// - stop() kills every remaining process (reason kill), waits for all of
//   them to finish unwinding, and joins the threads. A runtime can be
//   stopped and another one started in the same OS process.
//
// Thread-safety: every member function may be called from any thread,
// including from inside processes of this runtime, except that the
// destructor and stop() must not be called from one of its own processes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/exit_reason.h"
#include "runtime/fwd.h"
#include "runtime/message.h"
#include "runtime/pid.h"
#include "util/error.h"
#include "util/function_ref.h"

namespace panal {

using clock = std::chrono::steady_clock;
// A timeout that never expires.
inline constexpr clock::duration infinity = clock::duration::max();

struct runtime_options {
  unsigned threads = 0;                   // 0: one per hardware thread
  std::string node_name = "nonode@nohost";
  std::size_t stack_size = 256 * 1024;    // per process
  // A no-access page below each stack turns an overflow into a fault
  // instead of silent corruption. Each guarded stack costs two kernel
  // memory mappings, so vm.max_map_count (65530 by default) allows about
  // 32,000 live processes; without guard pages the stacks merge into few.
  bool guard_pages = true;
  // An idle scheduler thread polls this long before it sleeps, so that a
  // message from another thread does not pay for a thread wake-up. Costs
  // CPU only while idle; zero turns it off.
  clock::duration spin_before_sleep = std::chrono::microseconds(50);
};

struct spawn_options {
  static constexpr int any_thread = -1;   // spread over the threads, round robin
  static constexpr int same_thread = -2;  // the caller's thread (from outside: any)
  int thread = any_thread;                // or a scheduler index in [0, threads)
  std::size_t stack_size = 0;             // 0: the runtime's default
};

// One live process as its scheduler thread saw it (runtime::processes).
struct process_info {
  pid self;
  std::string name;           // its first registered name, or empty
  std::size_t mailbox = 0;    // messages waiting
  std::uint64_t received = 0; // messages delivered to it, ever
  bool inbox = false;         // a mailbox of an OS thread (mailbox not counted)
};

// How much of its time a scheduler thread has worked since it started.
struct thread_load {
  std::uint64_t busy_ns = 0, idle_ns = 0;
};

// A mailbox owned by an ordinary (non-fiber) thread, e.g. a test's main
// thread or a Python caller: it has a pid, so processes can send to it,
// link to it and monitor it, and receive() blocks the OS thread. It behaves
// like a process that traps exits. Destroying it ends that pid (normal).
//
// Thread-safety: one thread receives at a time; send to its pid from anywhere.
class inbox {
 public:
  inbox(inbox&&) noexcept;
  inbox& operator=(inbox&&) noexcept;
  ~inbox();

  const pid& self() const { return self_; }

  // Sends with this inbox as the sender (so the target may answer, and the
  // order between this inbox and the target is kept).
  void send(const pid& to, message m);

  std::optional<message> receive(clock::duration timeout = infinity);
  std::optional<message> receive_if(function_ref<bool(const message&)> pred,
                                    clock::duration timeout = infinity);
  template <class T>
  std::optional<T> receive_as(clock::duration timeout = infinity) {
    auto m = receive_if([](const message& x) { return x.is<T>(); }, timeout);
    if (!m) return std::nullopt;
    return std::move(m->template get<T>());
  }

  ref monitor(const pid& target);
  // Request-reply (see this_process::call): sends `request` to `to` and
  // waits for its reply; fails with noproc if `to` dies or does not exist.
  result<message> call(const pid& to, message request, clock::duration timeout);

  struct state;  // shared with the runtime side

 private:
  friend class runtime;
  inbox(runtime* rt, pid self, std::shared_ptr<state> st);
  runtime* rt_ = nullptr;
  pid self_;
  std::shared_ptr<state> state_;
};

// Where signals to pids of other nodes go: implemented by the distribution
// layer (src/dist), installed with runtime::set_remote_router. forward() may
// be called from any thread and must not block.
class remote_router {
 public:
  virtual ~remote_router() = default;
  virtual void forward(detail::signal&& s) = 0;
};

class runtime {
 public:
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // Kills all processes, waits for them, joins the threads. Idempotent.
  void stop();
  bool running() const;

  // Starts a process running `body`. Returns its pid at once; the process
  // starts soon after on its thread. Fails with not_running once stopping.
  result<pid> spawn(std::function<void()> body, spawn_options options = {});

  // Sends from outside any process (the sender is the null pid).
  void send(const pid& to, message m);
  // Sends an exit signal, as if from the null pid (see this_process::exit).
  void exit(const pid& to, exit_reason reason);

  pid whereis(std::string_view name) const;
  // From outside any process: waits (polling) until `name` is registered,
  // at most `timeout`; its pid, or null. For processes that register
  // themselves first thing, started by another process (a supervisor).
  pid await_name(std::string_view name, clock::duration timeout) const;
  inbox open_inbox();

  // Request-reply from anywhere: inside a process of this runtime it is
  // this_process::call; elsewhere it waits on a temporary inbox.
  result<message> call(const pid& to, message request, clock::duration timeout = infinity);

  // Live processes, including inboxes.
  std::size_t process_count() const;
  // Every live process, listed by its own scheduler thread (each thread
  // answers when it gets to it; threads that do not within `timeout` are
  // left out). From inside a process it waits as a receive does.
  std::vector<process_info> processes(clock::duration timeout = std::chrono::seconds(1));
  // Per scheduler thread: time spent working and waiting for work.
  std::vector<thread_load> thread_loads() const;
  unsigned thread_count() const;
  std::uint32_t node() const { return node_; }
  std::uint32_t incarnation() const { return incarnation_; }
  const runtime_options& options() const { return options_; }

  // -- for the runtime's own parts --
  detail::scheduler& scheduler_at(unsigned index) const;
  detail::scheduler& scheduler_for(const pid& p) const;
  unsigned pick_thread(int requested);
  bool is_local(const pid& p) const { return p.node == node_ && p.incarnation == incarnation_; }
  ref make_ref();
  // Installs (or, with nullptr, removes) the router for non-local pids.
  // The router must outlive its installation. Without one, signals to other
  // nodes are dropped, and links/monitors on them answered with noconnection.
  void set_remote_router(remote_router* r) { remote_.store(r, std::memory_order_release); }
  remote_router* remote() const { return remote_.load(std::memory_order_acquire); }
  // Registered names: a name maps to at most one live local process.
  result<void> register_name(std::string name, const pid& p);
  void unregister_name(std::string_view name, const pid& p);

 private:
  runtime_options options_;
  std::uint32_t node_;
  std::uint32_t incarnation_;
  std::vector<std::unique_ptr<detail::scheduler>> schedulers_;
  struct names;
  std::unique_ptr<names> names_;
  std::atomic<unsigned> next_thread_{0};
  std::atomic<std::uint64_t> next_ref_{1};
  std::atomic<bool> stopping_{false};
  std::atomic<remote_router*> remote_{nullptr};
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

}  // namespace panal
