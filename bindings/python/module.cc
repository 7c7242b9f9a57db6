// panal._core: the C++ core, seen from Python.
//
// Every call that waits or works releases the GIL. A blocking call made from
// the main thread runs on a helper thread while the main thread waits in
// short slices, checking for signals: Ctrl-C interrupts it (the request
// itself may still complete). Errors arrive as result<T> values and leave
// here as the Python exception class registered for their code (panal.errors).
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "client/remote_client.h"
#include "wire/msgpack_check.h"
#include "db/messages.h"
#include "dist/cookie.h"
#include "node/node.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "util/error.h"
#include "util/log.h"

namespace py = pybind11;

namespace panal::python {
namespace {

// Raises the panal.errors class for e.code (the GIL must be held).
[[noreturn]] void raise(const error& e) {
  py::object errors = py::module_::import("panal.errors");
  py::object cls = errors.attr("error_class")(static_cast<int>(e.code));
  PyErr_SetString(cls.ptr(), e.message.c_str());
  throw py::error_already_set();
}

template <class T>
T unwrap(result<T> r) {
  if (!r) raise(r.err());
  return std::move(r).value();
}
inline void unwrap(result<void> r) {
  if (!r) raise(r.err());
}

// ---- interruptible waits ------------------------------------------------------

std::thread::id g_main_thread;

// Helper threads run the main thread's blocking calls, so that the main
// thread can keep checking for Ctrl-C while it waits. An interrupted call
// goes on (its answer is dropped) and holds its thread: the pool grows when
// every helper is busy, so later calls never queue behind it.
class helper {
 public:
  static helper& get() {
    static helper* h = new helper;  // lives until the process ends
    return *h;
  }
  struct job {
    std::function<void()> work;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  void run(const std::shared_ptr<job>& j) {
    bool grow;
    {
      std::lock_guard lock(m_);
      queue_.push_back(j);
      grow = idle_ < queue_.size();
      if (grow) ++idle_;  // the new thread counts as idle until it takes a job
    }
    if (grow) std::thread([this] { serve(); }).detach();
    cv_.notify_one();
  }

 private:
  void serve() {
    for (;;) {
      std::shared_ptr<job> j;
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return !queue_.empty(); });
        j = std::move(queue_.front());
        queue_.pop_front();
        --idle_;
      }
      j->work();
      {
        std::lock_guard lock(j->m);
        j->done = true;
      }
      j->cv.notify_all();
      std::lock_guard lock(m_);
      ++idle_;
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<job>> queue_;
  std::size_t idle_ = 0;
};

// Runs `fn` without the GIL; from the main thread, interruptibly.
template <class F>
auto blocking(F fn) -> decltype(fn()) {
  using R = decltype(fn());
  if (std::this_thread::get_id() != g_main_thread) {
    py::gil_scoped_release nogil;
    return fn();
  }
  auto out = std::make_shared<std::optional<R>>();
  auto j = std::make_shared<helper::job>();
  j->work = [fn = std::move(fn), out]() mutable { out->emplace(fn()); };
  helper::get().run(j);
  for (;;) {
    {
      py::gil_scoped_release nogil;
      std::unique_lock lock(j->m);
      if (j->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return j->done; })) break;
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // e.g. KeyboardInterrupt
  }
  return std::move(**out);
}

// ---- pids ------------------------------------------------------------------------

// "<node.id.incarnation>" (to_string(pid)) back to a pid; the node name may hold dots.
std::optional<pid> parse_pid(const std::string& text) {
  if (text.size() < 7 || text.front() != '<' || text.back() != '>') return std::nullopt;
  const std::string body = text.substr(1, text.size() - 2);
  const auto last = body.rfind('.');
  if (last == std::string::npos) return std::nullopt;
  const auto mid = body.rfind('.', last - 1);
  if (mid == std::string::npos) return std::nullopt;
  try {
    pid p;
    p.node = node_index(body.substr(0, mid));
    p.id = std::stoull(body.substr(mid + 1, last - mid - 1));
    p.incarnation = static_cast<std::uint32_t>(std::stoul(body.substr(last + 1)));
    return p;
  } catch (...) {
    return std::nullopt;
  }
}

std::vector<std::string> names_of(const std::vector<pid>& ps) {
  std::vector<std::string> out;
  for (auto& p : ps) out.push_back(to_string(p));
  return out;
}

py::bytes as_bytes(const std::string& s) { return py::bytes(s.data(), s.size()); }

// ---- clients ------------------------------------------------------------------------

// The operations both clients offer, on bytes.
class py_client {
 public:
  virtual ~py_client() = default;
  virtual result<std::optional<std::string>> get(const std::string& k) = 0;
  virtual result<void> set(const std::string& k, const std::string& v) = 0;
  virtual result<bool> remove(const std::string& k) = 0;
  virtual result<bool> exists(const std::string& k) = 0;
  virtual result<void> unsafe_set(const std::string& k, const std::string& v) = 0;
  virtual result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& ks) = 0;
  virtual result<std::vector<std::optional<std::string>>> mget_views(const std::vector<std::string_view>& ks) {
    return mget(std::vector<std::string>(ks.begin(), ks.end()));
  }
  virtual result<void> mset(const std::vector<std::pair<std::string, std::string>>& items) = 0;
  virtual std::vector<batch_result> batch(const std::vector<batch_op>& ops) = 0;
  virtual void close() {}
  virtual std::string describe() const = 0;
  virtual void set_timeout(double seconds) = 0;
  virtual std::vector<std::string> sessions() const { return {}; }
  // True when its calls notice Ctrl-C themselves (see calling()): they run
  // on the calling thread, without a hand-off to a helper thread.
  virtual bool interruptible() const { return false; }
};

