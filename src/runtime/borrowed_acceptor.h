// A listening socket whose descriptor belongs to someone else (the node),
// taken up by a process. When the process ends (killed, or stopped by its
// supervisor), pending accepts are cancelled and the descriptor is let go
// without being closed, so the process that replaces it accepts on the same
// port and no connection attempt is refused meanwhile.
//
// Thread-safety: inside one process (it uses that process's io_context).
// Throws std::runtime_error if the descriptor cannot be taken up, which
// ends the process as a failed start would.
#pragma once

#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include <boost/asio/ip/tcp.hpp>

#include "runtime/listen.h"

namespace panal::io {

class borrowed_acceptor {
 public:
  explicit borrowed_acceptor(int fd);  // IPv4 or IPv6, as the socket is
  ~borrowed_acceptor();
  borrowed_acceptor(const borrowed_acceptor&) = delete;
  borrowed_acceptor& operator=(const borrowed_acceptor&) = delete;
  boost::asio::ip::tcp::acceptor& get() { return a_; }

 private:
  boost::asio::ip::tcp::acceptor a_;
};

}  // namespace panal::io
