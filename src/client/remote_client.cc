#include "client/remote_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "db/client_protocol.h"
#include "store/hash.h"
#include "util/pay_average.h"
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

std::string host_of(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (auto at = host.find('@'); at != std::string::npos) host = host.substr(at + 1);  // a node name works too
  return host;
}

// `blocking`: leave the socket blocking (plain TCP: reads block, writes
// time out by SO_SNDTIMEO); TLS wants it non-blocking (see link).
constexpr int kReadSliceMs = 50;

result<int> dial(const std::string& address, std::chrono::milliseconds timeout, bool blocking) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return {errc::bad_argument, "address '" + address + "' is not host:port"};
  std::string host = host_of(address), port = address.substr(colon + 1);
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
  if (blocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{static_cast<long>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // A blocking read waits at most one slice (then the caller looks at its
  // deadline and the interrupt check): one system call per answer, no poll.
  timeval slice{0, kReadSliceMs * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  return fd;
}

std::string tls_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "the connection was closed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// OpenSSL writes to the socket with write(), not send(MSG_NOSIGNAL): a
// node that closes the connection would kill a process that does not
// ignore SIGPIPE. Around each TLS call, SIGPIPE is blocked in the calling
// thread, and one it raised there is taken before it is unblocked.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~sigpipe_guard() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        const timespec zero{0, 0};
        (void)sigtimedwait(&pipe, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// What the socket reports within `timeout_ms` (0: nothing): `events` of
// it, and a hang-up or an error whether asked or not.
short poll_events(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) > 0 ? p.revents : 0;
}

bool wait_for(int fd, short events, int timeout_ms) { return poll_events(fd, events, timeout_ms) != 0; }

// One connection to a node: TCP, or TLS over it (OpenSSL). One caller at
// a time reads it (the one that holds `reading`) while one caller at a time
// (send) writes. With TLS both use one SSL object: each call takes
// `ssl_mutex` and never waits for the socket while it holds it (the socket
// is non-blocking: a call that would block lets go, polls, and tries again).
class link {
 public:
  link(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

  // The read side. `reading`, `ended`, `session` and `peer_name` are
  // guarded by the client's mutex; `frames` belongs to whoever holds `reading`.
  bool reading = false;  // a caller reads it now (and hands out what comes to every waiter)
  bool ended = false;    // its end was seen and what waited on it failed
  std::uint64_t session = 0;  // the home session's number (peers: 0)
  std::string peer_name;      // the node, for a routing session; empty: the home session
  wire::frame_reader frames{cp::max_frame};
  int fd() const { return fd_; }
  // TLS bytes already decrypted: readable without waiting for the socket.
  bool pending() {
    if (ssl_ == nullptr) return false;
    std::lock_guard lock(ssl_mutex_);
    return SSL_pending(ssl_) > 0;
  }
  ~link() {
    if (ssl_ != nullptr) {
      sigpipe_guard no_sigpipe;
      SSL_free(ssl_);
    }
    ::close(fd_);
  }
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  // Wakes the reader (its read fails) and fails later writes.
  void shutdown() {
    down_ = true;
    ::shutdown(fd_, SHUT_RDWR);
  }
  bool alive() const { return !down_; }
  // The node closed its end (or the connection failed), as the socket says
  // now, without reading it: a node that died, before a call notices.
  bool peer_closed() const { return poll_events(fd_, POLLRDHUP, 0) != 0; }

  // Held while a caller writes (send_some): one writer at a time.
  std::mutex& write_mutex() { return write_mutex_; }

  // What send_some needs before it can write more.
  static constexpr ssize_t kWantWrite = -1;  // room in the socket's buffer
  static constexpr ssize_t kWantRead = -2;   // TLS: the peer's bytes read first

  // Writes what the socket takes now, never waiting: the bytes written; 0
  // when the connection failed; kWantWrite / kWantRead when it takes
  // nothing now. Under write_mutex().
  ssize_t send_some(std::string_view bytes) {
    if (ssl_ == nullptr) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? kWantWrite : 0;
      return n;
    }
    std::lock_guard lock(ssl_mutex_);
    sigpipe_guard no_sigpipe;
    const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
    if (n > 0) return n;
    const int err = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_WRITE ? kWantWrite : err == SSL_ERROR_WANT_READ ? kWantRead : 0;
  }

  bool send_all(std::string_view bytes, int timeout_ms) {
    if (ssl_ == nullptr) {
      while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
      }
      return true;
    }
    const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
    while (!bytes.empty()) {
      int n, err;
      {
        std::lock_guard lock(ssl_mutex_);
        sigpipe_guard no_sigpipe;
        n = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
        err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
        if (n <= 0) ERR_clear_error();
      }
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      if (left <= 0) return false;
      if (err == SSL_ERROR_WANT_WRITE) (void)wait_for(fd_, POLLOUT, static_cast<int>(left));
      else if (err == SSL_ERROR_WANT_READ) (void)wait_for(fd_, POLLIN, std::min<int>(static_cast<int>(left), 10));
      else return false;
    }
    return true;
  }

  // Bytes read into `buf` (> 0); 0 when the connection ended or failed; -1
  // when nothing came (having waited at most `timeout_ms`, 0: not at all).
  ssize_t recv(char* buf, std::size_t size, int timeout_ms) {
    if (ssl_ == nullptr) {
      ssize_t n;
      if (timeout_ms >= kReadSliceMs) {
        n = ::recv(fd_, buf, size, 0);  // blocks one slice at most (SO_RCVTIMEO)
      } else {
        if (timeout_ms > 0 && !wait_for(fd_, POLLIN, timeout_ms)) return -1;
        n = ::recv(fd_, buf, size, MSG_DONTWAIT);
      }
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : 0;
      return n;
    }
    const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int n, err;
      {
        std::lock_guard lock(ssl_mutex_);
        sigpipe_guard no_sigpipe;  // a read may send (an alert, a key update)
        n = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
        err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
        if (n <= 0) ERR_clear_error();
      }
      if (n > 0) return n;
      int wait = -1;
      if (timeout_ms >= 0) {
        wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count());
        if (wait <= 0) return -1;
      }
      if (err == SSL_ERROR_WANT_READ) {
        if (!wait_for(fd_, POLLIN, wait) && timeout_ms >= 0) return -1;
      } else if (err == SSL_ERROR_WANT_WRITE) {
        (void)wait_for(fd_, POLLOUT, wait);
      } else {
        return 0;  // closed, or a TLS error
      }
    }
  }

 private:
  int fd_;
  SSL* ssl_;
  std::mutex ssl_mutex_;
  std::mutex write_mutex_;
  std::atomic<bool> down_{false};
};

