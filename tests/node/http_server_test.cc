// The operators' HTTP server against hostile and odd clients (plain POSIX
// sockets on loopback): what it answers, and that it bounds what it holds.
#include "node/http_server.h"
#include "node/http_request.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal::http {
namespace {

using namespace std::chrono_literals;

int dial(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything until EOF (or 10 s), after sending `request`.
std::string http_exchange(unsigned short port, const std::string& request) {
  const int fd = dial(port);
  if (fd < 0) return "connect failed";
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

struct server {
  runtime rt{{.threads = 2}};
  listening l;
  std::atomic<int> calls{0};
  server() {
    auto got = listen("127.0.0.1:0");
    EXPECT_TRUE(got);
    l = *got;
    auto p = rt.spawn([this] {
      serve(l.fd, [this](const std::string& method, const std::string& path) {
        ++calls;
        response r;
        if (path == "/stream") {
          r.body = "first\n";
          r.every = 10ms;
          r.next = [n = 0](std::string& e) mutable {
            e = "event " + std::to_string(n++) + "\n";
            return n < 1000;
          };
          return r;
        }
        r.body = method + " " + path + "\n";
        return r;
      });
    });
    EXPECT_TRUE(p);
  }
  ~server() {
    rt.stop();
    ::close(l.fd);
  }
};

TEST(HttpRequestLine, TakesMethodAndPathAndRefusesTheRest) {
  auto r = parse_request_line("GET /a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/a/b");
  for (const char* bad : {"", "\r\n", "GET\r\n", "GET /\r\n", " / HTTP/1.1\r\n", "GET / FTP/1\r\n",
                          "GET / HTTP\r\n", "GET /\r\n HTTP/1.1"}) {
    EXPECT_FALSE(parse_request_line(bad)) << bad;
  }
  EXPECT_EQ(parse_request_line("X  HTTP/1.0")->path, "") << "an empty target is the handler's to refuse";
}

TEST(HttpServer, AnswersGetAndHeadAndRefusesTheRest) {
  server s;
  auto got = http_exchange(s.l.port, "GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Content-Length: 7\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 7), "GET /x\n");  // the query is not the path
  auto head = http_exchange(s.l.port, "HEAD /x HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD has no body";
  EXPECT_EQ(http_exchange(s.l.port, "DELETE /x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(http_exchange(s.l.port, "GET\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(http_exchange(s.l.port, "GET / FTP/9\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(http_exchange(s.l.port, std::string("\0\xff\r\n\r\n", 6)).rfind("HTTP/1.1 400", 0), 0u);
}

TEST(HttpServer, AHeadPastTheLimitIsRefusedAndItsBytesDropped) {
  server s;
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHead * 4, 'a');
  EXPECT_EQ(http_exchange(s.l.port, big).rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(s.calls.load(), 0) << "the handler never saw it";
}

TEST(HttpServer, ARequestTrickledByteByByteIsServed) {
  server s;
  const int fd = dial(s.l.port);
  ASSERT_GE(fd, 0);
  for (char c : std::string("GET /slow HTTP/1.1\r\n\r\n")) {
    ASSERT_EQ(::send(fd, &c, 1, MSG_NOSIGNAL), 1);
    std::this_thread::sleep_for(1ms);
  }
  char buf[512];
  std::string out;
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_NE(out.find("GET /slow\n"), std::string::npos) << out;
}

TEST(HttpServer, ServesAtMostItsStreams) {
  server s;
  // Streams: kMaxStreams are served, one more gets 503.
  std::vector<int> streams;
  for (unsigned i = 0; i < kMaxStreams; ++i) {
    const int fd = dial(s.l.port);
    ASSERT_GE(fd, 0);
    const std::string req = "GET /stream HTTP/1.1\r\n\r\n";
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    char buf[256];
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)).rfind("HTTP/1.1 200", 0), 0u);
    streams.push_back(fd);
  }
  EXPECT_EQ(http_exchange(s.l.port, "GET /stream HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 503", 0), 0u);
  for (int fd : streams) ::close(fd);  // they end at their next event
}

TEST(HttpServer, HoldsAtMostItsConnections) {
  server s;
  // Past kMaxConnections idle ones, more are closed unread; the held ones
  // wait for kReadTimeout (5 s), so within 3 s exactly the extra 4 close.
  std::vector<int> idle;
  for (unsigned i = 0; i < kMaxConnections + 4; ++i) idle.push_back(dial(s.l.port));
  std::vector<bool> closed(idle.size(), false);
  unsigned count = 0;
  const auto deadline = clock::now() + 3s;
  while (clock::now() < deadline) {
    std::vector<pollfd> ps;
    for (int fd : idle) ps.push_back({fd, POLLIN, 0});
    if (::poll(ps.data(), ps.size(), 100) <= 0) continue;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      char c;
      if (!closed[i] && (ps[i].revents & (POLLIN | POLLHUP)) && ::recv(idle[i], &c, 1, MSG_DONTWAIT) == 0) {
        closed[i] = true;
        ++count;
      }
    }
  }
  EXPECT_EQ(count, 4u);
  for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace panal::http
