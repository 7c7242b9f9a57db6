#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include "db/session.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "db/client_protocol.h"
#include "db/context.h"
#include "db/messages.h"
#include "db/requester.h"
#include "registry/pg.h"
#include "runtime/io.h"
#include "runtime/this_process.h"
#include "util/log.h"
#include "wire/frame.h"

namespace panal::db {

namespace tp = this_process;
namespace cp = client_protocol;
using boost::asio::ip::tcp;

namespace {

// From the reader to the session process.
struct session_request {
  std::uint64_t id;
  op kind;
  std::string key;
  std::string value;
  cp::write_tag tag;
};

bool write_all(tcp::socket& sock, const std::string& bytes) {
  auto [ec, n] = io::await([&](auto h) { boost::asio::async_write(sock, boost::asio::buffer(bytes), h); });
  return !ec;
}

// Sends requests on, writes responses back.
void session_main(context& ctx, std::shared_ptr<tcp::socket> sock, std::string db, std::uint64_t client_id) {
  // Ending with a reason other than normal takes the linked reader down too.
  if (auto j = ctx.groups.join(client_group(db), tp::self()); !j) tp::exit(exit_reason::shutdown(j.err().message));
  requester out(ctx, db);
  std::string pending_bytes;
  auto handle = [&](message& m) {
    if (out.on_message(m)) return;
    auto* r = m.get_if<session_request>();
    if (r == nullptr) return;
    request req;
    req.kind = static_cast<std::uint8_t>(r->kind);
    req.key = std::move(r->key);
    req.value = std::move(r->value);
    if (r->tag.seq != 0 && client_id != 0) req.wid = {client_id, r->tag.seq, r->tag.floor, r->tag.retry};
    if (r->kind == op::unsafe_set) {
      out.submit(std::move(req), nullptr);
      return;
    }
    out.submit(std::move(req), [&pending_bytes, id = r->id](reply&& rep) {
      cp::append_response(pending_bytes, id, rep.code, rep.message, rep.found, rep.value);
    });
  };
  for (;;) {
    auto m = tp::receive();
    handle(*m);
    for (int i = 0; i < 1024; ++i) {  // gather what is already here into one write
      auto more = tp::receive(clock::duration::zero());
      if (!more) break;
      handle(*more);
    }
    if (pending_bytes.empty()) continue;
    std::string bytes;
    bytes.swap(pending_bytes);
    if (!write_all(*sock, bytes)) tp::exit(exit_reason::shutdown("the client went away"));
  }
}

}  // namespace

void serve_client(context& ctx, int fd, std::string first_frame, std::string rest) {
  registry::pg& groups = ctx.groups;
  auto sock = std::make_shared<tcp::socket>(io::context(), tcp::v4(), fd);
  const std::string node = node_name(tp::current_runtime().node());
  auto refuse = [&](errc code, const std::string& why) {
    log::info("db", "refused a client: ", why);
    (void)write_all(*sock, cp::encode_welcome(code, why, node));
  };
  auto hello = cp::decode(first_frame);
  if (!hello || hello->kind != cp::hello) {
    log::warn("db", "closing a client connection: ", hello ? "expected CLIENT_HELLO" : hello.err().message);
    return;
  }
  if (hello->version != cp::version) return refuse(errc::bad_argument, "unsupported client protocol version");
  const std::string db = hello->db;
  const auto master = groups.oldest(server_group(db));
  if (!master) return refuse(errc::unknown_db, "no server of database '" + db + "' runs in this cluster");
  auto auth = tp::call(*master, auth_request{hello->token}, std::chrono::seconds(5));
  if (!auth || !auth->is<reply>()) return refuse(errc::no_master, "the master of '" + db + "' did not answer; retry");
  if (auto code = static_cast<errc>(auth->get<reply>().code); code != errc::ok) {
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

  context* c = &ctx;
  const std::uint64_t client_id = hello->client_id;
  auto session = tp::spawn_link([c, sock, db, client_id] { session_main(*c, sock, db, client_id); },
                                {.thread = spawn_options::same_thread});
  if (!session) return;
  wire::frame_reader frames(cp::max_frame);
  frames.feed(rest);
  for (;;) {
    auto f = frames.next();
    if (!f) {
      log::warn("db", "closing a client connection: ", f.err().message);
      break;
    }
    if (!*f) {
      char* buf = frames.prepare(64 * 1024);
      auto [ec, n] = io::await([&](auto h) { sock->async_read_some(boost::asio::buffer(buf, 64 * 1024), h); });
      if (ec) break;  // the client went away
      frames.commit(n);
      continue;
    }
    auto req = cp::decode(**f);
    if (!req || req->kind != cp::request) {
      log::warn("db", "closing a client connection: ", req ? "expected a REQUEST" : req.err().message);
      break;
    }
    tp::send(*session, session_request{req->id, req->op, std::move(req->key), std::move(req->value), req->tag});
  }
  boost::system::error_code ignored;
  sock->close(ignored);
  tp::exit(*session, exit_reason::kill());
}

}  // namespace panal::db