class embedded_client final : public py_client {
 public:
  embedded_client(client c, std::shared_ptr<node> owner) : c_(std::move(c)), owner_(std::move(owner)) {}
  result<std::optional<std::string>> get(const std::string& k) override { return c_.get(k); }
  result<void> set(const std::string& k, const std::string& v) override { return c_.set(k, v); }
  result<bool> remove(const std::string& k) override { return c_.remove(k); }
  result<bool> exists(const std::string& k) override { return c_.exists(k); }
  result<void> unsafe_set(const std::string& k, const std::string& v) override { return c_.unsafe_set(k, v); }
  result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& ks) override {
    return c_.mget(ks);
  }
  result<void> mset(const std::vector<std::pair<std::string, std::string>>& items) override { return c_.mset(items); }
  std::vector<batch_result> batch(const std::vector<batch_op>& ops) override { return c_.batch(ops); }
  std::string describe() const override { return "client process " + to_string(c_.process()) + " of '" + c_.db() + "'"; }
  void set_timeout(double s) override {
    c_.set_timeout(std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s)));
  }

 private:
  client c_;
  std::shared_ptr<node> owner_;  // keeps the runtime alive while the client is
};

class tcp_client final : public py_client {
 public:
  explicit tcp_client(std::unique_ptr<remote_client> c, std::string db) : c_(std::move(c)), db_(std::move(db)) {
    // Every 50 ms of waiting on the main thread: a pending Ctrl-C ends the
    // call (the KeyboardInterrupt is raised when it returns).
    c_->set_interrupt_check([] {
      if (std::this_thread::get_id() != g_main_thread) return false;
      py::gil_scoped_acquire gil;
      return PyErr_CheckSignals() != 0;
    });
  }
  bool interruptible() const override { return true; }
  result<std::optional<std::string>> get(const std::string& k) override { return c_->get(k); }
  result<void> set(const std::string& k, const std::string& v) override { return c_->set(k, v); }
  result<bool> remove(const std::string& k) override { return c_->remove(k); }
  result<bool> exists(const std::string& k) override { return c_->exists(k); }
  result<void> unsafe_set(const std::string& k, const std::string& v) override { return c_->unsafe_set(k, v); }
  result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& ks) override {
    return c_->mget(ks);
  }
  result<std::vector<std::optional<std::string>>> mget_views(const std::vector<std::string_view>& ks) override {
    return c_->mget_views(ks);
  }
  result<void> mset(const std::vector<std::pair<std::string, std::string>>& items) override { return c_->mset(items); }
  std::vector<batch_result> batch(const std::vector<batch_op>& ops) override { return c_->batch(ops); }
  void close() override { c_->close(); }
  std::string describe() const override { return "TCP session with " + c_->node() + " for '" + db_ + "'"; }
  void set_timeout(double s) override { c_->set_timeout(std::chrono::milliseconds(static_cast<long>(s * 1000))); }
  std::vector<std::string> sessions() const override { return c_->sessions(); }

 private:
  std::unique_ptr<remote_client> c_;
  std::string db_;
};

