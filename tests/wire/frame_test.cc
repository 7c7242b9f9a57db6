#include "wire/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace panal::wire {
namespace {

TEST(Frame, RoundTripsAndSplitsAtAnyByte) {
  std::string stream;
  append_frame(stream, "hello");
  append_frame(stream, "");
  append_frame(stream, std::string(1000, 'x'));
  // Feed one byte at a time: frames come out whole, in order.
  frame_reader r(4096);
  std::vector<std::string> got;
  for (char c : stream) {
    r.feed(std::string_view(&c, 1));
    for (;;) {
      auto f = r.next();
      ASSERT_TRUE(f);
      if (!*f) break;
      got.emplace_back(**f);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "hello");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string(1000, 'x'));
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(Frame, OversizedLengthIsRefusedBeforeItsBytesArrive) {
  frame_reader r(1024);
  r.feed(std::string("\x7f\xff\xff\xff", 4));  // claims 2 GiB
  auto f = r.next();
  ASSERT_FALSE(f);
  EXPECT_EQ(f.code(), errc::malformed);
  EXPECT_LE(r.buffered(), 4u);
  EXPECT_FALSE(r.next()) << "a failed reader stays failed";
}

TEST(Frame, IncompleteHeaderOrPayloadWaitsForMore) {
  frame_reader r;
  r.feed(std::string("\x00\x00", 2));
  EXPECT_FALSE(*r.next());
  r.feed(std::string("\x00\x03" "ab", 4));
  EXPECT_FALSE(*r.next());
  r.feed("c");
  auto f = r.next();
  ASSERT_TRUE(f && *f);
  EXPECT_EQ(**f, "abc");
}

TEST(Frame, ALargeFrameDoesNotKeepItsBufferAfterwards) {
  frame_reader r(16u << 20);
  const std::string big(4u << 20, 'x');
  std::string bytes;
  append_frame(bytes, big);
  append_frame(bytes, "after");
  r.feed(bytes);
  auto f = r.next();
  ASSERT_TRUE(f && *f);
  EXPECT_EQ((*f)->size(), big.size());
  EXPECT_GE(r.capacity(), big.size());
  std::memcpy(r.prepare(64 * 1024), "tail", 4);  // the next read
  EXPECT_LE(r.capacity(), 1u << 20) << "the 4 MiB buffer is given back";
  auto g = r.next();  // what was buffered survives
  ASSERT_TRUE(g && *g);
  EXPECT_EQ(**g, "after");
}

}  // namespace
}  // namespace panal::wire
