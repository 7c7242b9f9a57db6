#include "client/remote_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "db/client_protocol.h"
#include "wire/frame.h"

namespace panal {

namespace cp = db::client_protocol;
using steady = std::chrono::steady_clock;
constexpr std::size_t kFrameOverhead = 64;  // a request's frame beyond its key and value (ids, op, header)

namespace {

using db::op;

struct answer {
  errc code = errc::ok;
  std::string message;
  bool found = false;
  std::string value;
};

result<int> dial(const std::string& address, std::chrono::milliseconds timeout) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return {errc::bad_argument, "address '" + address + "' is not host:port"};
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (auto at = host.find('@'); at != std::string::npos) host = host.substr(at + 1);  // a node name works too
  addrinfo hints{};
  hints.ai_family = AF_INET;  // nodes listen on IPv4
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return {errc::bad_argument, "cannot resolve " + address};
  }
  // Non-blocking, so that an address that drops packets costs `timeout`
  // and not the kernel's minutes of SYN retries.
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int rc = fd < 0 ? -1 : ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc != 0 && fd >= 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (ready == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) rc = 0;
    else if (ready >= 0) errno = ready == 0 ? ETIMEDOUT : err;  // ready < 0: poll's own errno stands
  }
  if (rc != 0) {
    const int why = errno;
    if (fd >= 0) ::close(fd);
    return {errc::connection_lost, "cannot connect to " + address + ": " + std::strerror(why)};
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{static_cast<long>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

struct remote_client::impl {
  remote_options options;
  std::atomic<std::chrono::milliseconds::rep> timeout_ms{5000};

  std::uint64_t client_id = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32 | rd()) | 1;  // never 0
  }();

  std::mutex mutex;  // guards everything below
  std::condition_variable changed;
  std::uint64_t next_seq = 1;      // writes' numbers (kept across retries)
  std::set<std::uint64_t> open_writes;
  std::uint64_t max_key = 0, max_value = 0;  // the database's limits, from WELCOME
  int fd = -1;
  std::uint64_t session = 0;  // bumps on each (re)connection
  std::string node;
  std::size_t next_address = 0;
  std::uint64_t next_id = 1;
  struct slot {
    bool done = false;
    answer a;
  };
  std::unordered_map<std::uint64_t, std::shared_ptr<slot>> waiting;
  std::thread reader;
  bool closed = false;
  std::mutex write_mutex;  // one writer at a time on the socket

  bool opening = false;  // a thread is dialing (without `mutex`): the others wait for it

  // Opens a session on the next address that answers. Caller holds `mutex`;
  // it is released while dialing, so that other calls (and close()) are not
  // held up by an address that does not answer: they wait for the outcome
  // until their own deadline.
  result<void> open(std::unique_lock<std::mutex>& lock, steady::time_point deadline) {
    while (opening) {
      if (!changed.wait_until(lock, deadline, [&] { return !opening; })) {
        return {errc::timeout, "no session to a node in time (another call is still connecting)"};
      }
    }
    if (fd >= 0) return {};
    if (closed) return {errc::not_running, "the client is closed"};
    opening = true;
    struct done_opening {
      impl& self;
      ~done_opening() {
        self.opening = false;
        self.changed.notify_all();
      }
    } done{*this};
    const std::size_t first = next_address;
    // A dead address costs at most 2 s (or the client's timeout), then the next is tried.
    const auto dial_timeout = std::chrono::milliseconds(std::min<long>(timeout_ms.load(), 2000));
    lock.unlock();
    error last{errc::connection_lost, "no address to connect to"};
    int s = -1;
    welcome_info welcome;
    std::size_t tries = 0;
    for (; tries < options.addresses.size(); ++tries) {
      const std::string& address = options.addresses[(first + tries) % options.addresses.size()];
      auto fdr = dial(address, dial_timeout);
      if (!fdr) {
        last = fdr.err();
        continue;
      }
      auto w = handshake(*fdr);
      if (!w) {
        ::close(*fdr);
        last = w.err();
        if (w.code() == errc::unauthorized || w.code() == errc::bad_argument) break;  // the same on every node
        continue;  // unknown_db is one node's view of the registry, which may lag: try the others
      }
      s = *fdr;
      welcome = std::move(*w);
      break;
    }
    lock.lock();
    next_address = first + tries;
    if (s < 0) return last;
    if (closed) {
      ::close(s);
      return {errc::not_running, "the client is closed"};
    }
    fd = s;
    node = std::move(welcome.node);
    if (welcome.max_key != 0) {
      max_key = welcome.max_key;
      max_value = welcome.max_value;
    }
    {
      ++session;
      if (reader.joinable()) {
        lock.unlock();
        reader.join();
        lock.lock();
      }
      reader = std::thread([this, s, sess = session] { read_loop(s, sess); });
      return {};
    }
  }

  struct welcome_info {
    std::string node;
    std::uint64_t max_key = 0, max_value = 0;
  };
  result<welcome_info> handshake(int s) {
    if (!send_all(s, cp::encode_hello(options.db, options.token, client_id))) {
      return {errc::connection_lost, "send failed"};
    }
    wire::frame_reader frames(1u << 20);
    const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms.load());
    for (;;) {
      auto f = frames.next();
      if (!f) return f.err();
      if (*f) {
        auto w = cp::decode(**f);
        if (!w || w->kind != cp::welcome) return {errc::malformed, "the node did not answer with WELCOME"};
        if (w->code != 0) return {static_cast<errc>(w->code), w->message};
        return welcome_info{w->node, w->max_key, w->max_value};
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      pollfd p{s, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return {errc::timeout, "no WELCOME in time"};
      char* buf = frames.prepare(4096);
      const ssize_t n = ::recv(s, buf, 4096, 0);
      if (n <= 0) return {errc::connection_lost, "the node closed the connection"};
      frames.commit(static_cast<std::size_t>(n));
    }
  }

  void read_loop(int s, std::uint64_t sess) {
    wire::frame_reader frames(cp::max_frame);
    for (;;) {
      auto f = frames.next();
      if (!f) break;
      if (*f) {
        auto r = cp::decode(**f);
        if (!r || r->kind != cp::response) break;
        std::lock_guard lock(mutex);
        if (auto it = waiting.find(r->id); it != waiting.end()) {
          it->second->a = {static_cast<errc>(r->code), std::move(r->message), r->found, std::move(r->value)};
          it->second->done = true;
          waiting.erase(it);
          changed.notify_all();
        }
        continue;
      }
      char* buf = frames.prepare(64 * 1024);
      const ssize_t n = ::recv(s, buf, 64 * 1024, 0);
      if (n <= 0) break;
      frames.commit(static_cast<std::size_t>(n));
    }
    // The connection ended: everything still waiting on it may be retried.
    std::lock_guard lock(mutex);
    if (session == sess && fd == s) {
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
      fd = -1;
      ++next_address;  // fail over to the next node
    }
    for (auto& [id, w] : waiting) {
      w->a = {errc::connection_lost, "the connection to the node was lost", false, {}};
      w->done = true;
    }
    waiting.clear();
    changed.notify_all();
  }

  // Sends the ops and waits for all; retries the retryable ones until the deadline.
  std::vector<answer> run(const std::vector<std::tuple<op, std::string_view, std::string_view>>& ops) {
    // Writes are numbered once; every attempt carries the same number.
    std::vector<std::uint64_t> seqs(ops.size(), 0);
    {
      std::lock_guard lock(mutex);
      for (std::size_t i = 0; i < ops.size(); ++i) {
        const op kind = std::get<0>(ops[i]);
        if (kind == op::set || kind == op::remove) {
          seqs[i] = next_seq++;
          open_writes.insert(seqs[i]);
        }
      }
    }
    struct finish {
      impl& self;
      std::vector<std::uint64_t>& seqs;
      ~finish() {
        std::lock_guard lock(self.mutex);
        for (auto s : seqs) {
          if (s != 0) self.open_writes.erase(s);
        }
      }
    } finisher{*this, seqs};
    std::vector<answer> out(ops.size());
    std::vector<answer> last(ops.size());  // the latest retryable answer of each op
    std::vector<std::size_t> todo;
    todo.reserve(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
      // A request that cannot fit in one frame would only make the node
      // close the connection (and the retries send it again): refused here.
      const auto& [kind, key, value] = ops[i];
      if (key.size() + value.size() + kFrameOverhead > cp::max_frame) {
        out[i] = {errc::value_too_large,
                  "a request of " + std::to_string(key.size() + value.size()) + " bytes does not fit in a frame (" +
                      std::to_string(cp::max_frame) + " bytes)",
                  false,
                  {}};
      } else {
        todo.push_back(i);
      }
    }
    const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms.load());
    for (int attempt = 0; !todo.empty(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100, 5 << std::min(attempt, 5))));
      std::vector<std::pair<std::size_t, std::shared_ptr<slot>>> sent;
      std::string bytes;
      {
        std::unique_lock lock(mutex);
        if (closed) {
          for (std::size_t i : todo) out[i] = {errc::not_running, "the client is closed", false, {}};
          return out;
        }
        if (fd < 0) {
          if (auto o = open(lock, deadline); !o) {
            const bool retry = retryable(o.code()) && steady::now() < deadline;
            for (std::size_t i : todo) out[i] = {o.code(), o.err().message, false, {}};
            if (!retry) return out;
            continue;
          }
        }
        const std::uint64_t floor = open_writes.empty() ? next_seq : *open_writes.begin();
        for (std::size_t i : todo) {
          auto [kind, key, value] = ops[i];
          const std::uint64_t id = next_id++;
          cp::append_request(bytes, id, kind, key, value, {seqs[i], seqs[i] != 0 ? floor : 0, attempt > 0});
          if (kind == op::unsafe_set) continue;  // no answer comes
          auto w = std::make_shared<slot>();
          waiting.emplace(id, w);
          sent.emplace_back(i, w);
        }
      }
      todo.clear();
      int s;
      {
        std::lock_guard lock(mutex);
        s = fd;
      }
      bool written;
      {
        std::lock_guard w(write_mutex);
        written = s >= 0 && send_all(s, bytes);
      }
      std::unique_lock lock(mutex);
      if (!written && fd == s && s >= 0) ::shutdown(s, SHUT_RDWR);  // the reader fails what waits
      for (auto& [i, w] : sent) {
        if (!changed.wait_until(lock, deadline, [&] { return w->done; })) {
          out[i] = last[i].code != errc::ok ? last[i] : answer{errc::timeout, "no answer in time", false, {}};
          continue;
        }
        out[i] = std::move(w->a);
        if (retryable(out[i].code) && steady::now() < deadline) {
          last[i] = out[i];
          last[i].message += " (retried until the timeout)";
          todo.push_back(i);
        }
      }
      // Give up on what timed out (its answer, if any, is dropped).
      for (auto it = waiting.begin(); it != waiting.end();) {
        bool ours = false;
        for (auto& [i, w] : sent) ours |= it->second == w;
        it = ours ? waiting.erase(it) : std::next(it);
      }
    }
    return out;
  }
};

