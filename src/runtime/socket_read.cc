#include "runtime/socket_read.h"

#include <boost/version.hpp>

#include "runtime/io.h"

// What this file relies on is Boost 1.74's epoll reactor (Debian 12's):
// its reactor_op protocol and its socket implementation's layout. Any
// other Boost reads through async_read_some, as before.
#if BOOST_VERSION == 107400 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING)
#define PANAL_SOCKET_READ_OWN_OP 1
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <sys/epoll.h>
#endif

namespace panal::io {

namespace {
thread_local std::uint64_t tries = 0;
}  // namespace

std::uint64_t read_tries() { return tries; }

#ifdef PANAL_SOCKET_READ_OWN_OP
namespace {

namespace ad = boost::asio::detail;
using tcp = boost::asio::ip::tcp;

// The socket's implementation (descriptor, state, the reactor's data) is a
// protected member of basic_socket. An explicit instantiation may name it
// ([temp.spec.general]: access is not checked there); the friend it
// defines hands the member pointer out.
using socket_base_type = boost::asio::basic_socket<tcp, boost::asio::any_io_executor>;
using socket_impl_type = ad::io_object_impl<ad::reactive_socket_service<tcp>, boost::asio::any_io_executor>;
struct socket_impl_tag {
  using type = socket_impl_type socket_base_type::*;
  friend type member_pointer(socket_impl_tag);
};
template <class Tag, typename Tag::type Member>
struct expose {
  friend typename Tag::type member_pointer(Tag) { return Member; }
};
template struct expose<socket_impl_tag, &socket_base_type::impl_>;

// And, the same way, what the reactor keeps per descriptor: the events it
// asks epoll for, the lock they are kept under, the events of its last
// poll (task_result_), and its epoll descriptor.
using descriptor_state = ad::epoll_reactor::descriptor_state;
struct registered_events_tag {
  using type = std::uint32_t descriptor_state::*;
  friend type member_pointer(registered_events_tag);
};
template struct expose<registered_events_tag, &descriptor_state::registered_events_>;
struct descriptor_mutex_tag {
  using type = ad::conditionally_enabled_mutex descriptor_state::*;
  friend type member_pointer(descriptor_mutex_tag);
};
template struct expose<descriptor_mutex_tag, &descriptor_state::mutex_>;
struct task_result_tag {
  using type = unsigned int ad::scheduler_operation::*;
  friend type member_pointer(task_result_tag);
};
template struct expose<task_result_tag, &ad::scheduler_operation::task_result_>;
struct epoll_fd_tag {
  using type = int ad::epoll_reactor::*;
  friend type member_pointer(epoll_fd_tag);
};
template struct expose<epoll_fd_tag, &ad::epoll_reactor::epoll_fd_>;

// The events of the descriptor's last poll. descriptor_state derives
// privately from scheduler_operation: only a C-style cast converts.
unsigned last_events(descriptor_state* d) {
  return ((ad::scheduler_operation*)d)->*member_pointer(task_result_tag{});  // NOLINT(google-readability-casting)
}

// The peer's end of stream (a FIN) is taken by the read that takes the
// bytes before it, and no readiness event follows: a short read is "the
// socket is empty" only if the peer has not shut down. epoll says that
// with EPOLLRDHUP, which Asio does not ask for: ask once per socket.
void watch_peer_shutdown(ad::epoll_reactor& reactor, int fd, descriptor_state* d) {
  if (d == nullptr) return;
  ad::conditionally_enabled_mutex::scoped_lock lock(d->*member_pointer(descriptor_mutex_tag{}));
  std::uint32_t& events = d->*member_pointer(registered_events_tag{});
  if (events == 0 || (events & EPOLLRDHUP) != 0) return;  // not registered (closed), or asked already
  epoll_event ev{};
  ev.events = events | EPOLLRDHUP;
  ev.data.ptr = d;
  if (::epoll_ctl(reactor.*member_pointer(epoll_fd_tag{}), EPOLL_CTL_MOD, fd, &ev) == 0) events = ev.events;
}

// Asio's stream read, except for what it tells the reactor: a read that
// returned less than it asked for emptied the socket
// (done_and_exhausted), so the reactor queues the next read without trying
// it, until the socket's next readiness event. Asio's own read says that
// only at end of stream. Not when the peer has shut down: the end of
// stream is still to be read, and no event will come for it.
class read_op : public ad::reactor_op {
 public:
  // Completes into `to`'s mailbox as io_done{tag}.
  read_op(int fd, descriptor_state* d, char* buf, std::size_t size, pid to, std::uint64_t tag, std::shared_ptr<void> keep)
      : reactor_op(boost::system::error_code(), &read_op::perform, &read_op::complete),
        fd_(fd), descriptor_(d), buf_(buf), size_(size), to_(to), tag_(tag), keep_(std::move(keep)) {}
  // Completes a process's inline wait.
  read_op(int fd, descriptor_state* d, char* buf, std::size_t size, std::shared_ptr<detail::wait_state> waiter)
      : reactor_op(boost::system::error_code(), &read_op::perform, &read_op::complete),
        fd_(fd), descriptor_(d), buf_(buf), size_(size), waiter_(std::move(waiter)) {}