// ---- the node ----------------------------------------------------------------------

class py_node {
 public:
  py_node(const std::string& name, std::optional<std::string> cookie, std::optional<std::string> cookie_file,
          std::optional<unsigned> threads, double tick, double down_after, double spin, std::uint32_t max_sessions,
          std::size_t max_send_queue, std::optional<std::string> tls_cert, std::optional<std::string> tls_key,
          std::optional<std::string> tls_ca, std::optional<std::string> http) {
    node_options o;
    o.name = name;
    if (cookie_file) {
      o.cookie = unwrap(dist::read_cookie_file(*cookie_file));
    } else if (cookie) {
      o.cookie = *cookie;
    }
    o.threads = threads.value_or(0);
    o.tick = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(tick));
    o.down_after = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(down_after));
    o.spin_before_sleep = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(spin));
    o.max_sessions = max_sessions;
    o.max_send_queue = max_send_queue;
    o.tls = {tls_cert.value_or(""), tls_key.value_or(""), tls_ca.value_or("")};
    o.http = http.value_or("");
    if (name != "nonode@nohost" && o.cookie.empty()) {
      raise(error{errc::bad_argument, "a distributed node needs a cookie (cookie=... or cookie_file=...)"});
    }
    auto n = blocking([o] { return node::start(o); });
    node_ = std::shared_ptr<node>(std::move(unwrap(std::move(n))).release());
  }

  node& self() {
    if (!node_ || stopped_) raise(error{errc::not_running, "this node has been stopped; create a new one"});
    return *node_;
  }

  void stop() {
    if (!node_ || stopped_) return;
    stopped_ = true;
    auto n = node_;
    blocking([n] {
      n->stop();
      return 0;
    });
  }
  bool running() const { return node_ && !stopped_; }
  std::string name() { return self().name(); }

  void connect(const std::string& other) {
    node& n = self();
    unwrap(blocking([&n, other] { return n.connect(other); }));
  }
  std::vector<std::string> nodes() { return self().nodes(); }

  std::vector<std::string> start_server(const std::string& db, std::vector<std::string> on, std::size_t max_key_bytes,
                                        std::size_t max_value_bytes, std::uint64_t max_keys, std::size_t max_memory,
                                        std::optional<std::string> ckey, std::uint32_t slots, std::uint32_t replicas,
                                        std::uint32_t write_acks, double lease) {
    node& n = self();
    server_options o{{max_key_bytes, max_value_bytes, max_keys, max_memory}, ckey.value_or(""), slots, replicas,
                     write_acks, std::chrono::milliseconds(static_cast<long>(lease * 1000))};
    return names_of(unwrap(blocking([&n, db, on, o] { return n.start_server(db, on, o); })));
  }
  std::vector<std::string> start_data(const std::string& db, std::vector<std::string> on, unsigned count) {
    node& n = self();
    if (count == 0) raise(error{errc::bad_argument, "count must be at least 1"});
    return names_of(unwrap(blocking([&n, db, on, count] { return n.start_data(db, on, count); })));
  }
  void stop_data(const std::string& db, std::vector<std::string> on, unsigned count, double timeout) {
    node& n = self();
    if (count == 0) raise(error{errc::bad_argument, "count must be at least 1"});
    const auto t = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout));
    unwrap(blocking([&n, db, on, count, t] { return n.stop_data(db, on, count, t); }));
  }
  std::shared_ptr<py_client> start_client(const std::string& name, const std::string& db, std::vector<std::string> on) {
    node& n = self();
    auto c = unwrap(blocking([&n, name, db, on] { return n.start_client(name, db, on); }));
    return std::make_shared<embedded_client>(std::move(c), node_);
  }

  py::dict groups(const std::string& db) {
    auto g = self().groups(db);
    py::dict d;
    d["server"] = names_of(g.servers);
    d["data"] = names_of(g.data);
    d["client"] = names_of(g.clients);
    return d;
  }
  std::optional<std::string> master(const std::string& db) {
    auto m = self().master(db);
    return m ? std::optional<std::string>(to_string(*m)) : std::nullopt;
  }
  std::vector<std::string> databases() {
    return self().databases();
  }
  py::list stats(const std::string& db) {
    node& n = self();
    auto s = blocking([&n, db] { return n.stats(db); });
    py::list out;
    for (auto& st : s) {
      py::dict d;
      d["pid"] = to_string(st.process);
      d["node"] = node_name(st.process.node);
      d["keys"] = st.keys;
      d["keys_primary"] = st.keys_primary;
      d["memory"] = st.memory;
      d["entries"] = st.entries;
      d["tombstones"] = st.tombstones;
      d["state"] = st.state;
      d["index"] = st.index;
      d["epoch"] = st.epoch;
      d["slots_primary"] = st.slots_primary;
      d["slots_held"] = st.slots_held;
      d["slots_filling"] = st.slots_filling;
      d["keys_in"] = st.keys_in;
      d["syncs_agreed"] = st.syncs_agreed;
      d["syncs_copied"] = st.syncs_copied;
      d["bytes_in"] = st.bytes_in;
      d["keys_out"] = st.keys_out;
      d["bytes_out"] = st.bytes_out;
      d["rate"] = st.rate;
      out.append(d);
    }
    return out;
  }
  py::list locate(const std::string& db, const std::string& key) {
    node& n = self();
    auto copies = blocking([&n, db, key] { return n.locate(db, key); });
    py::list out;
    for (auto& c : copies) {
      py::dict d;
      d["pid"] = to_string(c.process);
      d["node"] = node_name(c.process.node);
      d["role"] = c.role;
      d["held"] = c.held;
      d["tombstone"] = c.tombstone;
      d["value"] = c.held && !c.tombstone ? py::object(py::bytes(c.value)) : py::object(py::none());
      d["version"] = py::make_tuple(c.version_epoch, c.version_hlc);
      d["epoch"] = c.epoch;
      out.append(d);
    }
    return out;
  }
  py::object slot_map(const std::string& db) {
    auto m = self().slot_map(db);
    if (!m) return py::none();
    py::dict d;
    d["epoch"] = m->epoch;
    d["master"] = to_string(m->master);
    d["replicas"] = m->replicas;
    d["write_acks"] = m->write_acks;
    d["slots"] = m->slots;
    d["moving"] = m->moving;
    d["owners_digest"] = m->owners_digest;
    py::list members;
    for (std::size_t i = 0; i < m->members.size(); ++i) {
      py::dict x;
      x["member"] = m->members[i];
      x["pid"] = to_string(m->pids[i]);
      x["eligible"] = static_cast<bool>(m->eligible[i]);
      members.append(x);
    }
    d["members"] = members;
    return d;
  }

  std::vector<std::string> supervision(const std::string& node_name) {
    node& n = self();
    return unwrap(blocking([&n, node_name] { return n.supervision(node_name); }));
  }

  std::string metrics(const std::string& node_name) {
    node& n = self();
    return unwrap(blocking([&n, node_name] { return n.metrics(node_name); }));
  }

  py::list processes(const std::string& node_name) {
    node& n = self();
    auto rows = unwrap(blocking([&n, node_name] { return n.processes(node_name); }));
    py::list out;
    for (auto& r : rows) {
      py::dict d;
      d["pid"] = r.pid;
      d["name"] = r.name;
      d["mailbox"] = r.mailbox;
      d["received"] = r.received;
      out.append(d);
    }
    return out;
  }

  unsigned short http_port() { return self().http_port(); }

  std::string view_json() {
    node& n = self();
    return blocking([&n] { return n.view_json(); });
  }

  // Crashes a process (fault injection): a pid string, "<db>/server" (the
  // master), "<db>/data" (one data process), or one of the node's own
  // processes by name: "dist", "listener", "pg", "status". Returns the pid.
  std::string kill(const std::string& what) {
    node& n = self();
    std::optional<pid> target = parse_pid(what);
    if (!target && what.find('/') == std::string::npos && !what.empty()) {
      // Killed outright: the controller traps exits (its supervisor's
      // shutdown closes its connections), and a crash must not be a message.
      if (const pid p = n.rt().whereis("panal_" + what)) {
        n.rt().exit(p, exit_reason::kill());
        return to_string(p);
      }
    }
    if (!target) {
      const auto slash = what.rfind('/');
      if (slash != std::string::npos) {
        const std::string db = what.substr(0, slash), role = what.substr(slash + 1);
        if (role == "server") target = n.master(db);
        if (role == "data" || role == "client") {
          auto g = n.groups(db);
          auto& list = role == "data" ? g.data : g.clients;
          if (!list.empty()) target = list.front();
        }
      }
    }
    if (!target) raise(error{errc::not_found, "nothing to kill for '" + what + "'"});
    n.rt().exit(*target, exit_reason::error("killed by node.kill() for a fault-injection experiment"));
    return to_string(*target);
  }

 private:
  std::shared_ptr<node> node_;
  bool stopped_ = false;
};

