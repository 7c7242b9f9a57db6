#include "db/client_protocol.h"

#include <gtest/gtest.h>

#include "wire/frame.h"

namespace panal::db::client_protocol {
namespace {

frame round_trip(const std::string& bytes) {
  wire::frame_reader r;
  r.feed(bytes);
  auto f = r.next();
  EXPECT_TRUE(f && *f);
  auto d = decode(**f);
  EXPECT_TRUE(d) << d.err();
  return *d;
}

TEST(ClientProtocol, FramesRoundTrip) {
  auto h = round_trip(encode_hello("mydb", "tok", 0xfeedull));
  EXPECT_EQ(h.kind, hello);
  EXPECT_EQ(h.version, version);
  EXPECT_EQ(h.db, "mydb");
  EXPECT_EQ(h.token, "tok");
  EXPECT_EQ(h.client_id, 0xfeedu);
  EXPECT_EQ(round_trip(encode_hello("mydb", "", 1)).token, "");

  auto w = round_trip(encode_welcome(errc::unauthorized, "no", "n1@h:1", 8, 16));
  EXPECT_EQ(w.code, static_cast<int>(errc::unauthorized));
  EXPECT_EQ(w.node, "n1@h:1");
  EXPECT_EQ(w.max_key, 8u);
  EXPECT_EQ(w.max_value, 16u);

  const std::string binary_key("\0k\xff", 3), binary_value("\0\1", 2);
  auto q = round_trip(encode_request(7, op::set, binary_key, binary_value, {41, 40, true}));
  EXPECT_EQ(q.id, 7u);
  EXPECT_EQ(q.op, op::set);
  EXPECT_EQ(q.key, binary_key);
  EXPECT_EQ(q.value, binary_value);
  EXPECT_EQ(q.tag.seq, 41u);
  EXPECT_EQ(q.tag.floor, 40u);
  EXPECT_TRUE(q.tag.retry);

  std::string two;
  append_response(two, 1, 0, "", true, "v1");
  append_response(two, 2, 23, "full", false, "");
  wire::frame_reader r;
  r.feed(two);
  auto a = decode(**r.next());
  auto b = decode(**r.next());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->value, "v1");
  EXPECT_TRUE(a->found);
  EXPECT_EQ(b->code, 23);
  EXPECT_EQ(b->message, "full");
}

TEST(ClientProtocol, MalformedFramesAreErrors) {
  EXPECT_EQ(decode(std::string("\x95\x42\x01\x09\xc4\x01k\xc0", 8)).code(), errc::malformed);  // op 9
  EXPECT_EQ(decode(std::string("\x91\x63", 2)).code(), errc::malformed);                       // kind 99
  EXPECT_EQ(decode(std::string("\x93\x42\x01\x01", 4)).code(), errc::malformed);               // too short
  EXPECT_EQ(decode(std::string("\xc1", 1)).code(), errc::malformed);
}

}  // namespace
}  // namespace panal::db::client_protocol
