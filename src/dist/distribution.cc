#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include "dist/distribution.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "dist/codec.h"
#include "dist/cookie.h"
#include "dist/node_name.h"
#include "dist/protocol.h"
#include "dist/stream.h"
#include "runtime/borrowed_acceptor.h"
#include "runtime/io.h"
#include "runtime/process.h"
#include "runtime/scheduler.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "util/log.h"
#include "wire/frame.h"

namespace panal::dist {

namespace tp = this_process;
using boost::asio::ip::tcp;
using detail::route;
using detail::signal;
using sk = signal::kind;

namespace {

constexpr const char* kControllerName = "panal_dist";
constexpr const char* kListenerName = "panal_listener";
constexpr int kMaxHandshakes = 64;  // unauthenticated connections at once
constexpr int kMaxSpawnsRunning = 64;  // remote starts at once (a peer's calls cannot pile up processes)
// A connector that was refused ends with this reason, then the peer's words;
// a refusal for the cookie is told apart by its words (connect(): unauthorized).
const std::string kRefused = "refused: ";
constexpr const char* kWrongCookie = "wrong cookie";
// The accepting side's answer to a dial that crosses its own (8.2).
constexpr const char* kCrossing = "crossing dial: the lower-named node's connection is kept";

// ---- messages on the wire between controllers ---------------------------------

struct spawn_request {
  std::string fn;
  std::string args;
  MSGPACK_DEFINE(fn, args);
};
struct spawn_reply {
  bool ok = false;
  pid started;
  int code = 0;
  std::string error;
  MSGPACK_DEFINE(ok, started, code, error);
};

// ---- local messages -------------------------------------------------------------

struct outgoing {
  std::string bytes;  // one or more whole frames
};
struct conn_state;
struct ctl_connect {
  std::string node;
  // Keep dialling it after a failure (an explicit connect); false for a
  // call's connect (call_named): a name that never answered is forgotten.
  bool keep_trying = true;
};
struct ctl_conn_ready {
  std::string node;
  std::uint32_t incarnation;
  pid reader;
  pid writer;
  std::shared_ptr<conn_state> state;
  bool initiated_here;
};
// From an accepting connection, once the dialer proved the cookie: may it
// go on? (false: this node dials that node itself and has the lower name)
struct ctl_crossing {
  std::string node;
};
struct ctl_peers {
  std::vector<std::string> nodes;
};
struct ctl_reconnect {};
struct ctl_stop {};

// The state of one connection, shared by its reader and writer processes
// (both on one thread), its watchdog timer, and forward() on any thread.
struct conn_state {
  explicit conn_state(stream s) : conn(std::move(s)), watchdog(conn.socket().get_executor()) {}

  // Guarded by `mutex`: what crosses this connection and must hear of its end.
  std::mutex mutex;
  bool closed = false;
  std::set<std::pair<pid, pid>> links;                // (local, remote)
  std::map<ref, std::pair<pid, pid>> monitors_out;    // tag -> (local watcher, remote target)
  std::map<ref, std::pair<pid, pid>> monitors_in;     // tag -> (remote watcher, local target)

  // The connection's own thread only.
  stream conn;
  boost::asio::steady_timer watchdog;
  std::atomic<clock::time_point> last_rx{clock::now()};  // read by silence() from any thread
  // Bytes sent to the writer and not yet taken by it; once past
  // max_send_queue the connection is given up and nothing more is queued.
  std::atomic<std::size_t> queued{0};
  std::atomic<bool> overflowed{false};
  std::string peer;
  std::uint32_t peer_node = 0;
  std::uint32_t peer_incarnation = 0;
  pid writer;
  std::uint64_t id = 0;        // set when the controller accepted the connection
  exit_reason why_closed = exit_reason::noconnection();
};

// Bookkeeping of a signal crossing the connection; local->remote when
// `outbound`. Caller holds st.mutex.
void record(conn_state& st, const signal& s, bool outbound) {
  const pid& local = outbound ? s.from : s.to;
  const pid& remote = outbound ? s.to : s.from;
  switch (s.what) {
    case sk::link: st.links.emplace(local, remote); break;
    case sk::unlink:
    case sk::link_exit: st.links.erase({local, remote}); break;
    case sk::monitor:
      if (outbound) st.monitors_out[s.tag] = {local, remote};
      else st.monitors_in[s.tag] = {remote, local};
      break;
    case sk::demonitor:
      if (outbound) st.monitors_out.erase(s.tag);
      else st.monitors_in.erase(s.tag);
      break;
    case sk::down:
      if (outbound) st.monitors_in.erase(s.tag);
      else st.monitors_out.erase(s.tag);
      break;
    default: break;
  }
}

// Tells a linker or monitor that its peer is unreachable.
void answer_unreachable(runtime& rt, const signal& s, const exit_reason& why) {
  if (s.what == sk::link) route(rt, signal{sk::link_exit, s.to, s.from, {}, why});
  if (s.what == sk::monitor) route(rt, signal{sk::down, s.to, s.from, s.tag, why});
}

}  // namespace

struct conn_entry {
  std::string node;
  std::uint32_t incarnation = 0;
  pid reader;
  pid writer;
  std::shared_ptr<conn_state> state;
  bool initiated_here = false;
  std::uint64_t id = 0;  // its number (node_up.connection)
};

struct distribution::impl final : remote_router, std::enable_shared_from_this<distribution::impl> {
  impl(runtime& r, dist_options o) : rt(r), opts(std::move(o)) {}

  runtime& rt;
  dist_options opts;
  std::string my_name;
  int listen_fd = -1;  // owned here: a restarted listener takes it up again
  std::optional<tls_contexts> tls;  // when the node speaks TLS
  std::atomic<bool> stopped{false};
  pid controller() const { return rt.whereis(kControllerName); }

  // The controller's state, kept out of the process so that a restarted
  // controller carries on with it. Only the (one) controller touches it.
  struct known_node {
    clock::time_point last_up;
    clock::time_point next_try{};
    pid connector;  // non-null while a connection attempt runs
    ref watch;      // the controller's monitor on it
    bool transient = false;  // only a call asked for it and it was never up: forgotten when a dial fails
    clock::time_point accepting_until{};  // a connection from it is in its handshake: no dial meanwhile
  };
  std::map<std::string, known_node> known;

  mutable std::shared_mutex conns_mutex;
  std::unordered_map<std::uint32_t, conn_entry> conns;  // by node index

  std::mutex spawns_mutex;
  std::unordered_map<std::string, spawn_fn> spawns;