std::shared_ptr<py_client> connect_tcp(std::vector<std::string> addresses, const std::string& db,
                                       std::optional<std::string> token, double timeout, bool tls,
                                       std::optional<std::string> tls_ca, bool route, double spin) {
  if (!(spin >= 0 && spin <= 0.01)) throw py::value_error("spin must be between 0 and 0.01 seconds");
  remote_options o{addresses, db, token.value_or(""), std::chrono::milliseconds(static_cast<long>(timeout * 1000))};
  o.route = route;
  o.spin = std::chrono::microseconds(static_cast<long>(spin * 1e6));
  o.tls = tls;
  o.tls_ca = tls_ca.value_or("");
  auto c = unwrap(blocking([o] { return remote_client::connect(o); }));
  return std::make_shared<tcp_client>(std::move(c), db);
}

std::string node_at(const std::string& address, double timeout, bool tls, std::optional<std::string> tls_ca) {
  remote_options o{{address}, "", "", std::chrono::milliseconds(static_cast<long>(timeout * 1000))};
  o.tls = tls;
  o.tls_ca = tls_ca.value_or("");
  return unwrap(blocking([o] { return remote_client::node_at(o); }));
}

// A runtime alone (no node), for experiments with processes.
class py_runtime {
 public:
  py_runtime(unsigned threads, std::string node_name) {
    runtime_options options;
    options.threads = threads;
    options.node_name = std::move(node_name);
    py::gil_scoped_release nogil;
    rt_ = std::make_unique<runtime>(std::move(options));
  }
  ~py_runtime() {
    py::gil_scoped_release nogil;
    rt_.reset();
  }
  void stop() {
    py::gil_scoped_release nogil;
    rt_->stop();
  }
  bool running() const { return rt_->running(); }
  unsigned threads() const { return rt_->thread_count(); }
  std::size_t process_count() const { return rt_->process_count(); }
  std::string node() const { return node_name(rt_->node()); }

