#include "runtime/message.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace panal {
namespace {

struct big {
  char bytes[200];
};

TEST(Message, HoldsSmallValuesInline) {
  message m(42);
  EXPECT_TRUE(m.is<int>());
  EXPECT_FALSE(m.is<long>());
  EXPECT_EQ(m.get<int>(), 42);
  EXPECT_EQ(m.get_if<std::string>(), nullptr);
  EXPECT_EQ(sizeof(message), 144u);
  EXPECT_TRUE(message::inline_size >= 128u) << "the database's requests travel unboxed";
}

TEST(Message, MovesOwnershipAndLeavesSourceEmpty) {
  message a(std::string(100, 'x'));
  message b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT: moved-from is specified as empty
  ASSERT_TRUE(b.is<std::string>());
  EXPECT_EQ(b.get<std::string>().size(), 100u);
  message c;
  c = std::move(b);
  EXPECT_EQ(c.get<std::string>(), std::string(100, 'x'));
}

TEST(Message, BoxesLargeValues) {
  big v{};
  v.bytes[199] = 7;
  message m(v);
  ASSERT_TRUE(m.is<big>());
  message n(std::move(m));
  EXPECT_EQ(n.get<big>().bytes[199], 7);
}

TEST(Message, CarriesMoveOnlyValues) {
  message m(std::make_unique<int>(5));
  ASSERT_TRUE(m.is<std::unique_ptr<int>>());
  EXPECT_EQ(*m.get<std::unique_ptr<int>>(), 5);
  EXPECT_TRUE(m.clone().empty());  // not copyable: clone gives nothing
}

TEST(Message, ClonesCopyableValues) {
  message m(std::vector<int>{1, 2, 3});
  message c = m.clone();
  ASSERT_TRUE(c.is<std::vector<int>>());
  EXPECT_EQ(c.get<std::vector<int>>(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(m.get<std::vector<int>>().size(), 3u);
}

TEST(Message, DestroysItsValue) {
  auto counter = std::make_shared<int>(0);
  {
    message m(counter);
    EXPECT_EQ(counter.use_count(), 2);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

}  // namespace
}  // namespace panal
