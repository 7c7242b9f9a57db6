#include "runtime/borrowed_acceptor.h"

#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "runtime/io.h"

namespace panal::io {

using boost::asio::ip::tcp;

result<listening> listen(const std::string& host, std::uint16_t port, int backlog) {
  boost::asio::io_context tmp;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(tmp);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) return {errc::bad_argument, "cannot resolve " + host};
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint where(address, port);
  tcp::acceptor acceptor(tmp);
  acceptor.open(where.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec) acceptor.listen(backlog, ec);
  if (ec) return {errc::bad_argument, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message()};
  const std::uint16_t got = acceptor.local_endpoint(ec).port();
  return listening{acceptor.release(), got};
}

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