  double ping_pong(long rounds, bool same_thread) {
    if (rounds < 0) raise(error{errc::bad_argument, "rounds must be >= 0"});
    check_running();
    runtime* rt = rt_.get();
    auto r = blocking([rt, rounds, same_thread]() -> result<double> {
      inbox done = rt->open_inbox();
      const pid report = done.self();
      auto ponger = rt->spawn(
          [] {
            for (;;) {
              auto m = this_process::receive_as<pid>();
              this_process::send(*m, this_process::self());
            }
          },
          {.thread = 0});
      if (!ponger) return ponger.err();
      const int thread = same_thread || rt->thread_count() == 1 ? 0 : 1;
      auto pinger = rt->spawn(
          [rounds, report, ponger = *ponger] {
            const auto t0 = std::chrono::steady_clock::now();
            for (long i = 0; i < rounds; ++i) {
              this_process::send(ponger, this_process::self());
              this_process::receive_as<pid>();
            }
            std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
            this_process::exit(ponger, exit_reason::kill());
            this_process::send(report, took.count());
          },
          {.thread = thread});
      if (!pinger) return pinger.err();
      auto took = done.receive_as<double>();
      if (!took) return error{errc::not_running, "the runtime stopped during ping_pong"};
      return *took;
    });
    return unwrap(std::move(r));
  }

