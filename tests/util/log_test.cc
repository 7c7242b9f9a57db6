#include "util/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace panal {
namespace {

TEST(Log, DropsLinesBelowTheLevelAndKeepsTheRest) {
  std::vector<std::string> lines;
  log::set_sink([&](log::level, std::string_view c, std::string_view t) {
    lines.push_back(std::string(c) + ":" + std::string(t));
  });
  const auto before = log::get_level();
  log::set_level(log::level::warn);
  log::info("test", "hidden ", 1);
  log::warn("test", "shown ", 2);
  log::error("test", "also ", 3.5);
  log::set_level(before);
  log::set_sink(nullptr);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "test:shown 2");
  EXPECT_EQ(lines[1], "test:also 3.5");
}

TEST(Log, ParsesLevelNames) {
  log::level l = log::level::info;
  EXPECT_TRUE(log::parse_level("debug", l));
  EXPECT_EQ(l, log::level::debug);
  EXPECT_FALSE(log::parse_level("loud", l));
  EXPECT_EQ(l, log::level::debug);
}

}  // namespace
}  // namespace panal
