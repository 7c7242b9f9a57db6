#include "store/write_log.h"

#include <gtest/gtest.h>

#include <map>

namespace panal::store {
namespace {

using namespace std::chrono_literals;

TEST(WriteLog, RemembersOutcomesUntilTheClientSaysTheyWereAnswered) {
  write_log log;
  const auto t = write_log::clock::now();
  log.add(7, {1, 3, true}, 0, t);
  log.add(7, {2, 3, false}, 0, t);
  log.add(8, {1, 4, true}, 0, t);
  ASSERT_TRUE(log.find(7, 1));
  EXPECT_TRUE(log.find(7, 1)->found);
  EXPECT_FALSE(log.find(7, 2)->found);
  EXPECT_FALSE(log.find(7, 3));
  log.add(7, {3, 3, true}, 2, t);  // every write below 2 was answered
  EXPECT_FALSE(log.find(7, 1));
  EXPECT_TRUE(log.find(7, 2));
  EXPECT_TRUE(log.find(8, 1)) << "other clients are not affected";
}

TEST(WriteLog, UntrackedWritesLeaveNothing) {
  write_log log;
  log.add(0, {1, 3, true}, 0, write_log::clock::now());
  EXPECT_EQ(log.records(), 0u);
}

TEST(WriteLog, OutOfOrderArrivalsAreFound) {
  write_log log;
  const auto t = write_log::clock::now();
  for (std::uint64_t s : {5, 3, 9, 4, 1}) log.add(1, {s, 0, s % 2 == 1}, 0, t);
  for (std::uint64_t s : {1, 3, 4, 5, 9}) ASSERT_TRUE(log.find(1, s)) << s;
  EXPECT_FALSE(log.find(1, 2));
}

TEST(WriteLog, BoundedPerClientAndForgetsSilentClients) {
  write_log log(100, 1min);
  const auto t = write_log::clock::now();
  for (std::uint64_t s = 1; s <= 1000; ++s) log.add(1, {s, 0, true}, 0, t);
  EXPECT_LE(log.records(), 100u);
  EXPECT_TRUE(log.find(1, 1000));
  EXPECT_FALSE(log.find(1, 1));
  log.add(2, {1, 0, true}, 0, t + 50s);
  log.expire(t + 90s);
  EXPECT_FALSE(log.find(1, 1000)) << "silent for 90 s";
  EXPECT_TRUE(log.find(2, 1));
}

TEST(WriteLog, RecordsGoWithTheirSlot) {
  write_log log;
  const auto t = write_log::clock::now();
  log.add(1, {1, 10, true}, 0, t);
  log.add(1, {2, 11, true}, 0, t);
  log.add(2, {1, 10, false}, 0, t);
  int n = 0;
  log.for_slot(10, [&](std::uint64_t, const write_log::record& r) {
    EXPECT_EQ(r.slot, 10u);
    ++n;
  });
  EXPECT_EQ(n, 2);
  std::map<std::uint32_t, int> by_slot;
  log.add(3, {7, 12, true}, 0, t);
  log.for_slots([](std::uint32_t s) { return s == 10 || s == 12; },
                [&](std::uint64_t, const write_log::record& r) { ++by_slot[r.slot]; });
  EXPECT_EQ(by_slot, (std::map<std::uint32_t, int>{{10, 2}, {12, 1}}));
}

}  // namespace
}  // namespace panal::store
