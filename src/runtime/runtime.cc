#include "runtime/runtime.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "runtime/inbox_state.h"
#include "runtime/scheduler.h"
#include "runtime/spawn.h"
#include "runtime/system_messages.h"
#include "runtime/this_process.h"

namespace panal {

using detail::route;
using detail::scheduler;
using detail::signal;

struct runtime::names {
  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, pid> by_name;
};

namespace {

std::uint32_t fresh_incarnation() {
  // Distinct across runs of a node with the same name: clock mixed with randomness.
  std::random_device rd;
  auto t = static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::uint32_t v = rd() ^ (t * 2654435761u);
  return v == 0 ? 1 : v;
}

}  // namespace

runtime::runtime(runtime_options options)
    : options_(std::move(options)),
      node_(node_index(options_.node_name)),
      incarnation_(fresh_incarnation()),
      names_(std::make_unique<names>()) {
  unsigned n = options_.threads ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, 1u << scheduler::index_bits);
  options_.threads = n;
  schedulers_.reserve(n);
  for (unsigned i = 0; i < n; ++i) schedulers_.push_back(std::make_unique<scheduler>(*this, i));
  for (auto& s : schedulers_) s->start();
}

runtime::~runtime() { stop(); }

void runtime::stop() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_) return;
  stopping_.store(true);
  for (auto& s : schedulers_) {
    scheduler* raw = s.get();
    raw->post(signal{signal::kind::run, {}, {}, {}, std::function<void()>([raw] { raw->begin_stop(); })});
  }
  for (auto& s : schedulers_) s->join();
  stopped_ = true;
}

bool runtime::running() const { return !stopping_.load(); }

unsigned runtime::thread_count() const { return static_cast<unsigned>(schedulers_.size()); }

namespace {
// One scheduler's answer to runtime::processes.
struct process_list {
  ref tag;
  std::vector<process_info> items;
};
}  // namespace

std::vector<process_info> runtime::processes(clock::duration timeout) {
  const bool in_process = detail::scheduler::current_process() != nullptr;
  std::optional<inbox> box;
  if (!in_process) box.emplace(open_inbox());
  const pid to = in_process ? this_process::self() : box->self();
  const ref tag = make_ref();
  for (auto& s : schedulers_) {
    detail::scheduler* sched = s.get();
    sched->run_soon([this, sched, to, tag] {
      process_list l{tag, {}};
      sched->list_processes(l.items);
      send(to, std::move(l));
    });
  }
  std::vector<process_info> out;
  const auto deadline = clock::now() + timeout;
  auto mine = [&](const message& m) { return m.is<process_list>() && m.get<process_list>().tag == tag; };
  for (std::size_t got = 0; got < schedulers_.size(); ++got) {
    const auto left = std::max(deadline - clock::now(), clock::duration::zero());
    auto m = in_process ? this_process::receive_if(mine, left) : box->receive_if(mine, left);
    if (!m) break;
    auto& items = m->get<process_list>().items;
    out.insert(out.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  }
  return out;
}

std::vector<thread_load> runtime::thread_loads() const {
  std::vector<thread_load> out;
  const auto now = clock::now();
  for (const auto& s : schedulers_) {
    const auto wall = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - s->started()).count());
    const std::uint64_t idle = std::min(s->idle_ns(), wall);
    out.push_back({wall - idle, idle});
  }
  return out;
}

std::size_t runtime::process_count() const {
  std::size_t n = 0;
  for (auto& s : schedulers_) n += s->process_count();
  return n;
}

scheduler& runtime::scheduler_at(unsigned index) const { return *schedulers_[index]; }

scheduler& runtime::scheduler_for(const pid& p) const {
  return *schedulers_[(p.id & ((1u << scheduler::index_bits) - 1)) % schedulers_.size()];
}

unsigned runtime::pick_thread(int requested) {
  const unsigned n = thread_count();
  if (requested == spawn_options::same_thread) {
    scheduler* cur = scheduler::current();
    if (cur != nullptr && &cur->rt() == this) return cur->index();
  }
  if (requested >= 0) return static_cast<unsigned>(requested) % n;
  return next_thread_.fetch_add(1, std::memory_order_relaxed) % n;
}

ref runtime::make_ref() {
  return ref{node_, incarnation_, next_ref_.fetch_add(1, std::memory_order_relaxed)};
}

result<pid> runtime::spawn(std::function<void()> body, spawn_options options) {
  return detail::spawn(*this, std::move(body), options, detail::spawn_links{});
}

void runtime::send(const pid& to, message m) {
  route(*this, signal{signal::kind::message, {}, to, {}, std::move(m)});
}

void runtime::exit(const pid& to, exit_reason reason) {
  route(*this, signal{signal::kind::exit, {}, to, {}, std::move(reason)});
}

pid runtime::whereis(std::string_view name) const {
  std::shared_lock lock(names_->mutex);
  auto it = names_->by_name.find(std::string(name));
  return it == names_->by_name.end() ? pid{} : it->second;
}