  std::mutex client_mutex;
  client_handler on_client;

  mutable std::mutex blocked_mutex;
  std::set<std::string> blocked;  // partition(): no connection with these
  bool is_blocked(const std::string& node) const {
    std::lock_guard lock(blocked_mutex);
    return blocked.count(node) != 0;
  }

  std::mutex watchers_mutex;
  std::vector<pid> node_watchers;
  std::atomic<std::uint64_t> next_connection{1};
  std::vector<pid> watchers() {
    std::lock_guard lock(watchers_mutex);
    return node_watchers;
  }

  void forward(signal&& s) override;
  std::optional<conn_entry> find(std::uint32_t node) const {
    std::shared_lock lock(conns_mutex);
    auto it = conns.find(node);
    if (it == conns.end()) return std::nullopt;
    return it->second;
  }

  // Processes.
  void controller_main();
  void close_all();  // the controller's last work when its supervisor stops it
  void acceptor_main();
  void connector_main(std::string node);
  // Incoming connections in their handshake, oldest first. The listener
  // registers each before its process starts, so that when all slots are
  // taken a new connection can always evict the oldest of the source
  // address that holds the most (half-open connections cannot lock others
  // out). An evicted connection gives its slot back at once; it closes on
  // its own thread (`opened` bounds those not yet closed).
  struct evict_token {
    // Under handshakes_mutex: set by the connection process when it starts.
    bool evicted = false;
    boost::asio::io_context* io = nullptr;
    tcp::socket* sock = nullptr;  // read and cleared on its own thread only
  };
  struct pending_handshake {
    std::uint64_t id;
    std::string address;
    std::shared_ptr<evict_token> token;
  };
  // `token`: an incoming connection's place among the handshakes (null when dialled).
  void connection_main(tcp::socket sock, std::optional<std::string> dialed,
                       std::shared_ptr<evict_token> token = nullptr, std::uint64_t id = 0);
  std::atomic<int> opened{0};  // incoming connections in their handshake, evicted or not
  std::atomic<int> spawns_running{0};  // remote starts (spawn_request) running, each in its own process
  std::mutex handshakes_mutex;
  std::deque<pending_handshake> handshakes;
  std::uint64_t next_handshake = 1;
  std::size_t handshaking() {  // incoming connections in their handshake, not evicted
    std::lock_guard lock(handshakes_mutex);
    return handshakes.size();
  }
  void forget_handshake(std::uint64_t id) {
    std::lock_guard lock(handshakes_mutex);
    std::erase_if(handshakes, [&](const pending_handshake& h) { return h.id == id; });
  }
  bool evict_one_handshake();
  void writer_main(std::shared_ptr<conn_state> st);
  // Queues a frame for the connection's writer, within max_send_queue.
  bool queue(conn_state& st, const pid& writer, std::string frame);
  void reader_loop(const std::shared_ptr<conn_state>& st, wire::frame_reader& frames);
  void arm_watchdog(const std::shared_ptr<conn_state>& st);
  void connection_lost(conn_state& st);
};

// ---- routing ------------------------------------------------------------------

void distribution::impl::forward(signal&& s) {
  if (s.to.node == rt.node()) {  // a pid of an earlier run of this node: long dead
    answer_unreachable(rt, s, exit_reason::noproc());
    return;
  }
  auto entry = find(s.to.node);
  if (!entry) {
    answer_unreachable(rt, s, exit_reason::noconnection());
    return;
  }
  if (entry->incarnation != s.to.incarnation) {  // the node restarted since
    answer_unreachable(rt, s, exit_reason::noproc());
    return;
  }
  auto frame = encode_signal(s);
  if (frame && frame->size() > opts.max_frame + wire::frame_header_size) {
    frame = result<std::string>(errc::bad_argument, "a frame of " + std::to_string(frame->size()) +
                                                        " bytes exceeds the limit of " + std::to_string(opts.max_frame));
  }
  if (!frame) {
    log::warn("dist", "not sent to ", s.to, ": ", frame.err().message);
    return;
  }
  {
    std::lock_guard lock(entry->state->mutex);
    if (entry->state->closed) {
      answer_unreachable(rt, s, exit_reason::noconnection());
      return;
    }
    record(*entry->state, s, true);
  }
  queue(*entry->state, entry->writer, std::move(*frame));
}

bool distribution::impl::queue(conn_state& st, const pid& writer, std::string frame) {
  if (st.overflowed.load(std::memory_order_relaxed)) return false;
  const std::size_t n = frame.size();
  if (st.queued.fetch_add(n, std::memory_order_relaxed) + n > opts.max_send_queue) {
    st.queued.fetch_sub(n, std::memory_order_relaxed);
    // Drop this and everything after it (a later message must not overtake
    // a dropped one), and close: links and monitors across fire.
    if (!st.overflowed.exchange(true)) {
      log::warn("dist", "closing the connection to ", st.peer, ": it does not read (", opts.max_send_queue,
                " bytes queued)");
      route(rt, signal{sk::exit, {}, writer, {}, exit_reason::error("send queue full")});
    }
    return false;
  }
  rt.send(writer, outgoing{std::move(frame)});
  return true;
}

// ---- connections --------------------------------------------------------------------

namespace {

// Reads until one whole frame is there; the payload, or why not.
result<std::string> read_frame(stream& sock, wire::frame_reader& frames) {
  for (;;) {
    auto f = frames.next();
    if (!f) return f.err();
    if (*f) return std::string(**f);
    char* buf = frames.prepare(64 * 1024);
    auto [ec, n] = io::await([&](auto h) { sock.async_read_some(boost::asio::buffer(buf, 64 * 1024), h); });
    if (ec) return {errc::connection_lost, ec.message()};
    frames.commit(n);
  }
}

result<void> write_all(stream& sock, const std::string& bytes) {
  auto [ec, n] = io::await([&](auto h) { sock.async_write(boost::asio::buffer(bytes), h); });
  if (ec) return {errc::connection_lost, ec.message()};
  return {};
}

}  // namespace

void distribution::impl::connection_main(tcp::socket tcp_sock, std::optional<std::string> dialed,
                                         std::shared_ptr<evict_token> token, std::uint64_t id) {
  boost::system::error_code addr_ec;
  const std::string address = tcp_sock.remote_endpoint(addr_ec).address().to_string();
  const std::string where = dialed ? *dialed : "an incoming connection from " + address;
  stream sock = tls ? stream(std::move(tcp_sock), dialed ? *tls->client : *tls->server) : stream(std::move(tcp_sock));
  struct handshake_slot {
    impl* self;
    std::shared_ptr<evict_token> token;
    std::uint64_t id = 0;
    void release() {
      if (!token) return;
      token->sock = nullptr;
      self->forget_handshake(id);  // (gone already if evicted)
      self->opened.fetch_sub(1);
      token.reset();
    }
    ~handshake_slot() { release(); }
  } slot{this, token, id};
  if (token) {
    std::lock_guard lock(handshakes_mutex);
    token->io = &io::context();
    token->sock = &sock.socket();
    if (token->evicted) return;  // before it even started
  }
  // The handshake must finish in time; a silent or slow peer is cut off.
  boost::asio::steady_timer deadline(io::context(), opts.handshake_timeout);
  deadline.async_wait([s = &sock](const boost::system::error_code& ec) {
    if (!ec) s->close();
  });
  // TLS first, if this node speaks it; a peer that speaks the other way is
  // told apart by its first byte and refused with a line that says so.
  if (!dialed) {
    char first_bytes[2];
    auto [ec, n] = io::await([&](auto h) {
      sock.socket().async_receive(boost::asio::buffer(first_bytes), tcp::socket::message_peek, h);
    });
    if (ec || n == 0) return;
    const bool tls_hello = looks_like_tls(std::string_view(first_bytes, n));
    if (tls && !tls_hello) {
      log::warn("dist", "refused a plaintext connection from ", address, ": this node accepts only TLS");
      return;
    }
    if (!tls && tls_hello) {
      log::warn("dist", "refused a TLS connection from ", address, ": this node does not use TLS");
      return;
    }
  }
  if (tls) {
    std::string verify_host;
    if (dialed && tls->verify_peers) {
      if (auto peer_addr = parse_node_name(*dialed)) verify_host = peer_addr->host;
    }
    auto shook = sock.handshake(!dialed, verify_host);
    if (!shook) {
      log::warn("dist", "TLS with ", where, " failed: ", shook.err().message,
                dialed ? " (does it use TLS, with a certificate the CA file trusts?)" : "");
      return;
    }
  }
  const std::string channel = sock.channel_binding();
  if (tls && channel.empty()) {
    log::error("dist", "TLS with ", where, ": no channel binding; closing");
    return;
  }
  // Before the peer has proved the cookie, frames are small and only of the
  // handshake's kinds.
  wire::frame_reader frames(4096);
  const challenge mine = random_challenge();
  // The dialling side speaks first; an accepted connection reads first, so
  // that a client (not a node) can say what it is before hearing anything.
  if (dialed && !write_all(sock, encode_hello({protocol_version, my_name, rt.incarnation(), mine}))) return;

  auto first = read_frame(sock, frames);
  if (!first) {
    log::warn("dist", "handshake with ", where, " failed: ", first.err().message);
    return;
  }
  if (!dialed) {
    auto kind = peek_kind(*first);
    if (kind && *kind >= first_client_kind) {
      client_handler handler;
      {
        std::lock_guard lock(client_mutex);
        handler = on_client;
      }
      if (!handler) {
        log::warn("dist", "closing a client connection: this node serves no clients");
        return;
      }
      deadline.cancel();
      slot.release();
      handler(std::make_shared<stream>(std::move(sock)), std::move(*first), std::string(frames.unread()));
      return;
    }
    if (!write_all(sock, encode_hello({protocol_version, my_name, rt.incarnation(), mine}))) return;
  }
  auto hello = decode_handshake(*first);
  if (dialed && hello && hello->kind == frame_kind::refused) {
    log::error("dist", "node ", *dialed, " refused this node: ", hello->refused.reason);
    tp::exit(exit_reason::shutdown(kRefused + hello->refused.reason));  // the connector's reason: connect() says why
  }
  if (!hello || hello->kind != frame_kind::hello) {
    log::warn("dist", "handshake with ", where, " failed: expected a hello frame");
    return;
  }
  const std::string peer = hello->hello.name;
  if (hello->hello.version != protocol_version) {
    log::warn("dist", "refused ", peer, ": protocol version ", hello->hello.version, ", this node speaks ",
              protocol_version);
    (void)write_all(sock, encode_refused("unsupported protocol version"));
    return;
  }
  if (is_blocked(peer)) {
    log::debug("dist", "not talking to ", peer, ": partitioned from it");
    return;  // as if the network dropped it
  }
  if (!parse_node_name(peer) || peer == my_name || (dialed && peer != *dialed)) {
    log::warn("dist", "refused ", where, ": it calls itself '", peer, "'");
    (void)write_all(sock, encode_refused("unexpected node name"));
    return;
  }
  // With a CA file, nodes show certificates from it both ways (clients
  // need none): the dialer's was checked in the TLS handshake if it sent one.
  if (!dialed && tls && tls->verify_peers && !sock.peer_certified()) {
    log::warn("dist", "refused ", peer, " from ", address, ": no certificate that the CA file trusts");
    (void)write_all(sock, encode_refused("a certificate from this cluster's CA is required"));
    return;
  }
  // The dialer proves first; the accepting side proves only to a dialer
  // that has proved, so a stranger gets no proof to carry elsewhere.
  const transcript t{dialed ? mine : hello->hello.nonce, dialed ? hello->hello.nonce : mine,
                     dialed ? std::string_view(my_name) : std::string_view(peer),
                     dialed ? std::string_view(peer) : std::string_view(my_name), channel};
  if (dialed && !write_all(sock, encode_proof({prove(opts.cookie, t, prover::dialer)}))) return;
  auto second = read_frame(sock, frames);
  if (!second) {
    log::warn("dist", "handshake with ", peer, " failed: ", second.err().message);
    return;
  }
  auto proof = decode_handshake(*second);
  if (proof && proof->kind == frame_kind::refused) {
    log::error("dist", "node ", peer, " refused this node: ", proof->refused.reason);
    if (dialed) tp::exit(exit_reason::shutdown(kRefused + proof->refused.reason));
    return;
  }
  if (!proof || proof->kind != frame_kind::proof) {
    log::warn("dist", "handshake with ", peer, " failed: expected a proof frame");
    return;
  }
  if (!verify(opts.cookie, t, dialed ? prover::acceptor : prover::dialer, proof->proof.mac)) {
    log::error("dist", "refused connection from ", peer, ": wrong cookie");
    (void)write_all(sock, encode_refused(kWrongCookie));
    return;
  }
  if (!dialed) {
    // Both nodes dialling each other made two connections, and replacing
    // the one in use lost what was sent on it: the crossing is settled
    // here, before either is used (8.2).
    auto go_on = tp::call(controller(), ctl_crossing{peer}, opts.handshake_timeout);
    if (!go_on || !go_on->get<bool>()) {
      (void)write_all(sock, encode_refused(kCrossing));
      return;
    }
  }
  if (!dialed && !write_all(sock, encode_proof({prove(opts.cookie, t, prover::acceptor)}))) return;
  deadline.cancel();
  slot.release();
  frames.set_max_frame(opts.max_frame);

  auto st = std::make_shared<conn_state>(std::move(sock));
  st->peer = peer;
  st->peer_node = node_index(peer);
  st->peer_incarnation = hello->hello.incarnation;
  auto writer = tp::spawn_link([self = shared_from_this(), st] { self->writer_main(st); },
                               {.thread = spawn_options::same_thread});
  if (!writer) return;
  st->writer = *writer;
  // Whatever ends this process, the connection ends with it, and everyone
  // who linked to or monitored a process over it hears noconnection.
  struct on_exit {
    impl* self;
    std::shared_ptr<conn_state> st;
    ~on_exit() { self->connection_lost(*st); }
  } guard{this, st};

  // The controller numbers accepted connections in the order it accepts them.
  auto accepted = tp::call(controller(), ctl_conn_ready{peer, st->peer_incarnation, tp::self(), st->writer, st,
                                                      dialed.has_value()},
                           opts.handshake_timeout);
  if (!accepted || accepted->get<std::uint64_t>() == 0) return;
  st->id = accepted->get<std::uint64_t>();
  // From this process, so that watchers see it before anything the peer sends.
  for (const pid& w : watchers()) tp::send(w, node_up{peer, st->id});
  st->last_rx = clock::now();
  arm_watchdog(st);
  reader_loop(st, frames);
}

void distribution::impl::arm_watchdog(const std::shared_ptr<conn_state>& st) {
  st->watchdog.expires_after(opts.tick);
  st->watchdog.async_wait([self = shared_from_this(), st](const boost::system::error_code& ec) {
    if (ec) return;
    const auto& opts = self->opts;
    const auto silent = clock::now() - st->last_rx.load();
    if (silent > opts.down_after) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(silent).count();
      log::warn("dist", "node ", st->peer, " silent for ", ms, " ms; disconnecting");
      st->why_closed = exit_reason::error("no heartbeat for " + std::to_string(ms) + " ms");
      st->conn.close();
      return;
    }
    self->arm_watchdog(st);
  });
}

