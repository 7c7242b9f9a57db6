// Free TCP ports on 127.0.0.1 for tests, so parallel runs do not collide.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace panal::test {

inline sockaddr_in loopback(std::uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A socket bound to 127.0.0.1 on a port of the kernel's choice (`port`);
// listening with `backlog` unless it is negative. -1 on failure.
inline int bind_loopback(std::uint16_t& port, int backlog = -1) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback();
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (backlog >= 0 && ::listen(fd, backlog) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

inline std::uint16_t free_port() {
  std::uint16_t port = 0;
  const int fd = bind_loopback(port);
  if (fd >= 0) ::close(fd);
  return port;
}

inline std::string node_on_free_port(const std::string& name) {
  return name + "@127.0.0.1:" + std::to_string(free_port());
}

}  // namespace panal::test