// The TLS handshake as a client on a connected non-blocking socket; the
// node's certificate is checked against the CA file (and the host it was
// dialled at) when `ctx` verifies.
result<SSL*> tls_connect(SSL_CTX* ctx, int fd, const std::string& address, steady::time_point deadline) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return {errc::bad_argument, "TLS: " + tls_error_text()};
  SSL_set_fd(ssl, fd);
  SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const std::string host = host_of(address);
  in_addr ip{};
  if (::inet_pton(AF_INET, host.c_str(), &ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
  for (;;) {
    int r;
    {
      sigpipe_guard no_sigpipe;
      r = SSL_connect(ssl);
    }
    if (r == 1) return ssl;
    const int err = SSL_get_error(ssl, r);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && left > 0) {
      (void)wait_for(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, static_cast<int>(left));
      continue;
    }
    // Only a client that checks certificates can be refused for one (and
    // a handshake that ran out of time says so, whatever it had verified).
    const long verified = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 ? SSL_get_verify_result(ssl) : X509_V_OK;
    std::string why = tls_error_text();
    SSL_free(ssl);
    if (left <= 0) return {errc::timeout, "TLS handshake with " + address + " did not finish in time"};
    if (verified != X509_V_OK) {
      return {errc::unauthorized, "the certificate of " + address + " is not trusted: " +
                                      X509_verify_cert_error_string(verified)};
    }
    return {errc::connection_lost, "TLS handshake with " + address + " failed (does the node use TLS?): " + why};
  }
}

// The requests waiting for an answer, by id. Ids come from one counter, so
// a ring indexed by the id's low bits holds them without an allocation per
// request; it doubles (up to kMaxCells) when a cell is still taken by an
// older id, and past that the older one moves to a map on the side (a
// request that waits long while many others pass).
template <class T>
class id_table {
 public:
  void insert(std::uint64_t id, T* v) {
    if (cells_.empty()) cells_.resize(256);
    for (;;) {
      cell& c = cells_[id & (cells_.size() - 1)];
      if (c.value == nullptr) {
        c = {id, v};
        return;
      }
      if (cells_.size() >= kMaxCells) {
        overflow_.emplace(c.id, c.value);
        c = {id, v};
        return;
      }
      grow();
    }
  }
  T* find(std::uint64_t id) const {
    if (!cells_.empty()) {
      const cell& c = cells_[id & (cells_.size() - 1)];
      if (c.value != nullptr && c.id == id) return c.value;
    }
    if (overflow_.empty()) return nullptr;
    auto it = overflow_.find(id);
    return it == overflow_.end() ? nullptr : it->second;
  }
  void erase(std::uint64_t id) {
    if (!cells_.empty()) {
      cell& c = cells_[id & (cells_.size() - 1)];
      if (c.value != nullptr && c.id == id) {
        c.value = nullptr;
        return;
      }
    }
    overflow_.erase(id);
  }
  // Removes every entry for which `f` returns true.
  template <class F>
  void erase_if(F f) {
    for (cell& c : cells_) {
      if (c.value != nullptr && f(c.value)) c.value = nullptr;
    }
    std::erase_if(overflow_, [&](auto& kv) { return f(kv.second); });
  }

 private:
  static constexpr std::size_t kMaxCells = 1 << 16;
  struct cell {
    std::uint64_t id = 0;
    T* value = nullptr;
  };
  // Doubling keeps every live id in its own cell: ids that differ in their
  // low bits still do with one bit more.
  void grow() {
    std::vector<cell> old(cells_.size() * 2);
    old.swap(cells_);
    for (const cell& c : old) {
      if (c.value != nullptr) cells_[c.id & (cells_.size() - 1)] = c;
    }
  }
  std::vector<cell> cells_;
  std::unordered_map<std::uint64_t, T*> overflow_;
};

}  // namespace

