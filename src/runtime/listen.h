// Opening a listening TCP socket whose descriptor a node keeps (its
// processes borrow it: runtime/borrowed_acceptor.h). No asio here.
//
// Thread-safety: any thread.
#pragma once

#include <cstdint>
#include <string>

#include "util/error.h"

namespace panal::io {

struct listening {
  int fd = -1;
  std::uint16_t port = 0;  // the port it got (asked for 0: any free one)
};

// On host (a name or an address) and port. Errors name the address
// (bad_argument: cannot resolve, port in use, ...).
result<listening> listen(const std::string& host, std::uint16_t port, int backlog);

}  // namespace panal::io
