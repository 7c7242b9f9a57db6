// When an idle scheduler thread spins before it sleeps (scheduler.cc,
// wait_for_events; runtime.md, "Limits and costs").
//
// Promise: spin_now() is true while at least half of the recent spins
// (an average over about the last 8) paid, and otherwise once every
// kProbeEvery sleeps, so that a thread finds out when spinning pays again
// (util/pay_average.h).
// A spin pays when what it found is worth the CPU it burnt:
// - work from another thread of this node (a message: its sender waits);
// - one socket event that a fiber waits on inline (io::await: the
//   distribution layer, where a distributed operation waits on each
//   message between nodes);
// - several socket events at once (under load one poll gathers them).
// It does not pay when it found nothing, or one completion that went to a
// mailbox (io::completion: a client session's lone request; its client is
// a round trip away, and spinning that out costs more CPU than a sleep).
//
// Thread-safety: none; one per scheduler thread. Pure (no clock, no I/O).
#pragma once

#include <cstddef>

#include "util/pay_average.h"

namespace panal::detail {

class spin_policy {
 public:
  static constexpr unsigned kProbeEvery = pay_average::kProbeEvery;

  // Before a sleep: spin first?
  bool spin_now() { return pays_.try_now(); }
  // A spin ended. `handled`: socket events its poll ran (0 if none);
  // `to_mailboxes`: how many of them went to a mailbox; `incoming`: it
  // found messages from another thread.
  void spun(std::size_t handled, std::size_t to_mailboxes, bool incoming) {
    const bool lone_client_request = handled == 1 && to_mailboxes == 1;
    pays_.record(incoming || (handled > 0 && !lone_client_request));
  }

 private:
  pay_average pays_;
};

}  // namespace panal::detail