void distribution::impl::reader_loop(const std::shared_ptr<conn_state>& st, wire::frame_reader& frames) {
  for (;;) {
    auto f = frames.next();
    if (!f) {
      log::error("dist", "closing connection to ", st->peer, ": ", f.err().message);
      st->why_closed = exit_reason::error(f.err().message);
      tp::exit(st->why_closed);
    }
    if (!*f) {
      char* buf = frames.prepare(64 * 1024);
      auto [ec, n] = st->conn.read_some(buf, 64 * 1024);
      if (ec) {
        log::info("dist", "connection to ", st->peer, " closed: ", ec.message());
        if (st->why_closed.is_normal() || st->why_closed == exit_reason::noconnection()) {
          st->why_closed = exit_reason::error("connection closed: " + ec.message());
        }
        tp::exit(exit_reason::noconnection());
      }
      frames.commit(n);
      st->last_rx = clock::now();
      continue;
    }
    auto d = decode(**f);
    if (!d) {
      log::error("dist", "closing connection to ", st->peer, ": ", d.err().message);
      st->why_closed = exit_reason::error(d.err().message);
      tp::exit(st->why_closed);
    }
    if (!d->dropped.empty()) {
      log::warn("dist", "dropped a message from ", st->peer, ": ", d->dropped);
      continue;
    }
    switch (d->kind) {
      case frame_kind::tick:
        break;
      case frame_kind::signal: {
        signal& s = *d->sig;
        // A peer speaks only for its own processes, and only to ours.
        // From outside any process (runtime::send, runtime::exit): only a
        // message or an exit signal can have no sender.
        const bool anonymous = !s.from && (s.what == sk::message || s.what == sk::exit);
        if ((!anonymous && (s.from.node != st->peer_node || s.from.incarnation != st->peer_incarnation)) ||
            !rt.is_local(s.to)) {
          log::warn("dist", "dropping a signal from ", st->peer, " with foreign pids ", s.from, " -> ", s.to);
          break;
        }
        {
          std::lock_guard lock(st->mutex);
          record(*st, s, false);
        }
        route(rt, std::move(s));
        break;
      }
      case frame_kind::send_named: {
        if (d->named.from && (d->named.from.node != st->peer_node ||
                              d->named.from.incarnation != st->peer_incarnation)) {
          break;
        }
        if (d->named.body.empty()) break;
        const pid target = rt.whereis(d->named.name);
        if (target) route(rt, signal{sk::message, d->named.from, target, {}, std::move(d->named.body)});
        break;
      }
      case frame_kind::peers:
        tp::send(controller(), ctl_peers{std::move(d->peers.nodes)});
        break;
      case frame_kind::refused:
        log::error("dist", "node ", st->peer, " refused this node: ", d->refused.reason);
        st->why_closed = exit_reason::shutdown("refused: " + d->refused.reason);
        tp::exit(st->why_closed);
      case frame_kind::hello:
      case frame_kind::proof:
        log::error("dist", "closing connection to ", st->peer, ": handshake frame after the handshake");
        st->why_closed = exit_reason::error("protocol violation");
        tp::exit(st->why_closed);
    }
  }
}

