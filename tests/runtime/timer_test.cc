#include <gtest/gtest.h>

#include "runtime/this_process.h"
#include "../test_util.h"

namespace panal {
namespace {

using namespace std::chrono_literals;
namespace tp = this_process;

TEST(Timer, SendAfterDeliversLater) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    const auto t0 = clock::now();
    tp::send_after(60ms, tp::self(), std::string("tick"));
    auto m = tp::receive_as<std::string>(test::kWait);
    tp::send(me, m && *m == "tick" && clock::now() - t0 >= 60ms);
  }));
  auto ok = in.receive_as<bool>(test::kWait);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

TEST(Timer, CancelledTimerNeverFires) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    ref t = tp::send_after(30ms, tp::self(), 1);
    bool cancelled = tp::cancel_timer(t);
    bool again = tp::cancel_timer(t);
    auto m = tp::receive(100ms);
    tp::send(me, cancelled && !again && !m.has_value());
  }));
  auto ok = in.receive_as<bool>(test::kWait);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

TEST(Timer, CancelAfterFiringReturnsFalse) {
  runtime rt({.threads = 1});
  inbox in = rt.open_inbox();
  const pid me = in.self();
  ASSERT_TRUE(rt.spawn([me] {
    ref t = tp::send_after(1ms, tp::self(), 1);
    tp::receive(test::kWait);
    tp::send(me, tp::cancel_timer(t));
  }));
  auto r = in.receive_as<bool>(test::kWait);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

}  // namespace
}  // namespace panal
