// Socket waits suspend the fiber, not the thread.
#include "runtime/io.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "runtime/scheduler.h"
#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;
using boost::asio::ip::tcp;

TEST(Io, SocketWaitSuspendsOnlyTheFiber) {
  runtime rt({.threads = 1});  // one thread: a blocked thread would stall everything
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto server = rt.spawn([me] {
    tcp::acceptor acceptor(io::context(), tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    tp::send(me, acceptor.local_endpoint().port());
    tcp::socket conn(io::context());
    io::await([&](auto h) { acceptor.async_accept(conn, h); });
    char buf[5];
    auto [ec, n] = io::await([&](auto h) { boost::asio::async_read(conn, boost::asio::buffer(buf), h); });
    tp::send(me, std::string(buf, n));
  });
  ASSERT_TRUE(server);
  auto port = in.receive_as<unsigned short>(test::kWait);
  ASSERT_TRUE(port);
  // While the server waits in accept/read, another process on the same thread runs.
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, std::string("ran meanwhile")); }));
  EXPECT_EQ(*in.receive_as<std::string>(test::kWait), "ran meanwhile");
  ASSERT_TRUE(rt.spawn([port = *port] {
    tcp::socket s(io::context());
    io::await([&](auto h) { s.async_connect(tcp::endpoint(boost::asio::ip::address_v4::loopback(), port), h); });
    io::await([&](auto h) { boost::asio::async_write(s, boost::asio::buffer("hello", 5), h); });
    tp::sleep_for(50ms);
  }));
  EXPECT_EQ(*in.receive_as<std::string>(test::kWait), "hello");
}

TEST(Io, KillingAProcessBlockedInASocketWaitUnwindsIt) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  auto waiter = rt.spawn([me] {
    tcp::acceptor acceptor(io::context(), tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    tcp::socket conn(io::context());
    tp::send(me, true);
    io::await([&](auto h) { acceptor.async_accept(conn, h); });  // nobody connects
  });
  ASSERT_TRUE(waiter);
  ASSERT_TRUE(in.receive_as<bool>(test::kWait));
  in.monitor(*waiter);
  rt.exit(*waiter, exit_reason::shutdown());
  auto d = in.receive_as<down_msg>(test::kWait);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, exit_reason::shutdown());
  // The thread still serves others after the stale accept completion.
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, 5); }));
  EXPECT_EQ(*in.receive_as<int>(test::kWait), 5);
}

}  // namespace
}  // namespace panal