void distribution::impl::writer_main(std::shared_ptr<conn_state> st) {
  const std::string tick = encode_tick();
  std::vector<std::string> batch;
  std::vector<boost::asio::const_buffer> buffers;
  for (;;) {
    batch.clear();
    auto m = tp::receive(opts.tick);
    if (!m) {
      batch.push_back(tick);  // idle: tell the peer we are alive
    } else if (auto* o = m->get_if<outgoing>()) {
      st->queued.fetch_sub(o->bytes.size(), std::memory_order_relaxed);
      batch.push_back(std::move(o->bytes));
    }
    // Gather what else is queued into one write.
    std::size_t bytes = batch.empty() ? 0 : batch.back().size();
    while (bytes < (256u << 10)) {
      auto more = tp::receive(clock::duration::zero());
      if (!more) break;
      if (auto* o = more->get_if<outgoing>()) {
        st->queued.fetch_sub(o->bytes.size(), std::memory_order_relaxed);
        bytes += o->bytes.size();
        batch.push_back(std::move(o->bytes));
      }
    }
    if (batch.empty()) continue;
    buffers.clear();
    for (auto& b : batch) buffers.emplace_back(boost::asio::buffer(b));
    // Written here when the socket takes it all (the common case): no
    // completion to wait for. What it does not take goes the async way.
    boost::system::error_code ec;
    std::size_t written = st->conn.try_write_some(buffers, ec);
    if (ec) tp::exit(exit_reason::noconnection());
    std::size_t skip = 0;
    while (skip < buffers.size() && written >= buffers[skip].size()) written -= buffers[skip++].size();
    if (skip == buffers.size()) continue;
    buffers.erase(buffers.begin(), buffers.begin() + static_cast<std::ptrdiff_t>(skip));
    buffers.front() += written;
    auto [wec, n] = io::await([&](auto h) { st->conn.async_write(buffers, h); });
    if (wec) tp::exit(exit_reason::noconnection());
  }
}