pid runtime::await_name(std::string_view name, clock::duration timeout) const {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    const pid p = whereis(name);
    if (p || clock::now() >= deadline) return p;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

result<void> runtime::register_name(std::string name, const pid& p) {
  if (name.empty()) return {errc::bad_argument, "a registered name must not be empty"};
  std::unique_lock lock(names_->mutex);
  auto [it, inserted] = names_->by_name.emplace(std::move(name), p);
  if (!inserted && it->second != p) {
    return {errc::name_taken, "the name '" + it->first + "' is registered to " + to_string(it->second)};
  }
  return {};
}

void runtime::unregister_name(std::string_view name, const pid& p) {
  std::unique_lock lock(names_->mutex);
  auto it = names_->by_name.find(std::string(name));
  if (it != names_->by_name.end() && it->second == p) names_->by_name.erase(it);
}

result<message> runtime::call(const pid& to, message request, clock::duration timeout) {
  if (this_process::inside() && &this_process::current_runtime() == this) {
    return this_process::call(to, std::move(request), timeout);
  }
  return open_inbox().call(to, std::move(request), timeout);
}

// ---- inbox ----------------------------------------------------------------------

inbox runtime::open_inbox() {
  const unsigned idx = pick_thread(spawn_options::any_thread);
  scheduler& s = scheduler_at(idx);
  pid self{node_, incarnation_, s.next_id()};
  auto st = std::make_shared<inbox::state>();
  auto proc = std::make_unique<detail::process>(s, self, pid{}, nullptr, 0);
  proc->external = st;
  if (!running()) {
    st->closed = true;
  } else {
    s.count_spawned();
    route(*this, signal{signal::kind::spawn, {}, self, {}, std::move(proc)});
  }
  return inbox(this, self, std::move(st));
}

inbox::inbox(runtime* rt, pid self, std::shared_ptr<state> st) : rt_(rt), self_(self), state_(std::move(st)) {}
inbox::inbox(inbox&& o) noexcept : rt_(o.rt_), self_(o.self_), state_(std::move(o.state_)) { o.rt_ = nullptr; }
inbox& inbox::operator=(inbox&& o) noexcept {
  if (this != &o) {
    this->~inbox();
    new (this) inbox(std::move(o));
  }
  return *this;
}

inbox::~inbox() {
  if (rt_ == nullptr || !state_) return;
  bool closed;
  {
    std::lock_guard lock(state_->mutex);
    closed = state_->closed;
  }
  // Ends the pid as a normal exit, on its scheduler: links and monitors hear of it.
  if (!closed && rt_->running()) {
    scheduler* s = &rt_->scheduler_for(self_);
    pid self = self_;
    route(*rt_, signal{signal::kind::run, {}, self_, {}, std::function<void()>([s, self] { s->close_external(self); })});
  }
}

void inbox::send(const pid& to, message m) {
  route(*rt_, signal{signal::kind::message, self_, to, {}, std::move(m)});
}

std::optional<message> inbox::receive(clock::duration timeout) {
  return receive_if([](const message&) { return true; }, timeout);
}

std::optional<message> inbox::receive_if(function_ref<bool(const message&)> pred, clock::duration timeout) {
  const auto deadline = timeout == infinity ? clock::time_point::max() : clock::now() + timeout;
  std::unique_lock lock(state_->mutex);
  std::size_t scanned = 0;
  for (;;) {
    for (; scanned < state_->queue.size(); ++scanned) {
      if (pred(state_->queue[scanned])) {
        message m = std::move(state_->queue[scanned]);
        state_->queue.erase(state_->queue.begin() + static_cast<std::ptrdiff_t>(scanned));
        return m;
      }
    }
    if (state_->closed) return std::nullopt;
    if (deadline == clock::time_point::max()) {
      state_->ready.wait(lock);
    } else if (state_->ready.wait_until(lock, deadline) == std::cv_status::timeout) {
      // One more scan happens only if something arrived; else time is up.
      if (scanned == state_->queue.size()) return std::nullopt;
    }
  }
}

ref inbox::monitor(const pid& target) {
  ref r = rt_->make_ref();
  route(*rt_, signal{signal::kind::monitor, self_, target, r, {}});
  return r;
}

result<message> inbox::call(const pid& to, message request, clock::duration timeout) {
  if (!rt_ || !rt_->running()) return {errc::not_running, "the runtime is not running"};
  ref mon = monitor(to);
  ref tag = rt_->make_ref();
  send(to, call_request{self_, tag, std::move(request)});
  auto m = receive_if(
      [&](const message& x) {
        if (auto* r = x.get_if<call_reply>()) return r->tag == tag;
        if (auto* d = x.get_if<down_msg>()) return d->monitor == mon;
        return false;
      },
      timeout);
  if (!m || m->is<call_reply>()) route(*rt_, signal{signal::kind::demonitor, self_, to, mon, {}});
  if (!m) return {errc::timeout, "no reply from " + to_string(to) + " in time"};
  if (auto* r = m->get_if<call_reply>()) return std::move(r->body);
  return {errc::noproc, to_string(to) + " is not alive (" + to_string(m->get<down_msg>().reason) + ")"};
}

}  // namespace panal
