// Whether a client call spins on its connection before it blocks in a read
// (remote_client, read_links; remote_options::spin).
//
// On one machine a node answers a lone request in tens of microseconds, and
// most of a call's time is the calling thread's wake-up after a blocking
// read: a short spin of non-blocking reads catches the answer first
// (Python's sequential set on this project's 2-core machine: 17k -> 41k
// calls/s with 20-50 us). Where answers take longer than the spin (a node
// across a network, a busy node, a large batch) the spin is CPU burnt for
// nothing, so it stops:
//
// Promise: spin_now() is true while at least half of the recent spins (an
// average over about the last 8) found the answer, and otherwise once
// every kProbeEvery reads; a spin that finds its answer turns it back on.
//
// Thread-safety: any thread may call both; concurrent calls may lose an
// update of the average (relaxed atomics), never more.
#pragma once

#include <algorithm>
#include <atomic>

namespace panal::client_detail {

class read_spin {
 public:
  static constexpr unsigned kOne = 1024;  // the average is kept in 1/1024ths
  static constexpr unsigned kProbeEvery = 64;

  // Before a blocking read: spin first?
  bool spin_now() {
    if (paid_.load(std::memory_order_relaxed) >= kOne / 2) return true;
    const unsigned n = unspun_.load(std::memory_order_relaxed) + 1;
    unspun_.store(n, std::memory_order_relaxed);
    return n % kProbeEvery == 0;
  }
  // A spin ended; `answered`: it read something before it ran out.
  void spun(bool answered) {
    unsigned paid = paid_.load(std::memory_order_relaxed);
    // A spin that found its answer turns the spin on at once (a probe that
    // pays, after a batch or a slow spell): one miss after it turns it off.
    paid = answered ? std::max(paid + (kOne - paid) / 8, kOne / 2) : paid - paid / 8;
    paid_.store(paid, std::memory_order_relaxed);
    if (!answered && paid < kOne / 2) unspun_.store(0, std::memory_order_relaxed);
  }

 private:
  std::atomic<unsigned> paid_{kOne};  // share of recent spins that found the answer
  std::atomic<unsigned> unspun_{0};   // reads without a spin since the last probe
};

}  // namespace panal::client_detail