void distribution::impl::connection_lost(conn_state& st) {
  decltype(st.links) links;
  decltype(st.monitors_out) monitors_out;
  decltype(st.monitors_in) monitors_in;
  {
    std::lock_guard lock(st.mutex);
    if (st.closed) return;
    st.closed = true;
    links.swap(st.links);
    monitors_out.swap(st.monitors_out);
    monitors_in.swap(st.monitors_in);
  }
  st.watchdog.cancel();
  st.conn.close();
  if (st.writer) route(rt, signal{sk::exit, {}, st.writer, {}, exit_reason::kill()});
  for (const auto& [local, remote] : links) {
    route(rt, signal{sk::link_exit, remote, local, {}, exit_reason::noconnection()});
  }
  for (const auto& [tag, w] : monitors_out) {
    route(rt, signal{sk::down, w.second, w.first, tag, exit_reason::noconnection()});
  }
  for (const auto& [tag, w] : monitors_in) route(rt, signal{sk::demonitor, w.first, w.second, tag, {}});
  if (st.id != 0) {
    for (const pid& w : watchers()) {
      route(rt, signal{sk::message, {}, w, {}, node_down{st.peer, to_string(st.why_closed), st.id}});
    }
  }
}

// ---- listener and connector ----------------------------------------------------------

void distribution::impl::acceptor_main() {
  if (auto named = tp::register_name(kListenerName); !named) throw std::runtime_error(named.err().message);
  // The listening socket outlives this process: the listener that replaces
  // it accepts on the same port.
  io::borrowed_acceptor held(listen_fd);
  tcp::acceptor& acceptor = held.get();
  for (;;) {
    tcp::socket sock(io::context());
    auto [ec, n] = io::await([&](auto h) { acceptor.async_accept(sock, h); });
    if (ec) {
      log::warn("dist", "accept failed: ", ec.message());
      tp::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    // Full: the busiest source address gives up its oldest handshake.
    // Past four times the limit of connections not yet closed (evicted ones
    // close on their own threads, soon): refused.
    if (opened.load() >= 4 * kMaxHandshakes) {
      log::warn("dist", "refusing a connection: ", 4 * kMaxHandshakes, " handshakes not yet closed");
      continue;  // `sock` closes here
    }
    if (handshaking() >= static_cast<std::size_t>(kMaxHandshakes)) (void)evict_one_handshake();
    sock.set_option(tcp::no_delay(true));
    boost::system::error_code ec2;
    auto address = sock.remote_endpoint(ec2).address().to_string();
    // The connection runs on any thread: hand the descriptor over.
    const int conn_fd = sock.release();
    auto token = std::make_shared<evict_token>();
    std::uint64_t id;
    opened.fetch_add(1);
    {
      std::lock_guard lock(handshakes_mutex);
      id = next_handshake++;
      handshakes.push_back({id, std::move(address), token});
    }
    auto spawned = tp::spawn([self = shared_from_this(), conn_fd, token, id] {
      self->connection_main(tcp::socket(io::context(), tcp::v4(), conn_fd), std::nullopt, token, id);
    });
    if (!spawned) {
      forget_handshake(id);
      opened.fetch_sub(1);
      ::close(conn_fd);
    }
  }
}

bool distribution::impl::evict_one_handshake() {
  pending_handshake victim;
  boost::asio::io_context* io = nullptr;
  {
    std::lock_guard lock(handshakes_mutex);
    if (handshakes.empty()) return false;
    std::unordered_map<std::string_view, int> per_address;
    for (const auto& h : handshakes) ++per_address[h.address];
    auto busiest = std::max_element(per_address.begin(), per_address.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; });
    auto it = std::find_if(handshakes.begin(), handshakes.end(),
                           [&](const pending_handshake& h) { return h.address == busiest->first; });
    victim = std::move(*it);
    handshakes.erase(it);
    victim.token->evicted = true;
    io = victim.token->io;  // null: its process has not started, and will end when it does
  }
  log::debug("dist", "evicting the oldest handshake from ", victim.address, " for a new connection");
  // Closed on the connection's own thread (its socket is not thread-safe).
  if (io != nullptr) {
    boost::asio::post(*io, [token = victim.token] {
      if (token->sock) token->sock->close();
    });
  }
  return true;
}

void distribution::impl::connector_main(std::string node) {
  if (is_blocked(node)) return;
  auto a = parse_node_name(node);
  if (!a) return;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(a->host, ec);
  tcp::socket sock(io::context());
  if (ec) {
    // A host name: resolve it (blocking, but only at connection time).
    tcp::resolver resolver(io::context());
    auto results = resolver.resolve(a->host, std::to_string(a->port), ec);
    if (ec || results.empty()) {
      log::warn("dist", "cannot resolve ", node, ": ", ec.message());
      return;
    }
    address = results.begin()->endpoint().address();
  }
  // A host that drops packets would hold this dial for the kernel's SYN
  // retries (about two minutes), and every call waiting on it: it gets
  // the handshake's time.
  boost::asio::steady_timer dial_deadline(io::context(), opts.handshake_timeout);
  dial_deadline.async_wait([s = &sock](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      s->close(ignored);
    }
  });
  auto [cec, n] = io::await([&](auto h) { sock.async_connect(tcp::endpoint(address, a->port), h); });
  dial_deadline.cancel();
  if (cec) {
    log::debug("dist", "cannot connect to ", node, ": ", cec.message());
    return;
  }
  sock.set_option(tcp::no_delay(true));
  connection_main(std::move(sock), node);
}

// ---- the controller ---------------------------------------------------------------------

