#include "wire/unpack.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace panal::wire {
namespace {

std::string pack_value() {
  msgpack::sbuffer buf;
  std::map<std::string, std::vector<int>> v{{"a", {1, 2, 3}}, {"b", {}}};
  msgpack::pack(buf, v);
  return std::string(buf.data(), buf.size());
}

TEST(Unpack, AcceptsWellFormedValues) {
  const std::string bytes = pack_value();
  auto h = unpack(bytes);
  ASSERT_TRUE(h) << h.err();
  auto v = h->get().as<std::map<std::string, std::vector<int>>>();
  EXPECT_EQ(v["a"], (std::vector<int>{1, 2, 3}));
}

TEST(Unpack, RefusesEveryTruncation) {
  const std::string bytes = pack_value();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto h = unpack(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(h) << "prefix of " << n << " bytes was accepted";
    if (!h) {
      EXPECT_EQ(h.code(), errc::malformed);
    }
  }
}

TEST(Unpack, AHugeDeclaredArrayIsRefusedWithoutAllocating) {
  // array 32 claiming 4 billion elements, with one byte behind it.
  EXPECT_FALSE(unpack(std::string("\xdd\xff\xff\xff\xff\x01", 6)));
  // Within the element limit, but more elements than bytes left: a lie.
  auto h = unpack(std::string("\xdd\x00\x01\x00\x00\x01", 6));
  ASSERT_FALSE(h);
  EXPECT_NE(h.err().message.find("exceeds the data"), std::string::npos) << h.err().message;
  // A count that the data could hold but the limit forbids.
  std::string many("\xdc\x00\x10", 3);  // array 16 of 16 elements
  many.append(16, '\x01');
  EXPECT_TRUE(unpack(many));
  EXPECT_FALSE(unpack(many, {.max_depth = 32, .max_elements = 8}));
}

TEST(Unpack, AHugeDeclaredStringIsRefused) {
  EXPECT_FALSE(unpack(std::string("\xdb\xff\xff\xff\xf0" "abc", 8)));
}

TEST(Unpack, DeepNestingIsRefused) {
  std::string deep(100, '\x91');  // 100 nested 1-element arrays
  deep.push_back('\x01');
  EXPECT_FALSE(unpack(deep));
  EXPECT_TRUE(unpack(deep, {.max_depth = 200, .max_elements = 16}));
}

// Each array within the element limit, but values in all past the bound:
// the tree they would make is refused before any of it is built.
TEST(Unpack, ManyNestedArraysArePastTheBoundOfValuesInAll) {
  std::string nested("\xdc\x00\x10", 3);  // array 16 of 16 arrays of 16 nils: 273 values
  for (int i = 0; i < 16; ++i) {
    nested.append("\xdc\x00\x10", 3);
    nested.append(16, '\xc0');
  }
  EXPECT_TRUE(unpack(nested, {.max_depth = 32, .max_elements = 16, .max_values = 273}));
  auto h = unpack(nested, {.max_depth = 32, .max_elements = 16, .max_values = 272});
  ASSERT_FALSE(h);
  EXPECT_NE(h.err().message.find("too many values"), std::string::npos) << h.err().message;
}

TEST(Unpack, TrailingBytesAndReservedBytesAreRefused) {
  EXPECT_FALSE(unpack(std::string("\x01\x02", 2)));
  EXPECT_FALSE(unpack(std::string("\xc1", 1)));
}

}  // namespace
}  // namespace panal::wire