struct remote_client::impl {
  ~impl() {
    if (tls_ctx != nullptr) SSL_CTX_free(tls_ctx);
  }
  remote_options options;
  SSL_CTX* tls_ctx = nullptr;  // with TLS
  std::atomic<std::chrono::milliseconds::rep> timeout_ms{5000};
  std::function<bool()> interrupt;  // set_interrupt_check
  // The client protocol version the next CLIENT_HELLO says: 3, or 2 once a
  // node refused 3 (a node not yet upgraded: no routing then).
  std::atomic<std::uint32_t> speaks{cp::version};
  static constexpr auto interrupt_every = std::chrono::milliseconds(50);
  // Whether the read spin (options.spin) finds the answers: callers on
  // several connections read at once, so it has a lock of its own.
  std::mutex spin_mutex;
  pay_average spin_pays;
  bool spin_now() {
    std::lock_guard lock(spin_mutex);
    return spin_pays.try_now();
  }
  void spun(bool answered) {
    std::lock_guard lock(spin_mutex);
    spin_pays.record(answered, /*on_at_once=*/true);  // after a batch or a slow spell, one hit is enough
  }

  // Sleeps `d`; true if interrupted meanwhile.
  bool sleep_interrupted(std::chrono::milliseconds d) {
    if (!interrupt) {
      std::this_thread::sleep_for(d);
      return false;
    }
    const auto until = steady::now() + d;
    for (auto now = steady::now(); now < until; now = steady::now()) {
      std::this_thread::sleep_for(std::min<steady::duration>(until - now, interrupt_every));
      if (interrupt()) return true;
    }
    return false;
  }