void distribution::impl::controller_main() {
  if (auto named = tp::register_name(kControllerName); !named) throw std::runtime_error(named.err().message);
  // Its supervisor's shutdown arrives as a message, so that the connections
  // close with it; a kill (fault injection) leaves them to the next controller.
  tp::trap_exit(true);
  const pid parent = tp::parent();
  std::map<std::string, std::vector<call_request>> waiting;  // connect() callers
  struct reader_info {
    std::string node;
    ref watch;  // only DOWNs of our own monitors count: a peer cannot forge one
  };
  std::map<pid, reader_info> readers;  // connection reader -> node
  // A controller that replaces one takes over its connections and connectors.
  {
    std::shared_lock lock(conns_mutex);
    for (auto& [idx, e] : conns) readers[e.reader] = {e.node, tp::monitor(e.reader)};
  }
  for (auto& [node, k] : known) {
    if (k.connector) k.watch = tp::monitor(k.connector);
  }

  auto reply_waiting = [&](const std::string& node, const result<void>& outcome) {
    auto it = waiting.find(node);
    if (it == waiting.end()) return;
    for (auto& req : it->second) tp::reply(req, result<void>(outcome));
    waiting.erase(it);
  };
  auto start_connector = [&](const std::string& node) {
    auto& k = known[node];
    if (k.connector || clock::now() < k.accepting_until) return;  // that connection will answer the waiters
    auto c = tp::spawn_monitor([self = shared_from_this(), node] { self->connector_main(node); });
    if (c) {
      k.connector = c->first;
      k.watch = c->second;
    }
  };
  auto connected = [&](const std::string& node) {
    std::shared_lock lock(conns_mutex);
    auto it = conns.find(node_index(node));
    return it != conns.end();
  };
  auto connected_names = [&] {
    std::vector<std::string> out;
    std::shared_lock lock(conns_mutex);
    for (auto& [idx, e] : conns) out.push_back(e.node);
    return out;
  };

  tp::send_after(opts.reconnect_every, tp::self(), ctl_reconnect{});
  for (;;) {
    auto m = tp::receive();
    if (auto* req = m->get_if<call_request>()) {
      if (auto* c = req->body.get_if<ctl_connect>()) {
        if (c->node == my_name || connected(c->node)) {
          tp::reply(*req, result<void>());
          continue;
        }
        if (!parse_node_name(c->node)) {
          tp::reply(*req, result<void>(parse_node_name(c->node).err()));
          continue;
        }
        const std::string node = c->node;  // `c` lives in *req, which moves next
        const auto now = clock::now();
        auto [kit, fresh] = known.try_emplace(node);
        auto& k = kit->second;
        if (fresh) k.transient = !c->keep_trying;
        else if (c->keep_trying) k.transient = false;
        k.last_up = now;
        waiting[node].push_back(std::move(*req));
        start_connector(node);
      } else if (auto* x = req->body.get_if<ctl_crossing>()) {
        // Of two dials that cross, the lower-named node's goes on: it
        // refuses the other's, and the higher-named node takes the lower's.
        auto& k = known[x->node];
        const bool refuse = k.connector && !connected(x->node) && my_name < x->node;
        if (!refuse) k.accepting_until = clock::now() + opts.handshake_timeout;
        tp::reply(*req, !refuse);
      } else if (auto* r = req->body.get_if<ctl_conn_ready>()) {
        const std::uint32_t idx = node_index(r->node);
        bool accept = true;
        std::uint64_t number = 0;
        std::shared_ptr<conn_state> replaced;
        pid replaced_reader;
        {
          std::unique_lock lock(conns_mutex);
          auto it = conns.find(idx);
          if (it != conns.end() && it->second.incarnation == r->incarnation) {
            // Both nodes dialled each other: keep the connection the node
            // with the lower name started, on both sides.
            // A node dials again only when it thinks the old connection is
            // dead: a redial by the same side replaces the old one.
            const std::string& lower = std::min(my_name, r->node);
            const bool new_by_lower = (r->initiated_here ? my_name : r->node) == lower;
            accept = r->initiated_here == it->second.initiated_here || new_by_lower;
          }
          if (accept) {
            if (it != conns.end()) {
              replaced = it->second.state;
              replaced_reader = it->second.reader;
            }
            number = next_connection.fetch_add(1);
            conns[idx] = conn_entry{r->node, r->incarnation, r->reader, r->writer, r->state, r->initiated_here, number};
          }
        }
        tp::reply(*req, number);
        if (!accept) {
          reply_waiting(r->node, result<void>());
          continue;
        }
        if (replaced) {
          readers.erase(replaced_reader);
          tp::exit(replaced_reader, exit_reason::kill());
        }
        readers[r->reader] = {r->node, tp::monitor(r->reader)};
        known[r->node].last_up = clock::now();
        known[r->node].transient = false;
        known[r->node].accepting_until = {};
        log::info("dist", "connected to node ", r->node);
        // Full mesh: tell the newcomer whom we know, and the others about it.
        auto names = connected_names();
        queue(*r->state, r->writer, encode_peers(names));
        {
          std::shared_lock lock(conns_mutex);
          for (auto& [i, e] : conns) {
            if (e.node != r->node) queue(*e.state, e.writer, encode_peers({r->node}));
          }
        }
        reply_waiting(r->node, result<void>());
      } else if (auto* s = req->body.get_if<spawn_request>()) {
        spawn_fn fn;
        {
          std::lock_guard lock(spawns_mutex);
          if (auto it = spawns.find(s->fn); it != spawns.end()) fn = it->second;
        }
        spawn_reply out;
        if (!fn) {
          out.code = static_cast<int>(errc::not_found);
          out.error = "no spawnable function '" + s->fn + "' on " + my_name;
          tp::reply(*req, out);
          continue;
        }
        if (spawns_running.load() >= kMaxSpawnsRunning) {
          out.code = static_cast<int>(errc::unavailable);
          out.error = std::to_string(kMaxSpawnsRunning) + " remote starts already run on " + my_name + "; retry";
          tp::reply(*req, out);
          continue;
        }
        // Its own process: a start can take long (a drain, a database's
        // supervisor), and the controller must go on serving connections.
        ++spawns_running;
        auto started = tp::spawn([self = shared_from_this(), fn = std::move(fn), args = std::move(s->args),
                                  from = req->from, tag = req->tag] {
          struct counted {
            std::atomic<int>& n;
            ~counted() { --n; }
          } c{self->spawns_running};
          spawn_reply out;
          if (auto p = fn(args)) {
            out.ok = true;
            out.started = *p;
          } else {
            out.code = static_cast<int>(p.code());
            out.error = p.err().message;
          }
          tp::send(from, call_reply{tag, out});
        });
        if (!started) {
          --spawns_running;
          out.code = static_cast<int>(started.code());
          out.error = started.err().message;
          tp::reply(*req, out);
        }
      } else if (req->body.is<ctl_stop>()) {
        close_all();
        tp::reply(*req, result<void>());
        tp::exit(exit_reason::shutdown());
      }
    } else if (auto* x = m->get_if<exit_msg>()) {
      if (x->from == parent) {
        close_all();
        tp::exit(x->reason);
      }
    } else if (auto* d = m->get_if<down_msg>()) {
      if (auto it = readers.find(d->who); it != readers.end() && it->second.watch == d->monitor) {
        const std::string node = it->second.node;
        readers.erase(it);
        bool removed = false;
        {
          std::unique_lock lock(conns_mutex);
          auto c = conns.find(node_index(node));
          if (c != conns.end() && c->second.reader == d->who) {
            conns.erase(c);
            removed = true;
          }
        }
        if (removed) {
          log::warn("dist", "node ", node, " down (", d->reason, ")");
          known[node].last_up = clock::now();
        }
        continue;
      }
      std::string forget;
      for (auto& [node, k] : known) {
        if (k.connector == d->who && k.watch == d->monitor) {
          k.connector = {};
          if (connected(node)) continue;
          const std::string& why = d->reason.detail;
          if (why == kRefused + kCrossing) {
            // The peer dials us: its connection answers the waiters (and
            // if it does not come, the next tick dials again).
            k.next_try = clock::now() + opts.reconnect_every;
            continue;
          }
          if (k.transient) forget = node;
          if (why.rfind(kRefused, 0) == 0) {
            // Refused by the peer: the cookie (unauthorized) or the
            // protocol or name (bad_argument); not worth retrying.
            const std::string said = why.substr(kRefused.size());
            reply_waiting(node, result<void>(said == kWrongCookie ? errc::unauthorized : errc::bad_argument,
                                             node + " refused this node: " + said));
          } else {
            reply_waiting(node, result<void>(errc::connection_lost, "cannot connect to " + node));
          }
        }
      }
      if (!forget.empty()) known.erase(forget);  // a call's target that never answered: not redialled
    } else if (auto* p = m->get_if<ctl_peers>()) {
      for (auto& node : p->nodes) {
        if (node == my_name || connected(node) || !parse_node_name(node)) continue;
        auto& k = known[node];
        k.last_up = clock::now();
        k.transient = false;
        start_connector(node);
      }
    } else if (m->is<ctl_reconnect>()) {
      // A lost node is dialled again every reconnect_every, and after
      // forget_after less often (every slow_reconnect), but never given up:
      // a partition however long heals when the network does.
      const auto now = clock::now();
      for (auto& [name, k] : known) {
        if (connected(name)) {
          k.last_up = now;
          k.next_try = {};
        } else if (!k.connector && now >= k.next_try) {
          if (now - k.last_up > opts.forget_after) k.next_try = now + opts.slow_reconnect;
          start_connector(name);
        }
      }
      tp::send_after(opts.reconnect_every, tp::self(), ctl_reconnect{});
    }
  }
}