 private:
  static status perform(reactor_op* base) {
    auto* o = static_cast<read_op*>(base);
    ++tries;
    if (!ad::socket_ops::non_blocking_recv1(o->fd_, o->buf_, o->size_, 0, true, o->ec_, o->bytes_transferred_)) {
      return not_done;  // nothing there: wait for the next readiness event
    }
    if (o->ec_) return done_and_exhausted;
    if (o->bytes_transferred_ == o->size_) return done;  // more may be waiting
    // Runs under the descriptor's lock (the reactor holds it), which also
    // guards its events. Where epoll does not watch for the peer's
    // shutdown (the request failed), every read tries, as Asio's do.
    const bool watched = (o->descriptor_->*member_pointer(registered_events_tag{}) & EPOLLRDHUP) != 0;
    return watched && (last_events(o->descriptor_) & EPOLLRDHUP) == 0 ? done_and_exhausted : done;
  }
  // owner is null when the io_context is destroyed with the read pending.
  static void complete(void* owner, ad::operation* base, const boost::system::error_code&, std::size_t) {
    std::unique_ptr<read_op> o(static_cast<read_op*>(base));
    if (owner == nullptr) return;
    if (o->waiter_) {
      o->waiter_->ec = o->ec_;
      o->waiter_->bytes = o->bytes_transferred_;
      detail::complete(*o->waiter_);
    } else {
      detail::deliver(o->to_, io_done{o->tag_, o->ec_, o->bytes_transferred_});
    }
  }

  int fd_;
  descriptor_state* descriptor_;  // alive while the read is queued on it
  char* buf_;
  std::size_t size_;
  pid to_;
  std::uint64_t tag_;
  std::shared_ptr<void> keep_;
  std::shared_ptr<detail::wait_state> waiter_;
};

// `make_op(fd, descriptor)` makes the read; it is started as Asio starts its own.
template <class MakeOp>
void start(tcp::socket& socket, MakeOp&& make_op) {
  auto& impl = (static_cast<socket_base_type&>(socket).*member_pointer(socket_impl_tag{})).get_implementation();
  // The reactor the socket is registered with (its io_context's: the
  // process's own, as io.h asks).
  auto& reactor = boost::asio::use_service<ad::reactor>(
      boost::asio::query(socket.get_executor(), boost::asio::execution::context));
  watch_peer_shutdown(reactor, impl.socket_, impl.reactor_data_);
  read_op* op = make_op(impl.socket_, impl.reactor_data_);
  // As Asio's own reads do: the descriptor must not block the thread.
  if ((impl.state_ & ad::socket_ops::non_blocking) == 0 &&
      !ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, op->ec_)) {
    reactor.post_immediate_completion(op, false);
    return;
  }
  reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, op, false, true);
}

}  // namespace

void start_read(tcp::socket& socket, char* buf, std::size_t size, std::uint64_t tag, std::shared_ptr<void> keep) {
  start(socket, [&](int fd, descriptor_state* d) {
    return new read_op(fd, d, buf, size, detail::current_pid(), tag, std::move(keep));
  });
}

std::pair<boost::system::error_code, std::size_t> read_some(tcp::socket& socket, char* buf, std::size_t size) {
  auto st = detail::begin_wait();
  start(socket, [&](int fd, descriptor_state* d) { return new read_op(fd, d, buf, size, st); });
  detail::end_wait(*st);
  return {st->ec, st->bytes};
}

#else

void start_read(boost::asio::ip::tcp::socket& socket, char* buf, std::size_t size, std::uint64_t tag,
                std::shared_ptr<void> keep) {
  socket.async_read_some(boost::asio::buffer(buf, size), completion(detail::current_pid(), tag, std::move(keep)));
}

std::pair<boost::system::error_code, std::size_t> read_some(boost::asio::ip::tcp::socket& socket, char* buf,
                                                            std::size_t size) {
  return await([&](auto h) { socket.async_read_some(boost::asio::buffer(buf, size), h); });
}

#endif

}  // namespace panal::io
