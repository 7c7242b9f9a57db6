// A small HTTP/1.1 server for operators: a node's metrics and live page
// (node.cc says what it serves; docs/operations.md lists it).
//
// Promises:
// - Bounded for any peer: at most kMaxConnections at once (more are closed
//   unread), a request head of at most kMaxHead bytes that must arrive
//   within kReadTimeout, and an answer that must be taken within
//   kWriteTimeout; a body is never read. Only GET and HEAD are served.
// - One request per connection (Connection: close), except streams
//   (server-sent events): at most kMaxStreams at once (more get 503), each
//   open at most kMaxStreamLife, and closed when an event is not taken
//   within its interval plus two seconds.
// - The listening socket belongs to the node: http_main() borrows it, so a
//   restarted server accepts on the same port.
//
// Thread-safety: http_listen() anywhere; http_main() is a process body.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "runtime/listen.h"
#include "util/error.h"

namespace panal::http {

inline constexpr unsigned kMaxConnections = 32;
inline constexpr unsigned kMaxStreams = 4;  // of the connections: event streams (the rest stay for scrapes)
inline constexpr auto kMaxStreamLife = std::chrono::minutes(10);  // then the client reconnects
inline constexpr std::size_t kMaxHead = 8 * 1024;
inline constexpr auto kReadTimeout = std::chrono::seconds(5);
inline constexpr auto kWriteTimeout = std::chrono::seconds(10);

struct response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // A stream of server-sent events: `body` is sent first, then next() every
  // `every` until it returns false or the client goes.
  std::function<bool(std::string& event)> next;
  std::chrono::milliseconds every{1000};
};

// Runs inside the connection's process: it may call other processes.
using handler = std::function<response(const std::string& method, const std::string& path)>;

// A listening TCP socket on "host:port" (port 0: any free one); its
// descriptor and the port it got.
using listening = io::listening;
result<listening> listen(const std::string& host_port);

// The server's process body: accepts on `fd` (not closed when it ends).
void serve(int fd, handler h);

}  // namespace panal::http
