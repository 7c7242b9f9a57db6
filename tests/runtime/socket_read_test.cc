// A session's socket read: no system call for a read that must wait.
#include "runtime/socket_read.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <vector>

#include "runtime/io.h"
#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;
using boost::asio::ip::tcp;

// What one read brought, as the process saw it.
struct read_result {
  std::uint64_t tag = 0;
  boost::system::error_code ec;
  std::string bytes;
  std::uint64_t tries_before = 0;  // read_tries() when the read started
  std::uint64_t tries_after_start = 0;
  std::uint64_t tries_after = 0;  // when it completed
};

// Starts a read, runs `then`, and waits for the read's completion.
read_result read_once(tcp::socket& conn, std::uint64_t tag, const std::function<void()>& then = [] {}) {
  auto buf = std::make_shared<std::array<char, 64>>();
  read_result r;
  r.tries_before = io::read_tries();
  io::start_read(conn, buf->data(), buf->size(), tag, buf);
  r.tries_after_start = io::read_tries();
  then();
  for (;;) {
    auto m = tp::receive(test::kWait);
    if (!m) {
      r.ec = boost::asio::error::timed_out;  // the read never completed
      return r;
    }
    if (auto* d = m->get_if<io::io_done>(); d != nullptr && d->tag == tag) {
      r.ec = d->ec;
      r.bytes.assign(buf->data(), d->bytes);
      r.tries_after = io::read_tries();
      return r;
    }
  }
}

// A connected pair on loopback, both of the calling process: `conn` is
// read, `peer` writes.
struct connected_pair {
  tcp::acceptor acceptor{io::context(), tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0)};
  tcp::socket peer{io::context()}, conn{io::context()};
  connected_pair() {
    peer.connect(acceptor.local_endpoint());  // loopback: the kernel completes it from the backlog
    acceptor.accept(conn);
  }
};

TEST(SocketRead, AReadAfterOneThatEmptiedTheSocketWaitsWithoutASystemCall) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    connected_pair pair;
    tcp::socket &peer = pair.peer, &conn = pair.conn;
    std::vector<read_result> seen;
    // 1. Bytes already there: read at once.
    boost::asio::write(peer, boost::asio::buffer("abc", 3));
    seen.push_back(read_once(conn, 1));
    // 2. That read emptied the socket: the next one waits for the peer,
    //    without trying first.
    seen.push_back(read_once(conn, 2, [&] { boost::asio::write(peer, boost::asio::buffer("def", 3)); }));
    // 3. Bytes that came while no read waited, and the thread polled its
    //    sockets meanwhile (it waits here, so it polls): the readiness
    //    event is spent, and the next read must still find the bytes.
    boost::asio::write(peer, boost::asio::buffer("ghi", 3));
    (void)tp::receive(20ms);
    seen.push_back(read_once(conn, 3));
    // 4. The peer closed: end of stream.
    peer.close();
    seen.push_back(read_once(conn, 4));
    tp::send(me, seen);
  }));
  auto seen = in.receive_as<std::vector<read_result>>(test::kWait);
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->size(), 4u);
  const read_result& first = (*seen)[0];
  EXPECT_FALSE(first.ec);
  EXPECT_EQ(first.bytes, "abc");

  const read_result& second = (*seen)[1];
  EXPECT_FALSE(second.ec) << second.ec.message();
  EXPECT_EQ(second.bytes, "def");
  if (io::read_tries() == 0 && first.tries_after == 0) GTEST_SKIP() << "Asio's own read in this build";
  EXPECT_EQ(second.tries_after_start, second.tries_before) << "the read after an emptying one tried at once";
  EXPECT_EQ(second.tries_after, second.tries_before + 1) << "one system call for the read";

  const read_result& third = (*seen)[2];
  EXPECT_FALSE(third.ec) << third.ec.message();
  EXPECT_EQ(third.bytes, "ghi");
  EXPECT_EQ(third.tries_after_start, third.tries_before + 1) << "bytes that came meanwhile are read at once";

  const read_result& fourth = (*seen)[3];
  EXPECT_EQ(fourth.ec, boost::asio::error::eof);
}

