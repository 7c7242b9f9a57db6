#include "runtime/borrowed_acceptor.h"

#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "runtime/io.h"

namespace panal::io {

using boost::asio::ip::tcp;

borrowed_acceptor::borrowed_acceptor(int fd) : a_(context()) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const bool v6 = ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_INET6;
  boost::system::error_code ec;
  a_.assign(v6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) throw std::runtime_error("cannot take up the listening socket: " + ec.message());
}

borrowed_acceptor::~borrowed_acceptor() {
  boost::system::error_code ignored;
  a_.cancel(ignored);
  (void)a_.release(ignored);
}

}  // namespace panal::io
