// Versions of stored values, and the clock that stamps them.
//
// A version is (epoch, hlc), compared in that order:
// - epoch: the slot map's epoch at which the slot's primary stamped the
//   write. A slot has one serving primary per epoch and every later primary
//   serves at a higher epoch, so a write stamped by a later primary beats
//   every write of an earlier one, whatever the nodes' clocks say. A write
//   that was never acknowledged and arrives late cannot overwrite a newer
//   acknowledged one.
// - hlc: a hybrid logical clock: (milliseconds since 2020 << 12 | logical
//   counter) << 10 | member tag. Strictly increasing on one clock, it
//   observes every version it is shown, and the tag (10 bits of the member's
//   identity) breaks ties between members.
//
// Thread-safety: version is a value; a version_clock belongs to one process.
#pragma once

#include <compare>
#include <cstdint>

namespace panal::store {

struct version {
  std::uint32_t epoch = 0;
  std::uint64_t hlc = 0;

  friend auto operator<=>(const version&, const version&) = default;
  friend bool operator==(const version&, const version&) = default;
  bool zero() const { return epoch == 0 && hlc == 0; }
};

class version_clock {
 public:
  // `member` is the owner's identity; its low 10 bits become the tag.
  explicit version_clock(std::uint64_t member = 0);

  // A version at `epoch` above everything this clock has stamped or seen,
  // and above `stored` (the key's current version, if any).
  version next(std::uint32_t epoch, const version& stored = {});
  // The same, with the wall clock already read (`now_ms`: now_millis(), a
  // moment ago; the logical counter keeps the versions apart).
  version next_at(std::uint64_t now_ms, std::uint32_t epoch, const version& stored = {});
  // Moves the clock past `seen` (a version that arrived from elsewhere).
  void observe(const version& seen);

  // The wall-clock part of an hlc, in milliseconds since 2020-01-01 UTC.
  static std::uint64_t millis_of(std::uint64_t hlc) { return hlc >> 22; }
  static std::uint64_t now_millis();

 private:
  std::uint64_t tag_;
  std::uint64_t last_ = 0;  // the last hlc without its tag (ms << 12 | logical)
};

}  // namespace panal::store
