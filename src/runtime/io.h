// Asynchronous I/O from inside a process: the fiber waits, the thread runs on.
//
// Promise: await() starts one Boost.Asio asynchronous operation on the
// calling process's own io_context and suspends only the calling process
// until it completes; other processes on the thread keep running. It is an
// exit point: if the process is killed while it waits, await() unwinds it
// (process_exit) and the operation's late completion is ignored. Everything
// the operation uses (socket, buffer) must belong to the process, so that
// unwinding closes it and cancels the operation.
//
// Thread-safety: only from inside a process. This header pulls in asio:
// include it only where sockets are used.
#pragma once

#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>

#include "runtime/pid.h"

namespace panal::io {

// The io_context of the calling process's scheduler thread.
boost::asio::io_context& context();

namespace detail {

struct wait_state {
  boost::system::error_code ec;
  std::size_t bytes = 0;
  bool done = false;
  pid waiter;
  std::uint64_t generation = 0;
};

std::shared_ptr<wait_state> begin_wait();
void complete(wait_state& st);  // on the io thread: wakes the waiter if it still waits
void end_wait(wait_state& st);  // suspends until done; exit point

template <class... Rest>
void record(wait_state& st, const boost::system::error_code& ec, Rest&&... rest) {
  st.ec = ec;
  if constexpr (sizeof...(Rest) == 1) {
    if constexpr ((std::is_convertible_v<std::decay_t<Rest>, std::size_t> && ...)) {
      st.bytes = static_cast<std::size_t>((rest, ...));
    }
  }
}

}  // namespace detail

// Example: auto [ec, n] = io::await([&](auto h) { socket.async_read_some(buf, h); });
template <class Initiate>
std::pair<boost::system::error_code, std::size_t> await(Initiate&& initiate) {
  auto st = detail::begin_wait();
  initiate([st](const boost::system::error_code& ec, auto&&... rest) {
    detail::record(*st, ec, rest...);
    detail::complete(*st);
  });
  detail::end_wait(*st);
  return {st->ec, st->bytes};
}

}  // namespace panal::io