  void sleep(double seconds) {
    check_running();
    runtime* rt = rt_.get();
    auto r = blocking([rt, seconds]() -> result<bool> {
      inbox done = rt->open_inbox();
      auto d = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
      auto p = rt->spawn([d, report = done.self()] {
        this_process::sleep_for(d);
        this_process::send(report, true);
      });
      if (!p) return p.err();
      if (!done.receive_as<bool>()) return error{errc::not_running, "the runtime stopped during sleep"};
      return true;
    });
    (void)unwrap(std::move(r));
  }

 private:
  void check_running() const {
    if (!rt_->running()) raise(error{errc::not_running, "this runtime has been stopped; create a new one"});
  }
  std::unique_ptr<runtime> rt_;
};

// Calls a client operation without the GIL (interruptibly from the main thread).
// [(key, value bytes)] from a msgpack array of values, one per key.
std::vector<std::pair<std::string, std::string>> split_packed_array(const std::string& packed,
                                                                    const std::vector<std::string>& keys) {
  std::string_view rest(packed);
  std::size_t n = 0, header = 0;
  const auto b = rest.empty() ? 0u : static_cast<unsigned char>(rest[0]);
  auto be = [&](std::size_t at, std::size_t len) {
    std::size_t v = 0;
    for (std::size_t i = 0; i < len; ++i) v = v << 8 | static_cast<unsigned char>(rest[at + i]);
    return v;
  };
  if (b >= 0x90 && b <= 0x9f) {
    n = b & 0x0f;
    header = 1;
  } else if (b == 0xdc && rest.size() >= 3) {
    n = be(1, 2);
    header = 3;
  } else if (b == 0xdd && rest.size() >= 5) {
    n = be(1, 4);
    header = 5;
  } else {
    raise(error{errc::bad_argument, "the values are not a packed msgpack array"});
  }
  if (n != keys.size()) raise(error{errc::bad_argument, "as many values as keys are needed"});
  rest.remove_prefix(header);
  std::vector<std::pair<std::string, std::string>> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto size = wire::check_msgpack(rest);
    if (!size) raise(error{errc::bad_argument, "a packed value is not msgpack: " + size.err().message});
    items.emplace_back(keys[i], std::string(rest.substr(0, *size)));
    rest.remove_prefix(*size);
  }
  return items;
}

// A client's call: on this thread, the GIL released, for a client whose
// waits notice Ctrl-C (a TCP client); else through blocking(). A signal
// handler's exception (KeyboardInterrupt) is raised when the call returns.
template <class F>
auto calling(const std::shared_ptr<py_client>& c, F f) -> decltype(f(*c)) {
  if (!c->interruptible()) return blocking([c, f]() { return f(*c); });
  std::optional<decltype(f(*c))> r;
  {
    py::gil_scoped_release nogil;
    r.emplace(f(*c));
  }
  if (PyErr_Occurred() != nullptr) throw py::error_already_set();
  return std::move(*r);
}

template <class F>
auto op(const std::shared_ptr<py_client>& c, F f) {
  return unwrap(calling(c, f));
}

}  // namespace
}  // namespace panal::python