void distribution::impl::close_all() {
  std::vector<pid> ends;
  {
    std::shared_lock lock(conns_mutex);
    for (auto& [idx, e] : conns) ends.push_back(e.reader);
  }
  for (auto& [node, k] : known) {
    if (k.connector) ends.push_back(k.connector);
  }
  std::vector<ref> watches;
  for (const pid& p : ends) {
    watches.push_back(tp::monitor(p));
    tp::exit(p, exit_reason::kill());
  }
  for (const ref& w : watches) {
    tp::receive_if([&](const message& x) {
      auto* d = x.get_if<down_msg>();
      return d != nullptr && d->monitor == w;
    });
  }
  std::unique_lock lock(conns_mutex);
  conns.clear();
}

// ---- the public face --------------------------------------------------------------------

distribution::distribution(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

result<std::unique_ptr<distribution>> distribution::start(runtime& rt, dist_options options, const pid& supervisor) {
  const std::string name = node_name(rt.node());
  auto addr = parse_node_name(name);
  if (!addr) return addr.err();
  if (options.cookie.empty()) return {errc::bad_argument, "distribution needs a cookie"};
  static std::once_flag types_once;
  std::call_once(types_once, [] {
    message_types::global().add<spawn_request>("panal.dist.spawn_request");
    message_types::global().add<spawn_reply>("panal.dist.spawn_reply");
  });

  std::optional<tls_contexts> tls;
  if (options.tls.enabled()) {
    auto t = make_tls_contexts(options.tls);
    if (!t) return t.err();
    tls = std::move(*t);
  }
  auto i = std::make_shared<impl>(rt, std::move(options));
  i->my_name = name;
  i->tls = std::move(tls);
  // Bind here, so that a port in use is reported to the caller.
  auto listening = io::listen(addr->host, addr->port, 128);
  if (!listening) return listening.err();
  i->listen_fd = listening->fd;
  // The controller first: the listener hands it connections.
  auto controller = [i] { i->controller_main(); };
  auto listener = [i] { i->acceptor_main(); };
  if (supervisor) {
    auto c = supervisor::start_child(rt, supervisor, child_spec::worker("dist", controller));
    if (!c) {
      ::close(listening->fd);
      return c.err();
    }
    auto l = supervisor::start_child(rt, supervisor, child_spec::worker("listener", listener));
    if (!l) {
      (void)supervisor::terminate_child(rt, supervisor, "dist");
      ::close(listening->fd);
      return l.err();
    }
  } else {  // unsupervised (tests of this layer)
    auto c = rt.spawn(controller);
    auto l = c ? rt.spawn(listener) : result<pid>(c.err());
    if (!l) {
      ::close(listening->fd);
      return l.err();
    }
  }
  // Each registers its name first thing: connect() and the listener's
  // hand-overs find the controller by it.
  if (!rt.await_name(kControllerName, std::chrono::seconds(2)) || !rt.await_name(kListenerName, std::chrono::seconds(2))) {
    return {errc::timeout, "the distribution controller or listener did not start"};
  }
  rt.set_remote_router(i.get());
  log::info("dist", "node ", name, " listening", i->tls ? " (TLS)" : "");
  return std::unique_ptr<distribution>(new distribution(std::move(i)));
}

distribution::~distribution() { stop(); }

void distribution::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  impl_->rt.set_remote_router(nullptr);
  struct close_listen_fd {
    int fd;
    ~close_listen_fd() { ::close(fd); }
  } closing{impl_->listen_fd};
  if (!impl_->rt.running()) return;
  // Under a supervisor, it has stopped them already (the controller closed
  // the connections as it went).
  if (const pid l = impl_->rt.whereis(kListenerName)) {
    inbox in = impl_->rt.open_inbox();
    const ref w = in.monitor(l);
    impl_->rt.exit(l, exit_reason::kill());
    (void)in.receive_if([&](const message& x) {
      auto* d = x.get_if<down_msg>();
      return d != nullptr && d->monitor == w;
    }, std::chrono::seconds(10));
  }
  if (const pid c = impl_->controller()) (void)impl_->rt.call(c, ctl_stop{}, std::chrono::seconds(10));
}

