#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include "node/http_server.h"

#include <array>
#include <atomic>
#include <memory>

#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "node/http_request.h"
#include "runtime/borrowed_acceptor.h"
#include "runtime/io.h"
#include "runtime/this_process.h"
#include "util/log.h"

namespace panal::http {

namespace {

namespace tp = this_process;
using boost::asio::ip::tcp;

const char* reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// What a pending operation uses: kept alive until its completion.
struct conn_io {
  explicit conn_io(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  std::array<char, 2048> buf;
  std::string out;
};

// Waits for the io_done of `tag` until `deadline`; false on a timeout or an error.
bool wait_done(std::uint64_t tag, clock::time_point deadline, std::size_t* bytes = nullptr) {
  auto m = tp::receive_if([tag](const message& x) { return x.is<io::io_done>() && x.get<io::io_done>().tag == tag; },
                          std::max(deadline - clock::now(), clock::duration::zero()));
  if (!m) return false;
  const auto& d = m->get<io::io_done>();
  if (bytes != nullptr) *bytes = d.bytes;
  return !d.ec;
}

bool send_all(const std::shared_ptr<conn_io>& c, std::string bytes, clock::duration timeout = kWriteTimeout) {
  c->out = std::move(bytes);
  io::start([&](auto h) { boost::asio::async_write(c->sock, boost::asio::buffer(c->out), h); }, 2, c);
  return wait_done(2, clock::now() + timeout);
}

// After an answer: no more writing, and what the client still sends is
// read and dropped (at most 64 KiB, for at most a second), so that closing
// with unread bytes does not reset the connection before the client has
// read the answer (RFC 9112 9.6, "lingering close").
void linger(const std::shared_ptr<conn_io>& c) {
  boost::system::error_code ignored;
  c->sock.shutdown(tcp::socket::shutdown_send, ignored);
  const auto deadline = clock::now() + std::chrono::seconds(1);
  for (std::size_t dropped = 0; dropped < (64u << 10);) {
    io::start([&](auto done) { c->sock.async_read_some(boost::asio::buffer(c->buf), done); }, 3, c);
    std::size_t n = 0;
    if (!wait_done(3, deadline, &n) || n == 0) return;
    dropped += n;
  }
}

std::string head_of(int status, const std::string& type, std::size_t length, bool stream) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\nContent-Type: " + type +
                  "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  if (stream) {
    h += "Connection: keep-alive\r\n\r\n";
  } else {
    h += "Content-Length: " + std::to_string(length) + "\r\nConnection: close\r\n\r\n";
  }
  return h;
}

void connection(const std::shared_ptr<conn_io>& c, const handler& h, std::atomic<unsigned>& streams) {
  // However it ends, the socket closes (a pending read or write ends too).
  struct closer {
    conn_io& c;
    ~closer() {
      boost::system::error_code ignored;
      c.sock.close(ignored);
    }
  } closing{*c};
  std::string head;
  const auto read_deadline = clock::now() + kReadTimeout;
  // (The search starts where the last one stopped: a trickle of 1-byte
  // reads costs linear time.)
  std::size_t searched = 0;
  while (head.find("\r\n\r\n", searched) == std::string::npos) {
    searched = head.size() >= 3 ? head.size() - 3 : 0;
    if (head.size() > kMaxHead) {
      if (send_all(c, head_of(431, "text/plain", 0, false))) linger(c);
      return;
    }
    io::start([&](auto done) { c->sock.async_read_some(boost::asio::buffer(c->buf), done); }, 1, c);
    std::size_t n = 0;
    if (!wait_done(1, read_deadline, &n)) return;
    head.append(c->buf.data(), n);
  }
  auto parsed = parse_request_line(head);
  if (!parsed) {
    if (send_all(c, head_of(400, "text/plain", 0, false))) linger(c);
    return;
  }
  const std::string& method = parsed->method;
  const std::string& path = parsed->path;
  if (method != "GET" && method != "HEAD") {
    std::string body = "only GET and HEAD are served\n";
    if (send_all(c, head_of(405, "text/plain", body.size(), false) + body)) linger(c);
    return;
  }
  response r = h(method, path);
  const bool stream = static_cast<bool>(r.next) && method == "GET";
  if (stream && streams.fetch_add(1) >= kMaxStreams) {
    streams.fetch_sub(1);
    std::string body = "too many event streams open on this node; retry later\n";
    if (send_all(c, head_of(503, "text/plain", body.size(), false) + body)) linger(c);
    return;
  }
  struct stream_count {
    std::atomic<unsigned>* n;
    ~stream_count() {
      if (n != nullptr) n->fetch_sub(1);
    }
  } counted{stream ? &streams : nullptr};
  std::string out = head_of(r.status, r.content_type, r.body.size(), stream);
  if (method == "GET") out += r.body;
  if (!send_all(c, std::move(out))) return;
  if (!stream) return linger(c);
  const auto stream_end = clock::now() + kMaxStreamLife;
  while (clock::now() < stream_end) {
    // Waiting, it drops whatever else arrives (late answers of calls the
    // handler gave up on), so that its mailbox stays empty.
    const auto next_at = clock::now() + r.every;
    while (clock::now() < next_at) (void)tp::receive(next_at - clock::now());
    std::string event;
    if (!r.next(event)) return;
    // A client that does not take an event within its interval is gone or stuck.
    if (!event.empty() && !send_all(c, std::move(event), r.every + std::chrono::seconds(2))) return;
  }
}

}  // namespace

result<listening> listen(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return {errc::bad_argument, "an HTTP address is host:port, not '" + host_port + "'"};
  const std::string host = host_port.substr(0, colon);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(host_port.substr(colon + 1), &used);
    if (used != host_port.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return {errc::bad_argument, "bad port in HTTP address '" + host_port + "'"};
  }
  auto l = io::listen(host, static_cast<std::uint16_t>(port), 64);
  if (!l) return {errc::bad_argument, "cannot serve HTTP: " + l.err().message};
  return l;
}

void serve(int fd, handler h) {
  io::borrowed_acceptor held(fd);  // a restarted server accepts on the same port
  auto open = std::make_shared<std::atomic<unsigned>>(0);
  auto streams = std::make_shared<std::atomic<unsigned>>(0);
  for (;;) {
    tcp::socket sock(io::context());
    auto [aec, n] = io::await([&](auto done) { held.get().async_accept(sock, done); });
    if (aec) {
      log::warn("http", "accept failed: ", aec.message());
      tp::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (open->load() >= kMaxConnections) continue;  // `sock` closes here
    open->fetch_add(1);
    // The connection runs on this thread: the socket stays with its io_context.
    auto c = std::make_shared<conn_io>(std::move(sock));
    auto spawned = tp::spawn(
        [c, h, open, streams] {
          struct count {
            std::atomic<unsigned>& n;
            ~count() { n.fetch_sub(1); }
          } counted{*open};
          connection(c, h, *streams);
        },
        {.thread = spawn_options::same_thread});
    if (!spawned) open->fetch_sub(1);
  }
}

}  // namespace panal::http