  std::uint64_t client_id = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32 | rd()) | 1;  // never 0
  }();

  std::mutex mutex;  // guards everything below
  std::condition_variable changed;
  std::uint64_t next_seq = 1;      // writes' numbers (kept across retries)
  std::set<std::uint64_t> open_writes;
  std::uint64_t max_key = 0, max_value = 0;  // the database's limits, from WELCOME
  // The home session: the first of `options.addresses` that answers. Every
  // request may go through it; routing only saves the hop to the primary.
  std::shared_ptr<link> conn;  // null while there is no session
  std::uint64_t session = 0;  // bumps on each (re)connection
  std::string node;
  std::size_t next_address = 0;
  std::uint64_t next_id = 1;
  struct slot {
    bool done = false;
    answer a;
    std::size_t* left = nullptr;  // the answers its batch still waits for (run() wakes at 0)
    const link* via = nullptr;    // the connection it was sent on (its loss fails it)
  };
  // One answer arrived (or will not): its caller wakes when its batch is
  // complete, not at every answer (a batch of 100 made 100 wake-ups).
  void finish(slot& w) {
    w.done = true;
    if (w.left != nullptr && --*w.left == 0) changed.notify_all();
  }
  id_table<slot> waiting;  // the slots live in their run() call, which erases them before it returns
  bool closed = false;

  bool opening = false;  // a thread is dialing (without `mutex`): the others wait for it

  // Routing (options.route): the newest ROUTE_MAP, and a session on each
  // node that is some slot's primary, opened on first use.
  struct route_table {
    std::uint64_t generation = 0;
    std::uint32_t epoch = 0;
    std::vector<std::string> nodes;
    std::vector<std::uint16_t> primary;  // per slot; empty: no map
    steady::time_point fetched{};
  } table;
  std::uint64_t route_ask = 0;        // id of the ROUTE_REQUEST in flight (0: none)
  steady::time_point route_asked{};
  bool route_stale = false;            // a lost connection or `moved`: ask again now
  static constexpr auto route_max_age = std::chrono::seconds(1);
  struct peer {
    std::shared_ptr<link> conn;
    std::thread dialer;  // opens the session, then ends
    bool opening = false;
    steady::time_point retry_after{};  // after a failed dial, requests go home until then
  };
  std::unordered_map<std::string, peer> peers;  // by node name; never the home node
  // unsafe_set() gets no answer, so a later request of its key must take
  // the same connection (one session handles its requests in order): the
  // connection the latest unsafe_set of each pin went through, while it lives.
  std::unordered_map<std::uint32_t, std::weak_ptr<link>> unsafe_via;  // by pin (link_for)

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
    if (conn) return {};
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
    std::shared_ptr<link> s;
    welcome_info welcome;
    std::size_t tries = 0;
    for (; tries < options.addresses.size(); ++tries) {
      if (tries > 0 && interrupt && interrupt()) {
        last = {errc::timeout, "interrupted"};
        break;
      }
      auto w = open_link(options.addresses[(first + tries) % options.addresses.size()], dial_timeout,
                         std::chrono::milliseconds(timeout_ms.load()));
      if (!w && w.code() == errc::bad_argument && w.err().message == cp::unsupported_version &&
          speaks.load() > cp::oldest_version) {
        speaks = cp::oldest_version;  // an older node: say 2 (and route nothing), to it and from now on
        w = open_link(options.addresses[(first + tries) % options.addresses.size()], dial_timeout,
                      std::chrono::milliseconds(timeout_ms.load()));
      }
      if (!w) {
        last = w.err();
        // The same on every node: a wrong key, bad input, an untrusted certificate.
        if (w.code() == errc::unauthorized || w.code() == errc::bad_argument) break;
        continue;  // unknown_db is one node's view of the registry, which may lag: try the others
      }
      s = std::move(w->conn);
      welcome = std::move(*w);
      break;
    }
    lock.lock();
    next_address = first + tries;
    if (!s) return last;
    if (closed) return {errc::not_running, "the client is closed"};
    conn = s;
    node = std::move(welcome.node);
    if (welcome.max_key != 0) {
      max_key = welcome.max_key;
      max_value = welcome.max_value;
    }
    ++session;
    s->session = session;
    route_ask = 0;  // one asked on the last session is not coming
    return {};
  }

  struct welcome_info {
    std::shared_ptr<link> conn;
    std::string node;
    std::uint64_t max_key = 0, max_value = 0;
  };
  // Dials `address`, with TLS if the client uses it, and opens a session.
  result<welcome_info> open_link(const std::string& address, std::chrono::milliseconds dial_timeout,
                                 std::chrono::milliseconds welcome_timeout) {
    auto l = dial_link(address, dial_timeout);
    if (!l) return l.err();
    auto w = hello(**l, options.db, welcome_timeout);
    if (!w) return w.err();
    if (w->code != 0) return {static_cast<errc>(w->code), w->message};
    return welcome_info{std::move(*l), std::move(w->node), w->max_key, w->max_value};
  }

  // A connection to `address`, with TLS if the client uses it.
  result<std::shared_ptr<link>> dial_link(const std::string& address, std::chrono::milliseconds dial_timeout) {
    auto fdr = dial(address, dial_timeout, tls_ctx == nullptr);
    if (!fdr) return fdr.err();
    SSL* ssl = nullptr;
    if (tls_ctx != nullptr) {
      auto t = tls_connect(tls_ctx, *fdr, address, steady::now() + dial_timeout);
      if (!t) {
        ::close(*fdr);
        return t.err();
      }
      ssl = *t;
    }
    return std::make_shared<link>(*fdr, ssl);
  }

  // Says HELLO for `db` and reads the node's WELCOME, a refusal included
  // (its code is the frame's: a refusal names the node too).
  result<cp::frame> hello(link& s, std::string_view db, std::chrono::milliseconds timeout) {
    if (!s.send_all(cp::encode_hello(db, options.token, client_id, speaks.load()), static_cast<int>(timeout.count()))) {
      return {errc::connection_lost, "send failed"};
    }
    wire::frame_reader frames(1u << 20);
    const auto deadline = steady::now() + timeout;
    for (;;) {
      auto f = frames.next();
      if (!f) return f.err();
      if (*f) {
        auto w = cp::decode(**f);
        if (!w || w->kind != cp::welcome) return {errc::malformed, "the node did not answer with WELCOME"};
        return w;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      char* buf = frames.prepare(4096);
      if (left <= 0) return {errc::timeout, "no WELCOME in time"};
      const ssize_t n = s.recv(buf, 4096, static_cast<int>(left));
      if (n < 0) continue;  // nothing yet: the deadline decides
      if (n == 0) {
        return {errc::connection_lost, tls_ctx != nullptr ? "the node closed the connection"
                                                           : "the node closed the connection before answering (does it require TLS?)"};
      }
      frames.commit(static_cast<std::size_t>(n));
    }
  }

  // The client's TLS settings (options.tls, options.tls_ca) as a context.
  result<void> use_tls() {
    if (!options.tls && options.tls_ca.empty()) return {};
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (tls_ctx == nullptr) return error{errc::bad_argument, "TLS: " + tls_error_text()};
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION);
    if (!options.tls_ca.empty()) {
      if (SSL_CTX_load_verify_locations(tls_ctx, options.tls_ca.c_str(), nullptr) != 1) {
        return error{errc::bad_argument, "cannot use TLS CA file " + options.tls_ca + ": " + tls_error_text()};
      }
      SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, nullptr);  // encrypted, but the node is not checked
    }
    return {};
  }

  // Hands out the frames `l` has buffered: answers to their waiters, maps
  // to the route table. A frame that makes no sense ends the connection.
  // Caller holds `mutex` and `l->reading`.
  void hand_out(const std::shared_ptr<link>& l) {
    for (;;) {
      auto f = l->frames.next();
      if (!f) return end_link(l);
      if (!*f) return;
      const std::string_view payload = **f;
      if (cp::kind_of(payload) == cp::route_map) {
        auto r = cp::decode_routes(payload);
        if (!r) return end_link(l);
        install_routes(std::move(*r));
        continue;
      }
      auto r = cp::decode_response(payload);
      if (!r) return end_link(l);
      if (slot* w = waiting.find(r->id)) {
        w->a = {static_cast<errc>(r->code), std::string(r->message), r->found, std::string(r->value)};
        if (r->code == static_cast<std::uint16_t>(errc::moved)) route_stale = true;
        finish(*w);
        waiting.erase(r->id);
      }
    }
  }

  // The connection ended: what waits on it may be retried (on another).
  // Caller holds `mutex`.
  void end_link(const std::shared_ptr<link>& l) {
    if (l->ended) return;
    l->ended = true;
    l->shutdown();
    if (l->peer_name.empty()) {
      if (session == l->session && conn == l) {
        conn.reset();
        route_ask = 0;
        ++next_address;  // fail over to the next node
      }
    } else if (auto it = peers.find(l->peer_name); it != peers.end() && it->second.conn == l) {
      it->second.conn.reset();
      it->second.retry_after = steady::now() + std::chrono::milliseconds(500);
    }
    route_stale = true;  // a node may have left: its slots have new primaries
    waiting.erase_if([&](slot* w) {
      if (w->via != l.get()) return false;
      w->a = {errc::connection_lost, "the connection to the node was lost", false, {}};
      finish(*w);
      return true;
    });
    changed.notify_all();
  }

  // Reads what the connections in `held` (whose `reading` the caller
  // holds) have, waiting at most `wait` for the first bytes: per
  // connection, the bytes read, 0 at its end, -1 if none came. Without `mutex`.
  void read_links(const std::vector<std::shared_ptr<link>>& held, std::chrono::milliseconds wait,
                  std::vector<ssize_t>& got) {
    constexpr std::size_t kChunk = 64 * 1024;
    got.assign(held.size(), -1);
    const int wait_ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(wait.count(), 0));
    if (held.size() == 1) {  // the common case: one system call, a blocking read
      char* buf = held[0]->frames.prepare(kChunk);
      if (options.spin.count() > 0 && wait_ms > 0 && spin_now()) {
        // Non-blocking reads for up to options.spin: on one machine a
        // node's answer usually comes before a blocked thread would have
        // woken; where answers take longer the spin stops (spin_pays).
        const auto until =
            steady::now() + std::min<steady::duration>(options.spin, std::chrono::milliseconds(wait_ms));
        do {
          got[0] = held[0]->recv(buf, kChunk, 0);
        } while (got[0] == -1 && steady::now() < until);
        spun(got[0] != -1);
        if (got[0] != -1) return;
      }
      got[0] = held[0]->recv(buf, kChunk, wait_ms);
      return;
    }
    std::vector<pollfd> fds;
    fds.reserve(held.size());
    bool ready_now = false;
    for (const auto& l : held) {
      fds.push_back({l->fd(), POLLIN, 0});
      ready_now = ready_now || l->pending();
    }
    if (::poll(fds.data(), fds.size(), ready_now ? 0 : wait_ms) < 0) return;
    for (std::size_t i = 0; i < held.size(); ++i) {
      if (fds[i].revents == 0 && !held[i]->pending()) continue;
      got[i] = held[i]->recv(held[i]->frames.prepare(kChunk), kChunk, 0);
    }
  }

  enum class sent_as { all, failed, interrupted };

  // Sends `bytes` on `to`, never blocked on the socket: what the socket
  // does not take at once is written as it drains, and what comes back
  // meanwhile is read (if no other caller reads the connection). A node
  // stops reading while its answers go unread, so a writer that only
  // waited to write could wait on a full socket until the deadline, and
  // two callers that each write while the other's answers fill the other
  // connection would wait on each other. The first try is one send(), as
  // a blocking write would be.
  sent_as send_reading(const std::shared_ptr<link>& to, std::string_view bytes, steady::time_point deadline) {
    std::lock_guard writing(to->write_mutex());
    bool mine = false;  // this caller holds the connection's `reading`
    struct let_go {
      impl& self;
      const std::shared_ptr<link>& to;
      bool& mine;
      ~let_go() {
        if (!mine) return;
        std::lock_guard lock(self.mutex);
        to->reading = false;
        self.changed.notify_all();
      }
    } free_it{*this, to, mine};
    auto next_check = steady::now() + interrupt_every;
    while (!bytes.empty()) {
      const ssize_t n = to->send_some(bytes);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return sent_as::failed;
      const auto now = steady::now();
      if (now >= deadline) return sent_as::failed;
      if (interrupt && now >= next_check) {
        if (interrupt()) return sent_as::interrupted;
        next_check = steady::now() + interrupt_every;
      }
      if (!mine) {
        std::lock_guard lock(mutex);
        if (to->ended) return sent_as::failed;
        if (!to->reading) mine = to->reading = true;
      }
      bool readable = mine && to->pending();
      if (!readable) {
        // Another caller that reads this connection hands out what it
        // reads, which frees room here: look again soon.
        const short want = n == link::kWantRead ? POLLIN : POLLOUT;
        pollfd p{to->fd(), static_cast<short>(want | (mine ? POLLIN : 0)), 0};
        const int wait_ms = mine ? static_cast<int>(interrupt_every.count()) : 1;
        readable = ::poll(&p, 1, wait_ms) > 0 && mine && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
      }
      if (!readable) continue;
      const ssize_t got = to->recv(to->frames.prepare(64 * 1024), 64 * 1024, 0);
      std::lock_guard lock(mutex);
      if (got > 0) {
        to->frames.commit(static_cast<std::size_t>(got));
        hand_out(to);
      } else if (got == 0) {
        end_link(to);
      }
      if (to->ended) return sent_as::failed;
    }
    return sent_as::all;
  }

  // Waits until `done()` (checked under `mutex`), the deadline, or the
  // interrupt check says stop (then `*stopped`). Meanwhile the caller
  // reads the connections in `links` itself, those no other caller reads
  // now, and hands out all that comes on them, to every waiter: an answer
  // wakes no second thread (a reader thread's hand-off cost a context
  // switch and a condition variable per call). A connection another caller
  // reads is left to it until it lets go. Caller holds `lock`.
  bool wait_reading(std::unique_lock<std::mutex>& lock, const std::vector<std::shared_ptr<link>>& links,
                    steady::time_point deadline, const std::function<bool()>& done, bool* stopped) {
    std::vector<std::shared_ptr<link>> held;
    std::vector<ssize_t> got;
    auto next_check = steady::now() + interrupt_every;
    auto any_free = [&] {
      return std::any_of(links.begin(), links.end(), [](const auto& l) { return l && !l->ended && !l->reading; });
    };
    struct let_go {  // however the wait ends, its connections are free again
      impl& self;
      std::unique_lock<std::mutex>& lock;
      std::vector<std::shared_ptr<link>>& held;
      ~let_go() {
        if (held.empty()) return;
        if (!lock.owns_lock()) lock.lock();
        for (auto& l : held) l->reading = false;
        self.changed.notify_all();  // a caller waiting for one of them reads it now
      }
    } free_them{*this, lock, held};
    for (;;) {
      if (done()) return true;
      auto now = steady::now();
      if (now >= deadline) return false;
      if (interrupt && now >= next_check) {
        // The check may take long (Python runs its signal handlers): the
        // connections go to other callers meanwhile.
        if (!held.empty()) {
          for (auto& l : held) l->reading = false;
          held.clear();
          changed.notify_all();
        }
        lock.unlock();
        const bool stop = interrupt();
        lock.lock();
        next_check = steady::now() + interrupt_every;
        if (stop) {
          if (stopped != nullptr) *stopped = true;
          return false;
        }
        continue;
      }
      const auto until = interrupt ? std::min(deadline, next_check) : deadline;
      std::erase_if(held, [](const auto& l) {  // an ended connection is nobody's to read
        if (!l->ended) return false;
        l->reading = false;
        return true;
      });
      bool others = false;  // some of `links` are read by other callers
      for (const auto& l : links) {
        if (!l || l->ended || std::find(held.begin(), held.end(), l) != held.end()) continue;
        if (l->reading) {
          others = true;
        } else {
          held.push_back(l);
          l->reading = true;
        }
      }
      if (held.empty()) {
        changed.wait_until(lock, until, [&] { return done() || any_free(); });
        continue;
      }
      // While others read some of our connections, their hand-outs (which
      // may finish us) come by `changed`, which a read does not see: short waits.
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - now);
      if (others) wait = std::min(wait, std::chrono::milliseconds(1));
      lock.unlock();
      read_links(held, wait, got);
      lock.lock();
      for (std::size_t i = 0; i < held.size(); ++i) {
        if (got[i] > 0) {
          held[i]->frames.commit(static_cast<std::size_t>(got[i]));
          hand_out(held[i]);
        } else if (got[i] == 0) {
          end_link(held[i]);
        }
      }
    }
  }

  // Asks the home session for the map and waits for it (or the deadline),
  // so that a new client routes from its first request.
  void fetch_routes(steady::time_point deadline) {
    std::unique_lock lock(mutex);
    if (!conn || speaks.load() < cp::version) return;
    const std::uint64_t id = route_ask = next_id++;
    route_asked = steady::now();
    std::shared_ptr<link> s = conn;
    lock.unlock();
    const sent_as sent = send_reading(s, cp::encode_route_request(id), deadline);
    lock.lock();
    if (sent != sent_as::all) return end_link(s);
    (void)wait_reading(lock, {s}, deadline, [&] { return route_ask != id; }, nullptr);
  }

  // Keeps a ROUTE_MAP unless an older one. Caller holds `mutex`.
  void install_routes(cp::routes&& r) {
    if (r.id == route_ask) route_ask = 0;
    table.fetched = steady::now();
    changed.notify_all();
    if (r.code != 0 || r.primary.empty()) return;  // the node has no map yet: keep what we have
    if (!table.primary.empty() &&
        (r.generation < table.generation || (r.generation == table.generation && r.epoch < table.epoch))) {
      return;
    }
    route_stale = false;
    table.generation = r.generation;
    table.epoch = r.epoch;
    table.nodes = std::move(r.nodes);
    table.primary = std::move(r.primary);
  }

  // Whether to ask for the map with this batch (then it takes an id).
  // Caller holds `mutex`.
  bool should_ask_routes(steady::time_point now) {
    if (!options.route || !conn || speaks.load() < cp::version) return false;
    if (route_ask != 0 && now - route_asked < std::chrono::milliseconds(timeout_ms.load())) return false;
    return table.primary.empty() ? now - table.fetched > std::chrono::milliseconds(100) || table.fetched == steady::time_point{}
                                 : route_stale || now - table.fetched > route_max_age;
  }

  // Starts opening a session on node `name` in a thread of its own, which
  // then reads it; requests go home until it is open. Caller holds `mutex`.
  void start_peer(const std::string& name) {
    if (closed) return;
    peer& p = peers[name];
    p.opening = true;
    p.dialer = std::thread([this, name, old = std::move(p.dialer)]() mutable {
      if (old.joinable()) old.join();  // the dialer of its last session
      const auto timeout = std::chrono::milliseconds(std::min<long>(timeout_ms.load(), 1000));
      auto w = open_link(name, timeout, timeout);
      std::lock_guard lock(mutex);
      peer& q = peers[name];
      q.opening = false;
      changed.notify_all();
      if (!w || closed) {
        // Unreachable from here (or not a node of ours): its requests go home for a while.
        q.retry_after = steady::now() + std::chrono::seconds(2);
        if (w) w->conn->shutdown();
        return;
      }
      w->conn->peer_name = name;
      q.conn = w->conn;
    });
  }

  // Starts a session on every node of the route table and waits (until
  // `deadline`) for them, so that a new client routes from its first call.
  void open_all_peers(steady::time_point deadline) {
    std::unique_lock lock(mutex);
    for (const auto& n : table.nodes) {
      if (n != node && !peers[n].conn && !peers[n].opening) start_peer(n);
    }
    (void)changed.wait_until(lock, deadline, [&] {
      return std::none_of(peers.begin(), peers.end(), [](const auto& kv) { return kv.second.opening; });
    });
  }

  // Where an op on `key` goes now (starting a session on its node if it
  // has none). Caller holds `mutex`.
  std::shared_ptr<link> link_for(std::string_view key, op kind) {
    if (!options.route) return conn;
    // The connection of the latest unsafe_set of the key's pin (its hash
    // mod 16384, known with or without a map), while it lives.
    const std::uint64_t hash = store::key_hash(key);
    const auto pin = static_cast<std::uint32_t>(hash % kPins);
    if (!unsafe_via.empty()) {
      if (auto it = unsafe_via.find(pin); it != unsafe_via.end()) {
        if (auto l = it->second.lock(); l && l->alive()) return l;
        unsafe_via.erase(it);
      }
    }
    std::shared_ptr<link> out = conn;
    if (!table.primary.empty()) {
      const std::uint16_t p = table.primary[hash % table.primary.size()];
      if (p != cp::routes::none && table.nodes[p] != node) {
        peer& q = peers[table.nodes[p]];
        if (q.conn) out = q.conn;
        else if (!q.opening && steady::now() >= q.retry_after) start_peer(table.nodes[p]);
      }
    }
    if (kind == op::unsafe_set && out) unsafe_via[pin] = out;
    return out;
  }
  static constexpr std::uint64_t kPins = 16384;

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
    struct sent_op {
      std::size_t i;
      std::uint64_t id;
      slot* w;
    };
    std::vector<slot> slots;  // this attempt's; `waiting` points into it until each is erased there
    struct outgoing {
      std::shared_ptr<link> to;
      std::string bytes;
    };
    std::vector<sent_op> sent;
    std::vector<outgoing> sends;  // one per connection this attempt uses
    auto stop_here = [&] {
      for (std::size_t i : todo) {
        if (out[i].code == errc::ok || retryable(out[i].code)) out[i] = {errc::timeout, "interrupted", false, {}};
      }
      return out;
    };
    for (int attempt = 0; !todo.empty(); ++attempt) {
      if (attempt > 0 && sleep_interrupted(std::chrono::milliseconds(std::min(100, 5 << std::min(attempt, 5))))) {
        return stop_here();
      }
      sent.clear();
      sends.clear();
      slots.clear();
      slots.reserve(todo.size());  // never reallocated while `waiting` points into it
      std::size_t left = 0;  // guarded by `mutex`, like the slots
      std::uint64_t asked = 0;  // the ROUTE_REQUEST this attempt sends (0: none)
      // However this attempt ends (an exception included), nothing in
      // `waiting` points into `slots` after it.
      struct unregister {
        impl& self;
        std::vector<sent_op>& sent;
        ~unregister() {
          std::lock_guard lock(self.mutex);
          for (const auto& s : sent) self.waiting.erase(s.id);
        }
      } unregister_at_end{*this, sent};
      {
        std::unique_lock lock(mutex);
        if (closed) {
          for (std::size_t i : todo) out[i] = {errc::not_running, "the client is closed", false, {}};
          return out;
        }
        if (!conn) {
          if (auto o = open(lock, deadline); !o) {
            const bool retry = retryable(o.code()) && steady::now() < deadline;
            for (std::size_t i : todo) out[i] = {o.code(), o.err().message, false, {}};
            if (!retry) return out;
            continue;
          }
        }
        const auto now = steady::now();
        asked = 0;
        if (should_ask_routes(now)) {
          asked = route_ask = next_id++;
          route_asked = now;
          sends.push_back({conn, cp::encode_route_request(route_ask)});
        }
        const std::uint64_t floor = open_writes.empty() ? next_seq : *open_writes.begin();
        for (std::size_t i : todo) {
          auto [kind, key, value] = ops[i];
          std::shared_ptr<link> to = link_for(key, kind);
          auto o = std::find_if(sends.begin(), sends.end(), [&](const outgoing& x) { return x.to == to; });
          if (o == sends.end()) {
            o = sends.insert(sends.end(), {to, {}});
            std::size_t estimate = 0;  // one allocation for the frames of a batch
            for (std::size_t j : todo) estimate += kFrameOverhead + std::get<1>(ops[j]).size() + std::get<2>(ops[j]).size();
            o->bytes.reserve(std::min<std::size_t>(estimate, 1u << 20));
          }
          const std::uint64_t id = next_id++;
          cp::append_request(o->bytes, id, kind, key, value, {seqs[i], seqs[i] != 0 ? floor : 0, attempt > 0});
          if (kind == op::unsafe_set) continue;  // no answer comes
          slot* w = &slots.emplace_back();
          w->left = &left;
          w->via = to.get();
          ++left;
          waiting.insert(id, w);
          sent.push_back({i, id, w});
        }
      }
      todo.clear();
      std::vector<std::shared_ptr<link>> links;
      links.reserve(sends.size());
      bool stopped = false;
      for (auto& [to, bytes] : sends) {
        // A write that did not finish ends the connection (a frame may be
        // cut): what waits on it fails (to be retried, unless interrupted),
        // and the next call opens another.
        const sent_as sent = stopped ? sent_as::interrupted : send_reading(to, bytes, deadline);
        if (sent != sent_as::all) {
          stopped = stopped || sent == sent_as::interrupted;
          std::lock_guard lock(mutex);
          end_link(to);
        }
        links.push_back(to);
      }
      std::unique_lock lock(mutex);
      // The map this batch asked for comes on the home connection: read it
      // too (else no later batch may ask again until the ask times out).
      if (!stopped) {
        (void)wait_reading(lock, links, deadline, [&] { return left == 0 && (asked == 0 || route_ask != asked); },
                           &stopped);
      }
      for (auto& [i, id, w] : sent) {
        if (!w->done) {
          out[i] = stopped ? answer{errc::timeout, "interrupted", false, {}}
                   : last[i].code != errc::ok ? last[i]
                                               : answer{errc::timeout, "no answer in time", false, {}};
          waiting.erase(id);  // given up: its answer, if any, is dropped
          continue;
        }
        out[i] = std::move(w->a);
        if (stopped && out[i].code == errc::connection_lost) out[i] = {errc::timeout, "interrupted", false, {}};
        if (!stopped && retryable(out[i].code) && steady::now() < deadline) {
          last[i] = out[i];
          last[i].message += " (retried until the timeout)";
          todo.push_back(i);
        }
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
  if (auto t = i->use_tls(); !t) return t.err();
  const auto deadline = steady::now() + i->options.timeout;
  {
    std::unique_lock lock(i->mutex);
    if (auto o = i->open(lock, deadline); !o) return o.err();
  }
  if (i->options.route) {
    i->fetch_routes(deadline);
    i->open_all_peers(deadline);
  }
  return std::unique_ptr<remote_client>(new remote_client(std::move(i)));
}

result<std::string> remote_client::node_at(remote_options options) {
  if (options.addresses.size() != 1) return {errc::bad_argument, "node_at needs one address"};
  auto i = std::make_unique<impl>();
  i->options = std::move(options);
  if (auto t = i->use_tls(); !t) return t.err();
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(i->options.timeout);
  auto l = i->dial_link(i->options.addresses[0], timeout);
  if (!l) return l.err();
  auto w = i->hello(**l, "", timeout);  // no database: every node refuses it, with its name
  if (!w) return w.err();
  if (w->node.empty()) return {errc::malformed, "the node's WELCOME has no name"};
  return std::move(w->node);
}

remote_client::~remote_client() { close(); }

void remote_client::close() {
  std::vector<std::thread> dialers;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed) return;
    impl_->closed = true;
    // A caller reading one of them sees its end and fails what waits on it.
    if (impl_->conn) impl_->conn->shutdown();
    for (auto& [name, p] : impl_->peers) {
      if (p.conn) p.conn->shutdown();
      dialers.push_back(std::move(p.dialer));
    }
  }
  for (auto& d : dialers) {
    if (d.joinable()) d.join();
  }
  std::lock_guard lock(impl_->mutex);
  impl_->conn.reset();
  impl_->peers.clear();
}

