#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include "db/session.h"

#include <algorithm>
#include <unordered_map>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include "db/auth_throttle.h"
#include "db/client_protocol.h"
#include "db/cluster_map.h"
#include "db/context.h"
#include "db/messages.h"
#include "db/requester.h"
#include "dist/stream.h"
#include "registry/pg.h"
#include "runtime/io.h"
#include "runtime/this_process.h"
#include "util/log.h"
#include "wire/frame.h"

namespace panal::db {

namespace tp = this_process;
namespace cp = client_protocol;
using dist::stream;

namespace {

bool write_all(stream& sock, const std::string& bytes) {
  auto [ec, n] = io::await([&](auto h) { sock.async_write(boost::asio::buffer(bytes), h); });
  return !ec;
}

constexpr std::uint64_t kRead = 1;   // io_done tags
constexpr std::uint64_t kWrite = 2;
constexpr std::size_t kReadChunk = 64 * 1024;

// A client's copy of the slot map (ROUTE_MAP): per slot, the node of its primary.
cp::routes routes_of(const cluster_map& m) {
  cp::routes r;
  r.generation = m.generation;
  r.epoch = m.epoch();
  const std::uint32_t slots = m.slots.slot_count();
  if (slots > cp::max_frame / 4) return r;  // cannot travel in a frame: no routes (clients go through any node)
  r.primary.assign(slots, cp::routes::none);
  std::unordered_map<std::uint32_t, std::uint16_t> position;  // pid.node -> index in r.nodes
  for (std::uint32_t s = 0; s < slots; ++s) {
    const pid p = m.primary_pid(s);
    if (!p) continue;
    auto [it, fresh] = position.try_emplace(p.node, static_cast<std::uint16_t>(r.nodes.size()));
    if (fresh) {
      if (r.nodes.size() >= cp::routes::none) {
        position.erase(it);
        continue;
      }
      r.nodes.push_back(node_name(p.node));
    }
    r.primary[s] = it->second;
  }
  return r;
}

// The session: one process that reads requests (the socket read completes
// into its mailbox), routes each to its slot's primary, and writes the
// answers back, many per write (the write completes into its mailbox too,
// so answers keep arriving while the client takes its time).
//
// Backpressure: it reads no more requests while its window of requests in
// flight is full, or while the answers its client has not taken pass
// `pause_bytes`. The window shrinks when answers are large (it keeps about
// `pause_bytes` of answers in flight), so a client that pipelines without
// reading makes the node hold a bounded amount; past `max_output_bytes` of
// answers it does not take, the session is closed. Returns when the
// connection must close.
void run_session(context& ctx, const std::shared_ptr<stream>& sock, const std::string& db,
                 std::uint64_t client_id, const std::string& rest) {
  if (auto j = ctx.groups.join(client_group(db), tp::self()); !j) return;
  // However this process ends, the socket closes: its pending read then ends too.
  struct closer {
    stream& s;
    ~closer() { s.close(); }
  } close_on_exit{*sock};
  const session_limits lim = ctx.sessions;
  std::string pending_bytes;                         // answers not yet handed to the socket
  auto writing = std::make_shared<std::string>();  // the write in progress
  bool write_busy = false, read_busy = false;
  bool client_done = false;  // it shut its sending side: answer what it sent, then close
  // A decaying maximum of answer sizes. It starts high (a window of 8), so
  // that a client's first burst of GETs of large values is not a large
  // amount in flight, and opens up over a few hundred small answers.
  std::size_t answer_estimate = std::max<std::size_t>(lim.pause_bytes / 8, 1);
  requester out(ctx, db, [&](const requester::waiter& w, reply&& rep) {
    const std::size_t before = pending_bytes.size();
    cp::append_response(pending_bytes, w.id, rep.code, rep.message, rep.found, rep.value);
    answer_estimate = std::max(pending_bytes.size() - before, answer_estimate - answer_estimate / 64);
  });
  auto held = [&] { return pending_bytes.size() + (write_busy ? writing->size() : 0); };
  auto may_take = [&] {
    const std::size_t window =
        std::clamp<std::size_t>(lim.pause_bytes / std::max<std::size_t>(answer_estimate, 1), 8, lim.max_in_flight);
    return out.pending() < window && held() < lim.pause_bytes;
  };
  auto frames = std::make_shared<wire::frame_reader>(cp::max_frame);
  frames->feed(rest);
  map_ptr routed_map;  // the map `routed` was made from
  cp::routes routed;
  // ROUTE_REQUEST: answered at once from this node's newest map. Its answer
  // counts against pause_bytes like any other, so a client that asks
  // without reading stops being read.
  auto answer_routes = [&](std::uint64_t id) {
    map_ptr m = ctx.routes.get(db);
    if (!m) {
      cp::routes none;
      none.id = id;
      none.code = static_cast<std::uint16_t>(errc::no_master);
      cp::append_routes(pending_bytes, none);
      return;
    }
    if (m != routed_map) {
      routed = routes_of(*m);
      routed_map = std::move(m);
    }
    routed.id = id;
    cp::append_routes(pending_bytes, routed);
  };

  // Decodes and sends on the frames already read, while the window allows.
  auto take_held = [&]() -> bool {
    while (may_take()) {
      auto f = frames->next();
      if (!f) {
        log::warn("db", "closing a client connection: ", f.err().message);
        return false;
      }
      if (!*f) return true;
      auto v = cp::decode_request(**f);
      if (!v) {
        if (auto id = cp::decode_route_request(**f)) {
          answer_routes(*id);
          continue;
        }
        log::warn("db", "closing a client connection: ", v.err().message);
        return false;
      }
      request r;
      r.kind = static_cast<std::uint8_t>(v->op);
      r.key = std::string(v->key);
      if (carries_value(v->op)) r.value = std::string(v->value);
      if (v->tag.seq != 0 && client_id != 0) r.wid = {client_id, v->tag.seq, v->tag.floor, v->tag.retry};
      if (v->op == op::unsafe_set) {
        out.submit(std::move(r), nullptr);
        continue;
      }
      const requester::waiter w{v->id, {}, {}};
      out.submit(std::move(r), &w);
    }
    return true;
  };
  // What one read brought goes to each primary as one message.
  auto take_frames = [&]() -> bool {
    out.hold();
    const bool ok = take_held();
    out.flush();
    return ok;
  };
  // Reads start as soon as the window allows: a read after one that emptied
  // the socket waits for the client's next bytes without a system call
  // (stream::start_read).
  auto pump_reads = [&]() -> bool {
    if (read_busy) return true;
    if (!take_frames()) return false;
    if (client_done || !may_take()) return true;
    char* buf = frames->prepare(kReadChunk);
    read_busy = true;
    sock->start_read(buf, kReadChunk, kRead, frames);
    return true;
  };
  // False when the connection must close.
  auto handle = [&](message& m) -> bool {
    if (auto* d = m.get_if<io::io_done>()) {
      if (d->tag == kRead) {
        read_busy = false;
        if (d->ec == boost::asio::error::eof) {
          client_done = true;
          return true;
        }
        if (d->ec) return false;  // the client went away
        frames->commit(d->bytes);
        return true;
      }
      if (d->tag == kWrite) {
        write_busy = false;
        if (d->ec) return false;
        if (writing->capacity() > lim.pause_bytes) *writing = std::string();  // after a burst, give it back
        writing->clear();
        return true;
      }
    }
    (void)out.on_message(m);
    return true;
  };

  // Answers (some come at once, from take_frames) go out in one write.
  auto flush = [&]() -> bool {
    if (held() > lim.max_output_bytes) {
      log::warn("db", "closing a client session: ", held(), " bytes of answers it does not read (the limit is ",
                lim.max_output_bytes, ")");
      return false;
    }
    if (!write_busy && !pending_bytes.empty()) {
      // Written here when the socket takes it all (the common case): no
      // completion to wait for, so no second wake-up of this session.
      boost::system::error_code ec;
      const std::size_t n = sock->try_write_some(pending_bytes.data(), pending_bytes.size(), ec);
      if (ec) return false;
      if (n == pending_bytes.size()) {
        if (pending_bytes.capacity() > lim.pause_bytes) pending_bytes = std::string();  // after a burst, give it back
        pending_bytes.clear();
        return true;
      }
      writing->swap(pending_bytes);
      write_busy = true;
      io::start([&](auto h) { sock->async_write(boost::asio::buffer(writing->data() + n, writing->size() - n), h); },
                kWrite, writing);
    }
    return true;
  };

  // Once the client has sent all it will, the session ends when every
  // request it sent is answered and the answers are written (an incomplete
  // last frame is dropped).
  auto finished = [&] { return client_done && out.pending() == 0 && held() == 0; };
  if (!pump_reads() || !flush() || finished()) return;
  for (;;) {
    auto m = tp::receive();
    if (!handle(*m)) return;
    for (int i = 0; i < 1024; ++i) {  // gather what is already here into one write
      auto more = tp::receive(clock::duration::zero());
      if (!more) break;
      if (!handle(*more)) return;
    }
    if (!pump_reads() || !flush() || finished()) return;
  }
}

}  // namespace

void serve_client(context& ctx, std::shared_ptr<stream> sock, std::string first_frame, std::string rest) {
  registry::pg& groups = ctx.groups;
  const std::string node = node_name(tp::current_runtime().node());
  auto refuse = [&](errc code, const std::string& why) {
    log::info("db", "refused a client: ", why);
    (void)write_all(*sock, cp::encode_welcome(code, why, node));
  };
  // Every session counts, from its hello on, against the node's limit.
  struct session_count {
    std::atomic<std::uint32_t>& n;
    ~session_count() { n.fetch_sub(1); }
  } counted{*ctx.open_sessions};
  if (counted.n.fetch_add(1) >= ctx.sessions.max_sessions) {
    return refuse(errc::unavailable, "this node has its maximum of " + std::to_string(ctx.sessions.max_sessions) +
                                         " client sessions open; retry later or on another node");
  }
  auto hello = cp::decode(first_frame);
  if (!hello || hello->kind != cp::hello) {
    log::warn("db", "closing a client connection: ", hello ? "expected CLIENT_HELLO" : hello.err().message);
    return;
  }
  if (hello->version < cp::oldest_version || hello->version > cp::version) return refuse(errc::bad_argument, std::string(cp::unsupported_version));
  const std::string db = hello->db;
  const auto master = groups.oldest(server_group(db));
  if (!master) return refuse(errc::unknown_db, "no server of database '" + db + "' runs in this cluster");
  // After a wrong key from this address, attempts from it take turns.
  boost::system::error_code ec;
  const std::string address = sock->socket().remote_endpoint(ec).address().to_string();
  if (ctx.auth) {
    const auto now = clock::now();
    auto turn = ctx.auth->admit(address, now);
    if (!turn) {
      return refuse(errc::unauthorized, "too many failed client-key attempts from " + address + "; retry later");
    }
    if (*turn > now) tp::sleep_for(*turn - now);
  }
  auto auth = tp::call(*master, auth_request{hello->token}, std::chrono::seconds(5));
  if (!auth || !auth->is<reply>()) return refuse(errc::no_master, "the master of '" + db + "' did not answer; retry");
  if (auto code = static_cast<errc>(auth->get<reply>().code); code != errc::ok) {
    if (ctx.auth && code == errc::unauthorized) ctx.auth->fail(address, clock::now());
    return refuse(code, auth->get<reply>().message);
  }

  std::uint64_t max_key = 0, max_value = 0;
  // The database's limits go with the WELCOME (clients check batches with
  // them): wait a moment for this node's first map of it.
  if (!ctx.routes.get(db)) {
    const pid routes = tp::whereis(routes_process);
    tp::send(*master, map_request{db, routes ? routes : tp::self(), 0});
    for (int i = 0; i < 200 && !ctx.routes.get(db); ++i) tp::sleep_for(std::chrono::milliseconds(5));
  }
  if (auto m = ctx.routes.get(db)) {
    max_key = m->settings.max_key_bytes;
    max_value = m->settings.max_value_bytes;
  }
  if (!write_all(*sock, cp::encode_welcome(errc::ok, "", node, max_key, max_value))) return;

  run_session(ctx, sock, db, hello->client_id, rest);
}

}  // namespace panal::db
