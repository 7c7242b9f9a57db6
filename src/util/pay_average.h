// Whether a spin (or any cheap-when-it-pays attempt) is worth trying now:
// the shared rule of the scheduler's idle spin (runtime/spin_policy.h) and
// the TCP client's read spin (client/remote_client.cc).
//
// Promise: try_now() is true while at least half of the recent tries (an
// average over about the last 8) paid, and otherwise once every
// kProbeEvery asks, so that a caller finds out when trying pays again.
// With `on_at_once`, one try that pays turns trying on at once (and one
// miss after it turns it off); without, the average climbs back.
//
// Thread-safety: none; the owner serialises its calls. Pure (no clock, no I/O).
#pragma once

#include <algorithm>

namespace panal {

class pay_average {
 public:
  static constexpr unsigned kOne = 1024;  // the average is kept in 1/1024ths
  static constexpr unsigned kProbeEvery = 64;

  bool try_now() {
    if (paid_ >= kOne / 2) return true;
    return ++skipped_ % kProbeEvery == 0;
  }
  void record(bool paid, bool on_at_once = false) {
    if (paid) {
      paid_ += (kOne - paid_) / 8;
      if (on_at_once) paid_ = std::max(paid_, kOne / 2);
    } else {
      paid_ -= paid_ / 8;
      if (paid_ < kOne / 2) skipped_ = 0;  // the next probe is kProbeEvery asks away
    }
  }

 private:
  unsigned paid_ = kOne;   // share of recent tries that paid
  unsigned skipped_ = 0;   // asks without a try since the last probe
};

}  // namespace panal
