#include "dist/codec.h"

#include <gtest/gtest.h>

#include "dist/node_name.h"
#include "dist/protocol.h"
#include "runtime/process.h"
#include "wire/frame.h"

namespace panal::dist {
namespace {

// Encodes a signal as a frame and decodes it again.
detail::signal round_trip(const detail::signal& s) {
  auto frame = encode_signal(s);
  EXPECT_TRUE(frame) << frame.err();
  wire::frame_reader r;
  r.feed(*frame);
  auto payload = r.next();
  EXPECT_TRUE(payload && *payload);
  auto d = decode(**payload);
  EXPECT_TRUE(d) << d.err();
  EXPECT_EQ(d->kind, frame_kind::signal);
  return std::move(*d->sig);
}

TEST(Codec, SignalsRoundTripWithTheirPayloads) {
  const pid a{node_index("a@h:1"), 7, 4097}, b{node_index("b@h:2"), 9, 258};
  const ref tag{node_index("a@h:1"), 7, 99};
  auto m = round_trip({detail::signal::kind::message, a, b, {}, std::string("hello")});
  EXPECT_EQ(m.from, a);
  EXPECT_EQ(m.to, b);
  EXPECT_EQ(m.payload.get<std::string>(), "hello");

  auto down = round_trip({detail::signal::kind::down, b, a, tag, exit_reason::error("boom")});
  EXPECT_EQ(down.tag, tag);
  EXPECT_EQ(down.payload.get<exit_reason>(), exit_reason::error("boom"));

  call_request req{a, tag, std::int64_t{42}};
  auto call = round_trip({detail::signal::kind::message, a, b, {}, std::move(req)});
  ASSERT_TRUE(call.payload.is<call_request>());
  EXPECT_EQ(call.payload.get<call_request>().body.get<std::int64_t>(), 42);
}

TEST(Codec, UnregisteredTypesAreRefusedNotSent) {
  struct local_only {
    int x;
  };
  auto frame = encode_signal({detail::signal::kind::message, {}, {}, {}, local_only{1}});
  ASSERT_FALSE(frame);
  EXPECT_NE(frame.err().message.find("not registered"), std::string::npos);
}

TEST(Codec, AnUnknownMessageTypeIsDroppedNotFatal) {
  // [5, 0, pid, pid, ref, [0xdeadbeef, 1]]: a message of a type this node does
  // not know (another node may run services this one does not).
  std::string p("\x96\x05\x00", 3);  // (a literal would stop at the NUL)
  const std::string pid_bytes = "\x93\xa5" "a@h:1" "\x01\x02";
  p += pid_bytes + pid_bytes + pid_bytes + "\x92\xce\xde\xad\xbe\xef\x01";
  auto d = decode(p);
  ASSERT_TRUE(d) << d.err();
  EXPECT_NE(d->dropped.find("unknown message type"), std::string::npos);
}

TEST(Codec, HandshakeDecodingRefusesOtherKindsUnparsed) {
  EXPECT_EQ(decode_handshake(std::string("\x91\x04", 2)).code(), errc::malformed);  // a tick
  EXPECT_TRUE(decode(std::string("\x91\x04", 2)));
}

TEST(Codec, UnregisteredCallBodiesFailAtTheSender) {
  struct local_only {
    int x;
  };
  call_request req{{}, {}, local_only{1}};
  auto frame = encode_signal({detail::signal::kind::message, {}, {}, {}, std::move(req)});
  ASSERT_FALSE(frame);
  EXPECT_NE(frame.err().message.find("not registered"), std::string::npos);
}

TEST(Codec, MalformedKindsAreMalformed) {
  EXPECT_EQ(decode(std::string("\x91\x63", 2)).code(), errc::malformed);  // kind 99
  EXPECT_EQ(decode(std::string("\x90", 1)).code(), errc::malformed);      // empty array
}

TEST(NodeName, ParsesAndRejects) {
  auto a = parse_node_name("n1@127.0.0.1:7001");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "n1");
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7001);
  for (const char* bad : {"n1", "@h:1", "n1@h", "n1@h:0", "n1@h:70000", "n 1@h:1", "n1@:1", "n1@h:1x"}) {
    EXPECT_FALSE(parse_node_name(bad)) << bad;
  }
}

TEST(Frame, FeedingNothingIsHarmless) {
  wire::frame_reader r;
  r.feed(std::string_view());
  auto f = r.next();
  ASSERT_TRUE(f);
  EXPECT_FALSE(*f);
}

}  // namespace
}  // namespace panal::dist
