// When an idle scheduler thread spins: what pays for a spin and what not.
#include "runtime/spin_policy.h"

#include <gtest/gtest.h>

namespace panal::detail {
namespace {

// Spins (each with the given outcome) until the policy stops spinning; how many.
int spins_until_off(spin_policy& p, std::size_t handled, std::size_t to_mailboxes, bool incoming) {
  int n = 0;
  while (p.spin_now() && n < 1000) {
    p.spun(handled, to_mailboxes, incoming);
    ++n;
  }
  return n;
}

TEST(SpinPolicy, AClientsLoneRequestsTurnTheSpinOff) {
  spin_policy p;
  // One request at a time: each spin finds the next request, one mailbox completion.
  EXPECT_LT(spins_until_off(p, 1, 1, false), 10);
  // Off: no spin for the next sleeps, then one probe.
  int spun = 0;
  for (int i = 0; i < static_cast<int>(spin_policy::kProbeEvery); ++i) {
    if (p.spin_now()) {
      ++spun;
      p.spun(1, 1, false);
    }
  }
  EXPECT_EQ(spun, 1);
}

TEST(SpinPolicy, NothingFoundTurnsTheSpinOff) {
  spin_policy p;
  EXPECT_LT(spins_until_off(p, 0, 0, false), 10);
}

TEST(SpinPolicy, WorkFromPeersThreadsOrManySocketsKeepsItOn) {
  for (auto [handled, to_mailboxes, incoming] : {std::tuple<std::size_t, std::size_t, bool>{1, 0, false},  // a node's message
                                                 {0, 0, true},     // another thread's
                                                 {2, 2, false},    // two clients at once
                                                 {5, 1, false}}) {
    spin_policy p;
    EXPECT_EQ(spins_until_off(p, handled, to_mailboxes, incoming), 1000) << handled << " " << to_mailboxes;
  }
}

TEST(SpinPolicy, AProbeThatPaysTurnsItBackOn) {
  spin_policy p;
  spins_until_off(p, 1, 1, false);
  int sleeps = 0;
  // Load comes back: each probe finds several sockets' worth.
  while (sleeps < 10 * static_cast<int>(spin_policy::kProbeEvery)) {
    ++sleeps;
    if (p.spin_now()) {
      p.spun(8, 8, false);
      if (p.spin_now()) break;  // spinning again at the very next sleep
    }
  }
  EXPECT_LE(sleeps, static_cast<int>(spin_policy::kProbeEvery) * 3);
  EXPECT_TRUE(p.spin_now());
}

}  // namespace
}  // namespace panal::detail
