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
#include <functional>
#include <memory>
#include <type_traits>

#include "runtime/message.h"
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
pid current_pid();
void deliver(const pid& to, message m);  // on the io thread: into a local process's mailbox
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

// A completed asynchronous operation, delivered as a message (see start()).
struct io_done {
  std::uint64_t tag = 0;
  boost::system::error_code ec;
  std::size_t bytes = 0;
};

// The handler start() gives an operation: delivers io_done{tag, ...} to
// `to`.
inline auto completion(pid to, std::uint64_t tag, std::shared_ptr<void> keep = {}) {
  return [to, tag, keep = std::move(keep)](const boost::system::error_code& ec, auto&&... rest) {
    detail::wait_state st;
    detail::record(st, ec, rest...);
    detail::deliver(to, io_done{tag, st.ec, st.bytes});
  };
}

// Starts an asynchronous operation and returns at once: its completion
// arrives in the calling process's mailbox as io_done{tag, ...}, so that a
// process can wait for a socket and for messages at once (receive() wakes
// for either). `keep` stays alive until the completion (the buffers the
// operation writes into). The operation must end: close the socket when the
// process ends (its completion then comes with operation_aborted, to a pid
// that is gone, and is dropped).
template <class Initiate>
void start(Initiate&& initiate, std::uint64_t tag, std::shared_ptr<void> keep = {}) {
  initiate(completion(detail::current_pid(), tag, std::move(keep)));
}

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