const std::string& distribution::name() const { return impl_->my_name; }

result<void> distribution::connect(const std::string& node, clock::duration timeout) {
  return connect(node, timeout, true);
}

result<void> distribution::connect(const std::string& node, clock::duration timeout, bool keep_trying) {
  const pid c = impl_->controller();
  if (!c) return {errc::noproc, "the distribution controller is not running (it is being restarted); retry"};
  auto r = impl_->rt.call(c, ctl_connect{node, keep_trying}, timeout);
  if (!r) return r.err();
  return std::move(r->get<result<void>>());
}

std::vector<std::string> distribution::nodes() const {
  std::vector<std::string> out;
  std::shared_lock lock(impl_->conns_mutex);
  for (auto& [idx, e] : impl_->conns) out.push_back(e.node);
  std::sort(out.begin(), out.end());
  return out;
}

void distribution::monitor_nodes(const pid& subscriber) {
  std::lock_guard lock(impl_->watchers_mutex);
  impl_->node_watchers.push_back(subscriber);
}

void distribution::demonitor_nodes(const pid& subscriber) {
  std::lock_guard lock(impl_->watchers_mutex);
  std::erase(impl_->node_watchers, subscriber);
}

std::vector<node_up> distribution::connections() const {
  std::vector<node_up> out;
  std::shared_lock lock(impl_->conns_mutex);
  for (auto& [idx, e] : impl_->conns) out.push_back({e.node, e.id});
  return out;
}

void distribution::partition(const std::vector<std::string>& nodes) {
  {
    std::lock_guard lock(impl_->blocked_mutex);
    impl_->blocked.insert(nodes.begin(), nodes.end());
  }
  std::vector<pid> readers;
  {
    std::shared_lock lock(impl_->conns_mutex);
    for (auto& [idx, e] : impl_->conns) {
      if (std::find(nodes.begin(), nodes.end(), e.node) != nodes.end()) readers.push_back(e.reader);
    }
  }
  for (const pid& r : readers) impl_->rt.exit(r, exit_reason::kill());
  log::warn("dist", "partitioned from ", nodes.size(), " node(s) on request");
}

clock::duration distribution::silence(const std::string& node) const {
  auto e = impl_->find(node_index(node));
  if (!e || !e->state) return clock::duration::max();
  return clock::now() - e->state->last_rx.load();
}

void distribution::heal() {
  std::lock_guard lock(impl_->blocked_mutex);
  impl_->blocked.clear();
  log::warn("dist", "partition healed on request");
}

result<void> distribution::send_named(const std::string& node, const std::string& name, message m, const pid& from) {
  if (node == impl_->my_name) {
    const pid target = impl_->rt.whereis(name);
    if (!target) return {errc::noproc, "no process registered as '" + name + "'"};
    route(impl_->rt, signal{sk::message, from, target, {}, std::move(m)});
    return {};
  }
  auto entry = impl_->find(node_index(node));
  if (!entry) return {errc::connection_lost, "not connected to " + node};
  auto frame = encode_send_named(from, name, m);
  if (!frame) return frame.err();
  if (frame->size() > impl_->opts.max_frame + wire::frame_header_size) {
    return {errc::bad_argument, "a frame of " + std::to_string(frame->size()) + " bytes exceeds the limit of " +
                                    std::to_string(impl_->opts.max_frame)};
  }
  if (!impl_->queue(*entry->state, entry->writer, std::move(*frame))) {
    return {errc::connection_lost, "the connection to " + node + " is closing: its send queue is full"};
  }
  return {};
}

void distribution::set_client_handler(client_handler handler) {
  std::lock_guard lock(impl_->client_mutex);
  impl_->on_client = std::move(handler);
}

void distribution::register_spawn(const std::string& name, spawn_fn fn) {
  std::lock_guard lock(impl_->spawns_mutex);
  impl_->spawns[name] = std::move(fn);
}

result<message> distribution::call_named(const std::string& node, const std::string& name, message request,
                                         clock::duration timeout) {
  const ref tag = impl_->rt.make_ref();
  auto is_reply = [&](const message& x) {
    auto* r = x.get_if<call_reply>();
    return r != nullptr && r->tag == tag;
  };
  const bool inside = tp::inside();
  const auto deadline = clock::now() + timeout;  // the connect and the answer share the timeout
  if (node != impl_->my_name && !impl_->find(node_index(node)) && !(inside && tp::self() == impl_->controller())) {
    // Not connected yet (a mesh still forming): connect first, as Erlang's
    // calls do. Not from the controller, which would wait on itself.
    if (auto c = connect(node, timeout, false); !c) return c.err();
    timeout = std::max<clock::duration>(deadline - clock::now(), clock::duration::zero());
  }
  std::optional<inbox> in;
  if (!inside) in.emplace(impl_->rt.open_inbox());
  const pid me = inside ? tp::self() : in->self();
  auto sent = send_named(node, name, call_request{me, tag, std::move(request)}, me);
  if (!sent) return sent.err();
  auto m = inside ? tp::receive_if(is_reply, timeout) : in->receive_if(is_reply, timeout);
  if (!m) return {errc::timeout, "no answer from " + name + " on " + node};
  return std::move(m->get<call_reply>().body);
}

result<pid> distribution::spawn_on(const std::string& node, const std::string& fn, const std::string& args,
                                   clock::duration timeout) {
  auto r = call_named(node, kControllerName, spawn_request{fn, args}, timeout);
  if (!r) return r.err();
  const auto* out = r->get_if<spawn_reply>();
  if (out == nullptr) return {errc::malformed, "bad spawn reply from " + node};
  if (!out->ok) return {static_cast<errc>(out->code), out->error};
  return out->started;
}

}  // namespace panal::dist
