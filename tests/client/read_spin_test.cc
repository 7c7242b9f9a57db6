#include "client/read_spin.h"

#include <gtest/gtest.h>

namespace panal::client_detail {
namespace {

TEST(ReadSpin, SpinsWhileTheSpinsFindTheAnswers) {
  read_spin s;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(s.spin_now());
    s.spun(true);
  }
}

// Answers that take longer than the spin (a node across a network): after
// a few misses a read blocks at once, but one read in kProbeEvery still
// spins, and a probe that finds its answer turns the spin back on.
TEST(ReadSpin, MissesTurnItOffAndAProbeThatPaysTurnsItBackOn) {
  read_spin s;
  int misses = 0;
  while (s.spin_now()) {
    s.spun(false);
    ASSERT_LT(++misses, 16) << "the spin never stopped";
  }
  EXPECT_GE(misses, 3);  // one slow answer is not enough
  int spins = 0;
  for (int reads = 0; reads < 10 * static_cast<int>(read_spin::kProbeEvery); ++reads) {
    if (s.spin_now()) {
      ++spins;
      s.spun(false);
    }
  }
  EXPECT_EQ(spins, 10);  // one probe per kProbeEvery reads
  for (int i = 0; i < 200 && !s.spin_now(); ++i) {
  }
  s.spun(true);  // the probe paid
  int on = 0;
  for (int i = 0; i < 8; ++i) {
    if (s.spin_now()) {
      ++on;
      s.spun(true);
    }
  }
  EXPECT_EQ(on, 8) << "the answers come fast again: it spins again";
}

}  // namespace
}  // namespace panal::client_detail