remote_client::remote_client(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

result<std::unique_ptr<remote_client>> remote_client::connect(remote_options options) {
  if (options.addresses.empty()) return {errc::bad_argument, "connect needs at least one address"};
  if (options.db.empty()) return {errc::bad_argument, "connect needs a database name"};
  auto i = std::make_unique<impl>();
  i->timeout_ms = options.timeout.count();
  i->options = std::move(options);
  {
    std::unique_lock lock(i->mutex);
    if (auto o = i->open(lock, steady::now() + i->options.timeout); !o) return o.err();
  }
  return std::unique_ptr<remote_client>(new remote_client(std::move(i)));
}

remote_client::~remote_client() { close(); }

void remote_client::close() {
  std::thread reader;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed) return;
    impl_->closed = true;
    if (impl_->fd >= 0) ::shutdown(impl_->fd, SHUT_RDWR);
    reader.swap(impl_->reader);
  }
  if (reader.joinable()) reader.join();
  std::lock_guard lock(impl_->mutex);
  if (impl_->fd >= 0) ::close(impl_->fd);
  impl_->fd = -1;
}

std::string remote_client::node() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->node;
}

void remote_client::set_timeout(std::chrono::milliseconds t) { impl_->timeout_ms = t.count(); }

namespace {
template <class T>
result<T> fail(const answer& a) {
  return error{a.code, a.message};
}
}  // namespace

