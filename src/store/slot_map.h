// Which data processes hold which slots, at which epoch.
//
// A database's keys fall into `slot_count` slots (slot = key_hash % count).
// Members are data processes, named by stable identities (node + database +
// index), so a restarted process is the same member. For each slot the map
// lists its holders, in order:
//   - targets: the `replicas` eligible members with the highest rendezvous
//     weight(slot, member), best first (the owners the slot settles on);
//   - then leaving holders: former owners that keep the slot (and take its
//     writes) until the targets hold it and the new primary serves.
// A holder is ready (holds every acknowledged write of the slot) or filling
// (pulling the slot from the primary; takes new writes meanwhile). The
// primary, which serves reads and orders writes, is one ready holder, kept
// stable: it moves to the first target only once that target is ready.
//
// Promises:
// - Every node computes the same map from the same (epoch, members,
//   exceptions): slots whose holders are exactly their targets, all ready,
//   with the first as primary, are not listed (exceptions() are the others).
// - planner::step (the master's step) changes a slot only as described in
//   plan_input; adding or removing one of N members changes the targets of
//   about R/N of the slots (R = replicas), and only slots the changed member
//   gains or loses.
// - A new epoch is larger than every earlier one.
//
// Thread-safety: a value; const members may be read from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace panal::store {

struct holder {
  std::uint32_t member = 0;  // index into members()
  std::uint32_t since = 0;   // epoch at which it started to fill (or became a holder)
  bool ready = false;
  friend bool operator==(const holder&, const holder&) = default;
};

struct map_member {
  std::uint64_t id = 0;
  bool eligible = true;  // may be a target (false: draining, or absent)
  friend bool operator==(const map_member&, const map_member&) = default;
};

// A slot whose holders differ from the default.
struct slot_exception {
  std::uint32_t slot = 0;
  std::int32_t primary = -1;   // position in holders; -1: none
  std::int32_t handover = -1;  // position of the previous primary, when it serves until fenced; -1: none
  std::vector<holder> holders;
};

class slot_map {
 public:
  static constexpr std::uint32_t no_primary = 0xffffffffu;

  slot_map() : slot_map(16384, 1, 1) {}
  slot_map(std::uint32_t slot_count, std::uint32_t replicas, std::uint32_t write_acks);

  // Builds epoch `epoch` from members and exceptions (e.g. as decoded from
  // the wire). Member ids must be distinct; exceptions must name valid slots
  // and member indexes (invalid ones are ignored).
  // `like` (optional): an earlier map; its targets are reused when the
  // members are the same (computing them is most of the cost).
  static slot_map build(std::uint32_t slot_count, std::uint32_t replicas, std::uint32_t write_acks,
                        std::uint32_t epoch, std::vector<map_member> members,
                        const std::vector<slot_exception>& exceptions, const slot_map* like = nullptr);

  std::uint32_t epoch() const { return epoch_; }
  std::uint32_t slot_count() const { return slot_count_; }
  std::uint32_t replicas() const { return replicas_; }
  std::uint32_t write_acks() const { return write_acks_; }
  const std::vector<map_member>& members() const { return members_; }
  std::optional<std::uint32_t> index_of(std::uint64_t id) const;

  std::uint32_t slot_of(std::string_view key) const;
  std::uint32_t slot_of_hash(std::uint64_t hash) const { return static_cast<std::uint32_t>(hash % slot_count_); }
  std::span<const holder> holders(std::uint32_t slot) const;
  // The primary's member index, or no_primary.
  std::uint32_t primary(std::uint32_t slot) const { return primary_[slot]; }
  // When the primary just took over from a serving primary that is still a
  // holder: that one's member index (the new primary fences it and needs no
  // data); the primary itself when the slot starts empty (nothing to sync);
  // else no_primary (the new primary syncs from every other holder).
  std::uint32_t handover(std::uint32_t slot) const { return handover_[slot]; }
  // Acknowledgements a write needs, the primary's included: min(W, replicas,
  // members of the map), whatever the slot's holders (see the .cc).
  std::uint32_t write_quorum(std::uint32_t slot) const;
  // The position of `member` among the slot's holders, or -1.
  int position(std::uint32_t slot, std::uint32_t member) const;
  // The targets of `slot` (member indexes, best first) among eligible members.
  std::span<const std::uint32_t> targets(std::uint32_t slot) const {
    return {targets_.data() + static_cast<std::size_t>(slot) * target_width_, target_width_};
  }
  // True when the slot is settled: its holders are its targets, all ready,
  // the first is primary (it is not among the exceptions).
  bool settled(std::uint32_t slot) const { return default_[slot] != 0; }