PYBIND11_MODULE(_core, m) {
  using namespace panal::python;
  g_main_thread = std::this_thread::get_id();
  panal::db::register_types();
  m.doc() = "panal's C++ core (use the `panal` package, not this module directly)";
  m.attr("__version__") = PANAL_VERSION;

  py::class_<py_client, std::shared_ptr<py_client>>(m, "RawClient", "Byte-level client; see panal.Client.")
      .def("get", [](const std::shared_ptr<py_client>& c, const std::string& k) -> py::object {
        auto v = op(c, [k](py_client& x) { return x.get(k); });
        if (!v) return py::none();
        return as_bytes(*v);
      })
      .def("set", [](const std::shared_ptr<py_client>& c, const std::string& k, const std::string& v) {
        op(c, [k, v](py_client& x) { return x.set(k, v); });
      })
      .def("remove", [](const std::shared_ptr<py_client>& c, const std::string& k) {
        return op(c, [k](py_client& x) { return x.remove(k); });
      })
      .def("exists", [](const std::shared_ptr<py_client>& c, const std::string& k) {
        return op(c, [k](py_client& x) { return x.exists(k); });
      })
      .def("unsafe_set", [](const std::shared_ptr<py_client>& c, const std::string& k, const std::string& v) {
        op(c, [k, v](py_client& x) { return x.unsafe_set(k, v); });
      })
      // The values of a batch as one msgpack array (nil for a missing key)
      // and the indices of the missing: Python unpacks them in one call.
      .def("mget_packed", [](const std::shared_ptr<py_client>& c, const py::sequence& keys) {
        // The keys are read in place: a tuple holds them (and their UTF-8,
        // cached in each str) while the GIL is released. Through a helper
        // thread (blocking()), which may outlive this call, they are copied.
        const py::tuple held(keys);
        std::vector<std::string_view> ks;
        ks.reserve(held.size());
        for (const py::handle k : held) {
          char* data = nullptr;
          Py_ssize_t size = 0;
          if (PyUnicode_Check(k.ptr())) {
            const char* utf8 = PyUnicode_AsUTF8AndSize(k.ptr(), &size);
            if (utf8 == nullptr) throw py::error_already_set();
            ks.emplace_back(utf8, static_cast<std::size_t>(size));
          } else if (PyBytes_Check(k.ptr()) && PyBytes_AsStringAndSize(k.ptr(), &data, &size) == 0) {
            ks.emplace_back(data, static_cast<std::size_t>(size));
          } else {
            throw py::type_error("keys must be str or bytes");
          }
        }
        auto vs = c->interruptible()
                      ? op(c, [&ks](py_client& x) { return x.mget_views(ks); })
                      : op(c, [copies = std::vector<std::string>(ks.begin(), ks.end())](py_client& x) {
                          return x.mget(copies);
                        });
        std::string blob;
        std::size_t bytes = 5;
        for (auto& v : vs) bytes += v ? v->size() : 1;
        blob.reserve(bytes);
        const auto n = static_cast<std::uint32_t>(vs.size());
        blob += static_cast<char>(0xdd);  // array 32
        for (int shift = 24; shift >= 0; shift -= 8) blob += static_cast<char>((n >> shift) & 0xff);
        py::list missing;
        for (std::size_t i = 0; i < vs.size(); ++i) {
          if (vs[i]) {
            blob += *vs[i];
          } else {
            blob += static_cast<char>(0xc0);  // nil
            missing.append(i);
          }
        }
        return py::make_tuple(as_bytes(blob), missing);
      })
      // Keys and their values packed as one msgpack array (one packb call in Python).
      .def("mset_packed", [](const std::shared_ptr<py_client>& c, const std::vector<std::string>& ks,
                             const std::string& packed) {
        auto items = split_packed_array(packed, ks);
        op(c, [items = std::move(items)](py_client& x) { return x.mset(items); });
      })
      // ops: [(kind 1 get / 2 set / 3 remove / 4 exists, key bytes, value bytes)]
      // -> [(code, message, found, value bytes or None)]
      .def("batch", [](const std::shared_ptr<py_client>& c, const std::vector<std::tuple<int, std::string, std::string>>& in) {
        std::vector<panal::batch_op> ops;
        ops.reserve(in.size());
        for (auto& [kind, k, v] : in) {
          if (kind < 1 || kind > 4) raise(panal::error{panal::errc::bad_argument, "unknown batch operation " + std::to_string(kind)});
          ops.push_back({static_cast<panal::batch_kind>(kind), k, v});
        }
        auto rs = calling(c, [ops = std::move(ops)](py_client& x) { return x.batch(ops); });
        py::list out;
        for (auto& r : rs) {
          out.append(py::make_tuple(static_cast<int>(r.code), r.message, r.found,
                                    r.found && !r.value.empty() ? py::object(as_bytes(r.value)) : py::none()));
        }
        return out;
      })
      .def("close", [](const std::shared_ptr<py_client>& c) {
        py::gil_scoped_release nogil;
        c->close();
      })
      .def("set_timeout", [](const std::shared_ptr<py_client>& c, double s) { c->set_timeout(s); })
      .def("describe", [](const std::shared_ptr<py_client>& c) { return c->describe(); })
      .def("sessions", [](const std::shared_ptr<py_client>& c) { return c->sessions(); });

  py::class_<py_node>(m, "RawNode", "The C++ node; see panal.Node.")
      .def(py::init<const std::string&, std::optional<std::string>, std::optional<std::string>, std::optional<unsigned>,
                    double, double, double, std::uint32_t, std::size_t, std::optional<std::string>,
                    std::optional<std::string>, std::optional<std::string>, std::optional<std::string>>(),
           py::arg("name"), py::arg("cookie") = py::none(), py::arg("cookie_file") = py::none(),
           py::arg("threads") = py::none(), py::arg("tick") = 1.0, py::arg("down_after") = 4.0,
           py::arg("spin") = 50e-6, py::arg("max_sessions") = 1024, py::arg("max_send_queue") = 256u << 20,
           py::arg("tls_cert") = py::none(), py::arg("tls_key") = py::none(), py::arg("tls_ca") = py::none(),
           py::arg("http") = py::none())
      .def("stop", &py_node::stop)
      .def("metrics", &py_node::metrics, py::arg("node") = "")
      .def("processes", &py_node::processes, py::arg("node") = "")
      .def_property_readonly("http_port", &py_node::http_port)
      .def("view_json", &py_node::view_json)
      .def_property_readonly("running", &py_node::running)
      .def_property_readonly("name", &py_node::name)
      .def("connect", &py_node::connect)
      .def("nodes", &py_node::nodes)
      .def("start_server", &py_node::start_server)
      .def("start_data", &py_node::start_data)
      .def("stop_data", &py_node::stop_data)
      .def("slot_map", &py_node::slot_map)
      .def("locate", &py_node::locate)
      .def("start_client", &py_node::start_client)
      .def("groups", &py_node::groups)
      .def("master", &py_node::master)
      .def("databases", &py_node::databases)
      .def("stats", &py_node::stats)
      .def("kill", &py_node::kill)
      .def("supervision", &py_node::supervision, py::arg("node") = "");

  m.def("connect_tcp", &connect_tcp, py::arg("addresses"), py::arg("db"), py::arg("token") = py::none(),
        py::arg("timeout") = 5.0, py::arg("tls") = false, py::arg("tls_ca") = py::none(), py::arg("route") = true,
        py::arg("spin") = 50e-6);
  m.def("node_at", &node_at, py::arg("address"), py::arg("timeout") = 5.0, py::arg("tls") = false,
        py::arg("tls_ca") = py::none(), "The name of the node at host:port (it says it in its WELCOME).");

  py::class_<py_runtime>(m, "Runtime", R"doc(
The process runtime alone: scheduler threads running lightweight processes.

It runs in background threads of this Python process. `stop()` ends every
process and joins the threads; a new Runtime can be started afterwards.
)doc")
      .def(py::init<unsigned, std::string>(), py::arg("threads") = 0, py::arg("node_name") = "nonode@nohost",
           "Starts `threads` scheduler threads (0: one per CPU).")
      .def("stop", &py_runtime::stop, "Kills all processes and joins the threads. Idempotent.")
      .def_property_readonly("running", &py_runtime::running)
      .def_property_readonly("threads", &py_runtime::threads)
      .def_property_readonly("process_count", &py_runtime::process_count, "Live processes.")
      .def_property_readonly("node", &py_runtime::node, "The node name.")
      .def("ping_pong", &py_runtime::ping_pong, py::arg("rounds"), py::arg("same_thread") = true,
           "Two processes exchange `rounds` round trips; returns the seconds taken.")
      .def("sleep", &py_runtime::sleep, py::arg("seconds"),
           "Waits for a process that sleeps `seconds` (the GIL is released).");

  m.def(
      "set_log_level",
      [](const std::string& level) {
        panal::log::level l;
        if (!panal::log::parse_level(level, l)) {
          throw py::value_error("log level must be one of debug, info, warn, error, off");
        }
        panal::log::set_level(l);
      },
      py::arg("level"), "Sets the C++ log level: debug, info, warn, error or off.");
}