result<std::optional<std::string>> remote_client::get(std::string_view key) {
  auto a = impl_->run({{op::get, key, {}}})[0];
  if (a.code != errc::ok) return fail<std::optional<std::string>>(a);
  if (!a.found) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(a.value)};
}

result<void> remote_client::set(std::string_view key, std::string_view value) {
  auto a = impl_->run({{op::set, key, value}})[0];
  if (a.code != errc::ok) return error{a.code, a.message};
  return {};
}

result<bool> remote_client::remove(std::string_view key) {
  auto a = impl_->run({{op::remove, key, {}}})[0];
  if (a.code != errc::ok) return fail<bool>(a);
  return a.found;
}

result<bool> remote_client::exists(std::string_view key) {
  auto a = impl_->run({{op::exists, key, {}}})[0];
  if (a.code != errc::ok) return fail<bool>(a);
  return a.found;
}

result<void> remote_client::unsafe_set(std::string_view key, std::string_view value) {
  auto a = impl_->run({{op::unsafe_set, key, value}})[0];
  if (a.code != errc::ok) return error{a.code, a.message};
  return {};
}

result<std::vector<std::optional<std::string>>> remote_client::mget(const std::vector<std::string>& keys) {
  std::vector<std::tuple<op, std::string_view, std::string_view>> ops;
  for (auto& k : keys) ops.emplace_back(op::get, k, std::string_view{});
  std::vector<std::optional<std::string>> out;
  for (auto& a : impl_->run(ops)) {
    if (a.code != errc::ok) return error{a.code, a.message};
    out.push_back(a.found ? std::optional<std::string>(std::move(a.value)) : std::nullopt);
  }
  return out;
}

result<void> remote_client::mset(const std::vector<std::pair<std::string, std::string>>& items) {
  std::uint64_t max_key, max_value;
  {
    std::lock_guard lock(impl_->mutex);
    max_key = impl_->max_key;
    max_value = impl_->max_value;
  }
  if (max_key != 0) {
    // Every item within the limits, or nothing is sent.
    for (auto& [k, v] : items) {
      if (k.empty()) return error{errc::bad_argument, "a key must not be empty"};
      if (k.size() > max_key) {
        return error{errc::key_too_large,
                     "key of " + std::to_string(k.size()) + " bytes; this database allows " + std::to_string(max_key)};
      }
      if (v.size() > max_value) {
        return error{errc::value_too_large, "value of " + std::to_string(v.size()) + " bytes; this database allows " +
                                                std::to_string(max_value)};
      }
    }
  }
  std::vector<std::tuple<op, std::string_view, std::string_view>> ops;
  for (auto& [k, v] : items) ops.emplace_back(op::set, k, v);
  for (auto& a : impl_->run(ops)) {
    if (a.code != errc::ok) return error{a.code, a.message};
  }
  return {};
}

}  // namespace panal