std::string remote_client::node() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->node;
}

std::vector<std::string> remote_client::sessions() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  for (const auto& [name, p] : impl_->peers) {
    if (p.conn && p.conn->alive() && !p.conn->peer_closed()) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  if (impl_->conn && impl_->conn->alive() && !impl_->conn->peer_closed()) out.insert(out.begin(), impl_->node);
  return out;
}

void remote_client::set_interrupt_check(std::function<bool()> check) { impl_->interrupt = std::move(check); }

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
  return mget_views(std::vector<std::string_view>(keys.begin(), keys.end()));
}

result<std::vector<std::optional<std::string>>> remote_client::mget_views(const std::vector<std::string_view>& keys) {
  std::vector<std::tuple<op, std::string_view, std::string_view>> ops;
  ops.reserve(keys.size());
  for (auto k : keys) ops.emplace_back(op::get, k, std::string_view{});
  std::vector<std::optional<std::string>> out;
  for (auto& a : impl_->run(ops)) {
    if (a.code != errc::ok) return error{a.code, a.message};
    out.push_back(a.found ? std::optional<std::string>(std::move(a.value)) : std::nullopt);
  }
  return out;
}

std::vector<batch_result> remote_client::batch(const std::vector<batch_op>& ops) {
  std::vector<batch_result> out;
  out.reserve(ops.size());
  for (auto [begin, end] : batch_waves(ops)) {
    std::vector<std::tuple<op, std::string_view, std::string_view>> wave;
    for (std::size_t i = begin; i < end; ++i) wave.emplace_back(static_cast<op>(ops[i].kind), ops[i].key, ops[i].value);
    for (auto& a : impl_->run(wave)) out.push_back({a.code, std::move(a.message), a.found, std::move(a.value)});
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
