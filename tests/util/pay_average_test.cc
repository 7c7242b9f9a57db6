// The rule shared by the scheduler's idle spin and the client's read spin.
#include "util/pay_average.h"

#include <gtest/gtest.h>

namespace panal {
namespace {

// Tries (each with the given outcome) until trying stops; how many.
int tries_until_off(pay_average& p, bool paid, bool on_at_once = false) {
  int n = 0;
  while (p.try_now() && n < 1000) {
    p.record(paid, on_at_once);
    ++n;
  }
  return n;
}

TEST(PayAverage, TriesWhileTheyPay) {
  pay_average p;
  EXPECT_EQ(tries_until_off(p, true), 1000);
}

// Answers slower than the spin (a node across a network): after a few
// misses trying stops, save one probe every kProbeEvery asks.
TEST(PayAverage, MissesTurnItOffSaveAProbeEveryKProbeEveryAsks) {
  pay_average p;
  const int misses = tries_until_off(p, false);
  EXPECT_GE(misses, 3);  // one slow answer is not enough
  EXPECT_LT(misses, 16);
  int probes = 0;
  for (int ask = 0; ask < 10 * static_cast<int>(pay_average::kProbeEvery); ++ask) {
    if (p.try_now()) {
      ++probes;
      p.record(false);
    }
  }
  EXPECT_EQ(probes, 10);
}

// The client's rule: one probe that pays turns trying back on at once. The
// scheduler's: the average climbs back, so a lone hit after a long off
// spell does not.
TEST(PayAverage, AProbeThatPaysTurnsItOnAtOnceOnlyWhenAskedTo) {
  for (bool on_at_once : {true, false}) {
    pay_average p;
    tries_until_off(p, false);
    for (int i = 0; i < 10 * static_cast<int>(pay_average::kProbeEvery); ++i) {  // probes that miss
      if (p.try_now()) p.record(false);
    }
    while (!p.try_now()) {
    }
    p.record(true, on_at_once);  // the probe paid
    EXPECT_EQ(p.try_now(), on_at_once) << on_at_once;
  }
}

}  // namespace
}  // namespace panal
