// Internal: one scheduler thread.
//
// A scheduler owns a Boost.Asio io_context, a Boost.Fiber scheduling
// algorithm that runs that io_context whenever no fiber is ready (and polls
// it every few rounds when fibers are always ready), the table of its
// processes, and a cross-thread queue of incoming signals.
//
// Thread-safety: post() and next_id() may be called from any thread; every
// other member only on the scheduler's own thread.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/process.h"
#include "runtime/spin_policy.h"

namespace boost::asio {
class io_context;
}

namespace panal::detail {

class stack_pool;

class scheduler {
 public:
  scheduler(runtime& rt, unsigned index);
  ~scheduler();

  void start();   // launches the thread
  void join();

  runtime& rt() const { return rt_; }
  unsigned index() const { return index_; }
  boost::asio::io_context& io() { return *io_; }

  // Any thread.
  void post(signal s);
  std::uint64_t next_id();  // a fresh pid/ref id whose low bits name this scheduler
  std::size_t process_count() const { return count_.load(std::memory_order_relaxed); }
  void count_spawned() { count_.fetch_add(1, std::memory_order_relaxed); }
  static constexpr unsigned index_bits = 8;

  // The scheduler of the calling thread, or nullptr on a foreign thread.
  static scheduler* current();
  // The process whose fiber is running on this thread, or nullptr.
  static process* current_process();

  // Runs `task` on this scheduler's thread, soon (any thread).
  void run_soon(std::function<void()> task);
  // An I/O completion went to a mailbox (io::completion: client sessions,
  // the HTTP server), not to a fiber waiting inline (io::await: the
  // distribution layer). The idle spin tells the two apart.
  void count_mailbox_completion() { ++mailbox_completions_; }
  // Time this thread has spent waiting for work (spinning or asleep) since
  // it started, and since when it runs (any thread).
  std::uint64_t idle_ns() const { return idle_ns_.load(std::memory_order_relaxed); }
  clock::time_point started() const { return started_; }

  // Own thread only.
  void handle(signal&& s);
  void list_processes(std::vector<process_info>& out) const;
  process* find(const pid& p);
  ref send_after(clock::duration delay, const pid& to, message m);
  bool cancel_timer(std::uint64_t id);

  void begin_stop();
  void close_external(const pid& p);  // ends an inbox's pid (reason normal)  // kills every process; the thread ends when all are gone

  // Called by the fiber algorithm (dispatcher context).
  void on_dispatcher_turn();
  void drain_incoming();
  void wait_for_events(clock::time_point deadline);
  void interrupt();

 private:
  void run_thread();
  void start_process(std::unique_ptr<process> p);
  void run_process(process* p);
  void finish_process(process& p, const exit_reason& reason);

  runtime& rt_;
  const unsigned index_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<stack_pool> stacks_;
  std::thread thread_;
  std::atomic<std::uint64_t> next_serial_{1};
  std::atomic<std::size_t> count_{0};

  std::mutex incoming_mutex_;
  std::vector<signal> incoming_;        // guarded by incoming_mutex_
  std::atomic<bool> has_incoming_{false};
  std::vector<signal> draining_;        // own thread: reused batch buffer

  std::unordered_map<std::uint64_t, process*> table_;
  struct timer_set;
  std::unique_ptr<timer_set> timers_;
  unsigned turns_ = 0;
  spin_policy spin_;
  std::uint64_t mailbox_completions_ = 0;
  std::atomic<std::uint64_t> idle_ns_{0};  // written by the own thread only
  clock::time_point started_ = clock::now();
  bool stopping_ = false;
  boost::fibers::context* main_ctx_ = nullptr;
  bool main_waiting_ = false;
};

// Routes a signal to its target's scheduler: handled at once when the
// target lives on the calling thread, else posted. Safe from any thread.
void route(runtime& rt, signal&& s);

}  // namespace panal::detail
