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

std::string payload_of(const std::string& framed) {
  wire::frame_reader r;
  r.feed(framed);
  auto f = r.next();
  EXPECT_TRUE(f && *f);
  return std::string(**f);
}

TEST(ClientProtocol, ResponsesDecodeInPlace) {
  std::string two;
  append_response(two, 300, 0, "", true, std::string("\0v", 2));
  append_response(two, 2, 27, "moved", false, "");
  wire::frame_reader r;
  r.feed(two);
  auto a = decode_response(**r.next());
  ASSERT_TRUE(a) << a.err();
  EXPECT_EQ(a->id, 300u);
  EXPECT_TRUE(a->found);
  EXPECT_EQ(a->value, std::string("\0v", 2));
  auto b = decode_response(**r.next());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->code, 27);
  EXPECT_EQ(b->message, "moved");
  EXPECT_FALSE(b->found);
  EXPECT_EQ(kind_of(payload_of(encode_response(1, 0, "", false, ""))), response);
  EXPECT_EQ(decode_response(payload_of(encode_request(1, op::get, "k", ""))).code(), errc::malformed);
  EXPECT_EQ(decode_response(std::string("\x96\x43\x01\x00\xa0\xc3", 6)).code(), errc::malformed);  // value cut off
}

TEST(ClientProtocol, RouteMapsRoundTrip) {
  const std::string ask = payload_of(encode_route_request(77));
  EXPECT_EQ(kind_of(ask), route_request);
  EXPECT_EQ(*decode_route_request(ask), 77u);
  EXPECT_FALSE(decode_request(ask));  // a session tells them apart by trying REQUEST first

  routes m;
  m.id = 77;
  m.generation = 3;
  m.epoch = 0xfffffff0u;
  m.nodes = {"a@h:1", "b@h:2"};
  m.primary = {0, 1, routes::none, 1};
  std::string out;
  append_routes(out, m);
  const std::string payload = payload_of(out);
  EXPECT_EQ(kind_of(payload), route_map);
  auto d = decode_routes(payload);
  ASSERT_TRUE(d) << d.err();
  EXPECT_EQ(d->id, 77u);
  EXPECT_EQ(d->code, 0);
  EXPECT_EQ(d->generation, 3u);
  EXPECT_EQ(d->epoch, 0xfffffff0u);
  EXPECT_EQ(d->nodes, m.nodes);
  EXPECT_EQ(d->primary, m.primary);
}

TEST(ClientProtocol, HostileRouteMapsAreRefused) {
  routes m;
  m.nodes = {"a@h:1"};
  m.primary = {0, 1};  // names node 1 of 1
  std::string out;
  append_routes(out, m);
  EXPECT_EQ(decode_routes(payload_of(out)).code(), errc::malformed);
  // A node count far beyond the frame: refused before anything is reserved.
  EXPECT_EQ(decode_routes(std::string("\x97\x45\x01\x00\x00\x00\xdd\x7f\xff\xff\xff", 11)).code(), errc::malformed);
  // An odd number of primary bytes.
  EXPECT_EQ(decode_routes(std::string("\x97\x45\x01\x00\x00\x00\x90\xc4\x01\x00", 10)).code(), errc::malformed);
  EXPECT_EQ(decode_route_request(std::string("\x93\x44\x01\x01", 4)).code(), errc::malformed);
  EXPECT_EQ(kind_of(std::string("\xc1", 1)), 0);
  EXPECT_EQ(kind_of(""), 0);
}

}  // namespace
}  // namespace panal::db::client_protocol
