#include <gtest/gtest.h>
#include "runtime/this_process.h"
TEST(Smoke, PingPong) {
  panal::runtime rt({.threads = 2});
  auto in = rt.open_inbox();
  auto me = in.self();
  auto p = rt.spawn([me] {
    auto m = panal::this_process::receive_as<int>();
    panal::this_process::send(me, *m + 1);
  });
  ASSERT_TRUE(p);
  rt.send(*p, 41);
  auto r = in.receive_as<int>(std::chrono::seconds(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 42);
}