// The kernel takes a peer's end of stream (FIN) with the bytes before it,
// and no readiness event follows: the read that took the last bytes must
// not count as emptying the socket, or the next read waits for ever (a
// client that shut its sending side, or a node that died, would hold its
// session or connection open).
TEST(SocketRead, TheEndOfStreamThatCameWithTheLastBytesIsRead) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    std::vector<std::string> seen;
    auto show = [&](const read_result& r) { seen.push_back(r.ec ? r.ec.message() : r.bytes); };
    for (bool read_waits_first : {false, true}) {
      connected_pair pair;
      tcp::socket &peer = pair.peer, &conn = pair.conn;
      boost::asio::write(peer, boost::asio::buffer("abc", 3));
      show(read_once(conn, 1));  // a short read: the next one waits without trying
      auto bytes_then_end = [&] {
        boost::asio::write(peer, boost::asio::buffer("xyz", 3));
        peer.shutdown(tcp::socket::shutdown_send);
      };
      if (read_waits_first) {
        show(read_once(conn, 2, bytes_then_end));  // both came while the read waited
      } else {
        bytes_then_end();
        (void)tp::receive(20ms);  // the thread polls: their event finds no read waiting
        show(read_once(conn, 2));
      }
      show(read_once(conn, 3));
    }
    tp::send(me, seen);
  }));
  auto seen = in.receive_as<std::vector<std::string>>(std::chrono::seconds(30));
  ASSERT_TRUE(seen);
  const std::string eof = boost::system::error_code(boost::asio::error::eof).message();
  EXPECT_EQ(*seen, (std::vector<std::string>{"abc", "xyz", eof, "abc", "xyz", eof}));
}

TEST(SocketRead, ClosingTheSocketEndsAWaitingRead) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    connected_pair pair;
    tcp::socket& conn = pair.conn;
    auto buf = std::make_shared<std::array<char, 64>>();
    io::start_read(conn, buf->data(), buf->size(), 7, buf);
    conn.close();
    auto m = tp::receive(test::kWait);
    auto* d = m ? m->get_if<io::io_done>() : nullptr;
    tp::send(me, d != nullptr && d->tag == 7 ? d->ec : boost::system::error_code(boost::asio::error::timed_out));
  }));
  auto ec = in.receive_as<boost::system::error_code>(test::kWait);
  ASSERT_TRUE(ec);
  EXPECT_EQ(*ec, boost::asio::error::operation_aborted);
  // A process that ends with its read waiting: the late completion is
  // dropped, and the thread goes on (ASan checks the read is freed).
  auto ended = rt.spawn([] {
    connected_pair pair;
    tcp::socket& conn = pair.conn;
    auto buf = std::make_shared<std::array<char, 64>>();
    io::start_read(conn, buf->data(), buf->size(), 8, buf);
  });
  ASSERT_TRUE(ended);
  ASSERT_TRUE(rt.spawn([me] { tp::send(me, 5); }));
  EXPECT_EQ(*in.receive_as<int>(test::kWait), 5);
}

TEST(SocketRead, AnInlineReadAfterOneThatEmptiedTheSocketTriesOnlyWhenBytesCame) {
  runtime rt({.threads = 1});  // one thread: the writer runs only once the reader waits
  inbox in = rt.open_inbox();
  const pid me = in.self();
  // The writer: connects, then writes each string it is sent.
  auto writer = rt.spawn([] {
    auto port = tp::receive_as<unsigned short>(test::kWait);
    if (!port) return;
    tcp::socket peer(io::context());
    peer.connect(tcp::endpoint(boost::asio::ip::address_v4::loopback(), *port));
    for (;;) {
      auto bytes = tp::receive_as<std::string>(test::kWait);
      if (!bytes) return;
      boost::asio::write(peer, boost::asio::buffer(*bytes));
    }
  });
  ASSERT_TRUE(writer);
  ASSERT_TRUE(rt.spawn([me, writer = *writer] {
    tcp::acceptor acceptor(io::context(), tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    tp::send(writer, acceptor.local_endpoint().port());
    tcp::socket conn(io::context());
    io::await([&](auto h) { acceptor.async_accept(conn, h); });
    std::vector<std::string> seen;
    std::array<char, 64> buf{};
    for (const std::string& bytes : {"abc", "def"}) {
      const std::uint64_t before = io::read_tries();
      tp::send(writer, bytes);  // written once this process waits in the read
      auto [ec, n] = io::read_some(conn, buf.data(), buf.size());
      seen.push_back(std::string(buf.data(), ec ? 0 : n) + " in " + std::to_string(io::read_tries() - before));
    }
    tp::send(me, seen);
  }));
  auto seen = in.receive_as<std::vector<std::string>>(test::kWait);
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->size(), 2u);
  if (io::read_tries() == 0 && (*seen)[0] == "abc in 0") GTEST_SKIP() << "Asio's own read in this build";
  // The first read tries at once (the socket is new), finds nothing, and
  // reads when the bytes come; the second follows a read that emptied the
  // socket, so it only reads when they come.
  EXPECT_EQ((*seen)[0], "abc in 2");
  EXPECT_EQ((*seen)[1], "def in 1");
}

}  // namespace
}  // namespace panal