  // Slots that are not in their default state (for the wire).
  std::vector<slot_exception> exceptions() const;
  // Counts for views: slots with a filling holder, slots with leaving holders.
  std::uint32_t moving_slots() const;

 private:
  void compute_targets(const slot_map* like = nullptr);
  // Opens slot `s` (slots are appended in order) and appends its holders.
  void begin_slot(std::uint32_t s) { offsets_[s] = static_cast<std::uint32_t>(holders_.size()); }
  void end_slot(std::uint32_t s);  // sets default_[s]; after the slot's holders, primary and handover
  void reset_slots();
  friend class planner;

  std::uint32_t slot_count_;
  std::uint32_t replicas_;
  std::uint32_t write_acks_;
  std::uint32_t epoch_ = 0;
  std::vector<map_member> members_;
  std::uint32_t target_width_ = 0;      // min(replicas, eligible members)
  std::vector<std::uint32_t> targets_;  // slot * target_width_ -> member index, best first
  std::vector<std::uint32_t> offsets_;  // slot -> first holder in holders_ (slot_count + 1)
  std::vector<holder> holders_;
  std::vector<std::uint32_t> primary_;  // slot -> member index or no_primary
  std::vector<std::uint32_t> handover_; // slot -> member index or no_primary
  std::vector<std::uint8_t> default_;   // slot -> 1 when in the default state
};

// What the master knows when it plans the next epoch.
struct plan_member {
  std::uint64_t id = 0;
  bool present = true;   // announced and visible: may be primary, may be a target
  bool draining = false; // present but leaving: not a target
  bool refill = false;   // restarted or came back: every slot it holds must be refilled
  bool restarting = false;  // absent, but its supervisor is restarting it: it stays a target
};
struct fill_report {
  std::uint64_t member = 0;
  std::uint32_t slot = 0;
  std::uint32_t since = 0;       // the holder's `since` when it started filling
  std::uint32_t from_epoch = 0;  // the epoch at which it began to pull from `source`
  std::uint64_t source = 0;      // the primary it pulled from
};
struct serve_report {
  std::uint64_t member = 0;
  std::uint32_t slot = 0;
  std::uint32_t epoch = 0;  // an epoch at which it was the slot's primary
};

// A holder that may lack writes of a slot (its primary lost contact with it).
struct lag_report {
  std::uint64_t member = 0;
  std::uint32_t slot = 0;
};

struct plan_input {
  // Members the map keeps. A member of the current map that is missing here
  // is gone (dead, or its lease has expired): it is dropped from every slot.
  std::vector<plan_member> members;
  std::vector<fill_report> filled;
  std::vector<serve_report> serving;
  std::vector<lag_report> lagging;  // such holders refill the slot
};

// The master's planning state: the current map, and since when each slot's
// primary has been primary and whether it has confirmed that it serves.
class planner {
 public:
  explicit planner(slot_map current = {});

  const slot_map& current() const { return map_; }

  // Plans the next epoch; returns true if the map changed (epoch + 1).
  // Per slot: targets = the top `replicas` present, non-draining members;
  // holders = targets (ready if they were ready and are not refilling, or
  // reported filled) + former holders that are ready and present, kept until
  // every target is ready and the first target serves as primary. The
  // primary stays while it is a present, ready holder, moves to the first
  // target once that one is ready, and otherwise (failover) goes to the
  // first present ready holder. A slot with no ready holder left at all
  // (every copy lost) starts over empty: its targets become ready.
  bool step(const plan_input& in);

  // True when `member` holds no slot (a drained member may stop).
  bool holds_nothing(std::uint64_t member) const;
  // The same map at the next epoch (e.g. a member's pid changed).
  void bump();

 private:
  slot_map map_;
  std::vector<std::uint32_t> primary_since_;  // per slot
  std::vector<std::uint8_t> serving_;         // per slot: the primary confirmed it serves
};

}  // namespace panal::store
