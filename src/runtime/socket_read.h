// A socket read that tells the reactor when it emptied the socket.
//
// Promise: start_read() reads up to `size` bytes of a plain TCP socket into
// `buf`, and its completion arrives in the calling process's mailbox as
// io::io_done{tag, ec, bytes}, as io::start() of async_read_some would.
// What differs is the cost of a read that must wait: Boost 1.74's Asio
// tries every read it starts with a system call, even when the socket's
// last read emptied it and no readiness event came since (the common case
// for a client session: its answer just went out, and its client has not
// sent the next request), so one read in two found nothing. This read
// tells the reactor that a short read emptied the socket, and the next one
// is then queued for the socket's next readiness event without a system
// call. A readiness event that comes in between (the thread polled while
// the process was busy) makes the next read try at once, as before: no
// request is left waiting in the socket. Nor is the peer's end of stream:
// the kernel hands it over with the bytes before it and no event follows,
// so once epoll says the peer shut down (EPOLLRDHUP, asked for on the
// socket's first read) a short read is not taken as emptying the socket.
//
// `keep` stays alive until the completion (the buffer). The socket must be
// closed when the process ends; the completion then goes to a pid that is
// gone and is dropped.
//
// Thread-safety: from inside a process, on a socket of its own io_context
// (io::context()). Reads of TLS streams go through the stream (a short TLS
// read says nothing about the socket).
#pragma once

#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace panal::io {

void start_read(boost::asio::ip::tcp::socket& socket, char* buf, std::size_t size, std::uint64_t tag,
                std::shared_ptr<void> keep);

// The same read, waited for inline (as io::await of async_read_some): the
// process suspends until it completes; an exit point.
std::pair<boost::system::error_code, std::size_t> read_some(boost::asio::ip::tcp::socket& socket, char* buf,
                                                            std::size_t size);

// How many reads start_read() or read_some() tried on the calling thread, each a system
// call (tests count them). Always 0 where Asio's own read is used instead
// (any Boost but Debian 12's 1.74: see socket_read.cc).
std::uint64_t read_tries();

}  // namespace panal::io
