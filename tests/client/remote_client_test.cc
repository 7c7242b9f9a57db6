// panal::remote_client against a node this test plays itself (one TCP
// connection on 127.0.0.1, the client protocol by hand), so that it decides
// when each answer goes out: a calling thread reads its own answers, and
// an answer read by one caller reaches the caller it belongs to.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <future>
#include <string>
#include <vector>
#include <thread>

#include "client/remote_client.h"
#include "db/client_protocol.h"
#include "wire/frame.h"
#include "../test_ports.h"
#include "../test_util.h"

namespace panal {
namespace {

namespace cp = db::client_protocol;
using namespace std::chrono_literals;

std::size_t thread_count() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

// Listens on 127.0.0.1; accept() takes one client, answers its hello, and
// then the test reads its requests and writes the answers.
class fake_node {
 public:
  fake_node() {
    listener_ = test::bind_loopback(port_, 4);
    EXPECT_GE(listener_, 0);
    timeval tv{10, 0};  // a client that never comes fails the test, it does not hang it
    ::setsockopt(listener_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~fake_node() {
    if (conn_ >= 0) ::close(conn_);
    ::close(listener_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Takes the client's connection and welcomes it.
  bool accept() {
    conn_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn_ < 0) return false;
    timeval tv{10, 0};  // a request that never comes fails the test, it does not hang it
    ::setsockopt(conn_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;  // each answer goes out when written (as a node's do)
    ::setsockopt(conn_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto hello = next();
    if (!hello || hello->kind != cp::hello) return false;
    hello_db_ = hello->db;
    // No database: refused, with the node's name (as a node does).
    return write(hello_db_.empty() ? cp::encode_welcome(errc::unknown_db, "no database", name())
                                   : cp::encode_welcome(errc::ok, "", name()));
  }
  // The next frame from the client (nothing when none came in 10 s).
  std::optional<cp::frame> next() {
    for (;;) {
      auto f = frames_.next();
      if (!f) return std::nullopt;
      if (*f) {
        if (cp::kind_of(**f) == cp::route_request) {
          auto id = cp::decode_route_request(**f);
          if (!id) return std::nullopt;
          cp::frame r;
          r.kind = cp::route_request;
          r.id = *id;
          return r;
        }
        auto d = cp::decode(**f);
        if (!d) return std::nullopt;
        return std::move(*d);
      }
      char* buf = frames_.prepare(4096);
      const ssize_t n = ::recv(conn_, buf, 4096, 0);
      if (n <= 0) return std::nullopt;
      frames_.commit(static_cast<std::size_t>(n));
    }
  }
  bool answer(const cp::frame& request, std::string_view value) {
    return write(cp::encode_response(request.id, 0, "", true, value));
  }
  // The next frame if one comes within `ms` (nothing otherwise).
  std::optional<cp::frame> next_within(int ms) {
    pollfd p{conn_, POLLIN, 0};
    if (frames_.buffered() == 0 && ::poll(&p, 1, ms) <= 0) return std::nullopt;
    return next();
  }
  // Answers a ROUTE_REQUEST: every slot's primary is `primary` (a node
  // name); none: "no map yet".
  bool answer_routes(const cp::frame& request, const std::vector<std::string>& nodes, std::optional<std::uint16_t> primary) {
    cp::routes r;
    r.id = request.id;
    if (primary) {
      r.generation = 1;
      r.epoch = 1;
      r.nodes = nodes;
      r.primary.assign(16, *primary);
    } else {
      r.code = static_cast<std::uint16_t>(errc::unavailable);
    }
    std::string bytes;
    cp::append_routes(bytes, r);
    return write(bytes);
  }
  std::string name() const { return "fake@" + address(); }
  const std::string& hello_db() const { return hello_db_; }

 private:
  bool write(const std::string& bytes) {
    return ::send(conn_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  int listener_ = -1;
  int conn_ = -1;
  std::uint16_t port_ = 0;
  std::string hello_db_;
  wire::frame_reader frames_;
};

// Whether thread `tid` is blocked in recvfrom (a caller reading its connection).
bool in_recv(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long nr = -1;
  f >> nr;
  return nr == SYS_recvfrom;
}

std::unique_ptr<remote_client> connect_to(fake_node& node, std::vector<std::string> more = {}) {
  auto accepted = std::async(std::launch::async, [&] { return node.accept(); });
  more.insert(more.begin(), node.address());
  auto c = remote_client::connect({.addresses = more, .db = "db", .timeout = 20s, .route = false});
  EXPECT_TRUE(accepted.get());
  EXPECT_TRUE(c) << c.err();
  return c ? std::move(*c) : nullptr;
}

TEST(RemoteClient, ACallReadsItsOwnAnswerNoThreadIsStartedForIt) {
  fake_node node;
  const std::size_t before = thread_count();
  auto c = connect_to(node);
  ASSERT_TRUE(c);
  // connect_to's helper thread has ended (its future was read): what is
  // left is the client's, and it keeps none (a reader thread cost a hand-off per call).
  ASSERT_TRUE(test::eventually([&] { return thread_count() == before; })) << thread_count() << " vs " << before;
  auto got = std::async(std::launch::async, [&] { return c->get("k"); });
  auto r = node.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->key, "k");
  EXPECT_EQ(thread_count(), before + 1);  // the caller only
  ASSERT_TRUE(node.answer(*r, "v"));
  ASSERT_EQ(got.wait_for(test::kWait), std::future_status::ready);
  auto v = got.get();
  ASSERT_TRUE(v) << v.err();
  EXPECT_EQ(**v, "v");
}

// Two callers share the connection; the first one reads it. Each round has
// both orders: the first answer belongs to the caller that does not read
// (it must wake with it), and the reader leaves while the other still waits
// (it must take over the reading). Either breaks as a call that never returns.
TEST(RemoteClient, AnswersReachTheirCallersWhoeverReadsThem) {
  fake_node node;
  auto c = connect_to(node);
  ASSERT_TRUE(c);
  for (int round = 0; round < 20; ++round) {
    const bool first_answers_second = round % 2 == 0;
    std::atomic<pid_t> a_tid{0};
    auto a = std::async(std::launch::async, [&] {
      a_tid = ::gettid();
      return c->get("a");
    });
    auto ra = node.next();
    ASSERT_TRUE(ra);
    // `a` reads the connection (it is blocked in its read) before `b` calls.
    ASSERT_TRUE(test::eventually([&] { return a_tid != 0 && in_recv(a_tid); }));
    auto b = std::async(std::launch::async, [&] { return c->get("b"); });
    auto rb = node.next();
    ASSERT_TRUE(rb);
    auto [early, early_req, late, late_req] =
        first_answers_second ? std::tie(b, rb, a, ra) : std::tie(a, ra, b, rb);
    ASSERT_TRUE(node.answer(*early_req, early_req->key + "-value"));
    ASSERT_EQ(early.wait_for(test::kWait), std::future_status::ready) << "round " << round;
    ASSERT_EQ(late.wait_for(0s), std::future_status::timeout);  // its answer has not gone out
    ASSERT_TRUE(node.answer(*late_req, late_req->key + "-value"));
    ASSERT_EQ(late.wait_for(test::kWait), std::future_status::ready) << "round " << round;
    auto va = a.get(), vb = b.get();
    ASSERT_TRUE(va && *va) << va.err();
    ASSERT_TRUE(vb && *vb) << vb.err();
    EXPECT_EQ(**va, "a-value");
    EXPECT_EQ(**vb, "b-value");
  }
}

// A batch whose requests and answers both outgrow the sockets' buffers: a
// node stops reading while its answers go unread (as a session pauses past
// its output limit), so a caller that only read after writing everything
// would wait on its own write until it failed.
TEST(RemoteClient, ABatchLargerThanTheSocketBuffersIsReadWhileItIsWritten) {
  fake_node node;
  auto c = connect_to(node);
  ASSERT_TRUE(c);
  constexpr int kKeys = 4000;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(std::to_string(i) + std::string(8 * 1024, 'k'));
  std::thread serve([&] {  // answers each request as it reads it; a blocking write stops its reading
    const std::string value(16 * 1024, 'v');
    for (int i = 0; i < kKeys; ++i) {
      auto r = node.next();
      if (!r || !node.answer(*r, value)) return;
    }
  });
  auto got = c->mget(keys);
  serve.join();
  ASSERT_TRUE(got) << got.err();
  ASSERT_EQ(got->size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ((*got)[kKeys - 1], std::string(16 * 1024, 'v'));
}

// A node that stops reading (a stalled process): a batch waits on the
// full socket, and the interrupt check (Ctrl-C in Python) still ends the
// call at once, not at its timeout (20 s here).
TEST(RemoteClient, AnInterruptEndsACallWhoseWriteWaitsOnAFullSocket) {
  fake_node node;
  auto c = connect_to(node);
  ASSERT_TRUE(c);
  std::atomic<bool> stop{false};
  std::atomic<bool> blocked{false};  // the write found the socket full
  c->set_interrupt_check([&] {
    blocked = true;
    return stop.load();
  });
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 2000; ++i) items.emplace_back(std::to_string(i), std::string(16 * 1024, 'v'));  // 32 MB
  auto got = std::async(std::launch::async, [&] { return c->mset(items); });
  ASSERT_TRUE(test::eventually([&] { return blocked.load(); }));
  stop = true;
  ASSERT_EQ(got.wait_for(test::kWait), std::future_status::ready);
  auto r = got.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::timeout);
  EXPECT_NE(r.err().message.find("interrupted"), std::string::npos) << r.err();
}

// A caller whose interrupt check takes long (Python runs its signal
// handlers there) lets go of its connection before the check: another
// caller's answer on it is read meanwhile, not once the check is over.
TEST(RemoteClient, ACallerInItsInterruptCheckLeavesItsConnectionToOthers) {
  fake_node node;
  auto c = connect_to(node);
  ASSERT_TRUE(c);
  std::atomic<std::thread::id> checker{};  // the caller whose check is slow
  std::atomic<bool> in_check{false}, b_done{false}, give_up{false};
  c->set_interrupt_check([&] {
    if (std::this_thread::get_id() != checker.load()) return false;
    in_check = true;
    // Held here until the other call is over (or the test gave up on it).
    while (!b_done && !give_up) std::this_thread::sleep_for(1ms);
    return false;
  });
  auto a = std::async(std::launch::async, [&] {
    checker = std::this_thread::get_id();
    return c->get("a");
  });
  auto ra = node.next();  // A's request: answered last
  ASSERT_TRUE(ra);
  ASSERT_EQ(ra->key, "a");
  ASSERT_TRUE(test::eventually([&] { return in_check.load(); }));
  auto b = std::async(std::launch::async, [&] {
    auto r = c->get("b");
    b_done = true;
    return r;
  });
  auto rb = node.next();
  ASSERT_TRUE(rb);
  ASSERT_EQ(rb->key, "b");
  ASSERT_TRUE(node.answer(*rb, "vb"));
  const bool b_ready = b.wait_for(test::kWait) == std::future_status::ready;
  give_up = true;
  ASSERT_TRUE(node.answer(*ra, "va"));
  ASSERT_TRUE(b_ready) << "the answer waited for the other caller's interrupt check";
  auto vb = b.get();
  ASSERT_TRUE(vb) << vb.err();
  EXPECT_EQ(**vb, "vb");
  ASSERT_EQ(a.wait_for(test::kWait), std::future_status::ready);
  auto va = a.get();
  ASSERT_TRUE(va) << va.err();
  EXPECT_EQ(**va, "va");
}

// An unsafe_set sent before the client had a map (to its home node) pins
// its key there: once the map names another node for the key, a later
// request of the key still goes home, after the unsafe_set on the same
// session, while a key without a pin goes to its primary. (A pin kept only
// with a map let the read overtake the write on the other node's session.)
TEST(RemoteClient, AnUnsafeSetBeforeTheMapPinsItsKeyToItsConnection) {
  fake_node home, other;
  const std::vector<std::string> nodes{home.name(), other.name()};
  std::atomic<bool> mapped{false};  // route requests get the map (every slot on `other`)
  std::map<std::string, std::string> went;  // key -> the node its latest request reached
  // Serves one frame of `n` if one comes within a few ms.
  auto pump = [&](fake_node& n) {
    auto f = n.next_within(5);
    if (!f) return;
    if (f->kind == cp::route_request) {
      ASSERT_TRUE(n.answer_routes(*f, nodes, mapped ? std::optional<std::uint16_t>(1) : std::nullopt));
      return;
    }
    went[f->key] = n.name();
    if (f->op != db::op::unsafe_set) {
      ASSERT_TRUE(n.answer(*f, f->key));
    }
  };
  auto accepted = std::async(std::launch::async, [&] { return home.accept(); });
  auto connected = std::async(std::launch::async, [&] {
    return remote_client::connect({.addresses = {home.address()}, .db = "db", .timeout = 20s, .route = true});
  });
  ASSERT_TRUE(accepted.get());
  for (int i = 0; i < 2000 && connected.wait_for(0s) != std::future_status::ready; ++i) pump(home);
  auto c = connected.get();
  ASSERT_TRUE(c) << c.err();
  ASSERT_TRUE((*c)->unsafe_set("k", "v"));
  for (int i = 0; i < 2000 && !went.count("k"); ++i) pump(home);
  ASSERT_EQ(went["k"], home.name());

  // The map comes with a later call (the client asks again after 100 ms
  // without one); then the client opens a session on `other`.
  mapped = true;
  auto other_accepted = std::async(std::launch::async, [&] { return other.accept(); });
  bool other_open = false;
  for (int round = 0; round < 500; ++round) {
    went.clear();
    auto got = std::async(std::launch::async, [&] { return (*c)->mget({"k", "z"}); });
    while (got.wait_for(0s) != std::future_status::ready) {
      pump(home);
      if (!other_open && other_accepted.wait_for(0s) == std::future_status::ready) {
        ASSERT_TRUE(other_accepted.get());
        other_open = true;
      }
      if (other_open) pump(other);
    }
    auto v = got.get();
    ASSERT_TRUE(v) << v.err();
    if (went["z"] == other.name()) {  // routed: the map and the session are in place
      EXPECT_EQ(went["k"], home.name()) << "the pinned key left the connection of its unsafe_set";
      return;
    }
  }
  FAIL() << "the client never routed to the key's primary";
}

// A write that fails ends the connection even when no call waits for an
// answer (unsafe_set): the next call opens a session on the next address.
TEST(RemoteClient, AFailedWriteMovesTheClientToTheNextAddress) {
  auto first = std::make_unique<fake_node>();
  fake_node second;
  auto c = connect_to(*first, {second.address()});
  ASSERT_TRUE(c);
  first.reset();  // the node goes away; nothing reads the client's connection
  auto accepted = std::async(std::launch::async, [&] { return second.accept(); });
  // The first write to a closed connection may still succeed (the reset
  // comes back after it): a few go before one fails.
  for (int i = 0; i < 100 && accepted.wait_for(0s) != std::future_status::ready; ++i) {
    (void)c->unsafe_set("k", "v");
  }
  ASSERT_EQ(accepted.wait_for(test::kWait), std::future_status::ready);
  ASSERT_TRUE(accepted.get());
  ASSERT_TRUE(c->unsafe_set("k", "after"));
  std::optional<cp::frame> r;
  do {
    r = second.next();  // the sets that went after it opened
  } while (r && r->value != "after");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, db::op::unsafe_set);
}

// The node goes away while a call waits in its read: the call ends with
// the connection's loss (retried until the timeout, then reported), it
// does not wait on a dead socket.
TEST(RemoteClient, AConnectionLostUnderAWaitingCallEndsIt) {
  auto node = std::make_unique<fake_node>();
  auto c = connect_to(*node);
  ASSERT_TRUE(c);
  c->set_timeout(1s);
  auto got = std::async(std::launch::async, [&] { return c->get("k"); });
  ASSERT_TRUE(node->next());
  node.reset();  // closes the connection and the listener: reconnecting fails too
  ASSERT_EQ(got.wait_for(test::kWait), std::future_status::ready);
  auto v = got.get();
  ASSERT_FALSE(v);
  EXPECT_EQ(v.code(), errc::connection_lost) << v.err();
}

TEST(RemoteClient, TheNodeAtAnAddressSaysItsNameAndOpensNoSession) {
  fake_node node;
  auto accepted = std::async(std::launch::async, [&] { return node.accept(); });
  auto name = remote_client::node_at({.addresses = {node.address()}, .timeout = 20s});
  ASSERT_TRUE(accepted.get());
  ASSERT_TRUE(name) << name.err();
  EXPECT_EQ(*name, node.name());
  EXPECT_EQ(node.hello_db(), "");  // asked for no database: a session is never opened
}

TEST(RemoteClient, TheNodeAtAnAddressWhereNoneListensIsAnError) {
  auto name = remote_client::node_at({.addresses = {"127.0.0.1:" + std::to_string(test::free_port())}, .timeout = 5s});
  ASSERT_FALSE(name);
  EXPECT_EQ(name.code(), errc::connection_lost) << name.err();
}

// A node that closed the session (it died) leaves the list at once: the
// socket says so before any call reads it.
TEST(RemoteClient, ASessionWhoseNodeClosedItLeavesTheListBeforeAnyCall) {
  auto node = std::make_unique<fake_node>();
  auto c = connect_to(*node);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sessions(), std::vector<std::string>{node->name()});
  node.reset();
  EXPECT_EQ(c->sessions(), std::vector<std::string>{});
}

}  // namespace
}  // namespace panal
