#include "store/slot_map.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "store/hash.h"

namespace panal::store {

slot_map::slot_map(std::uint32_t slot_count, std::uint32_t replicas, std::uint32_t write_acks)
    : slot_count_(std::max<std::uint32_t>(slot_count, 1)),
      replicas_(std::max<std::uint32_t>(replicas, 1)),
      write_acks_(std::max<std::uint32_t>(write_acks, 1)) {
  reset_slots();
  for (std::uint32_t s = 0; s < slot_count_; ++s) {
    begin_slot(s);
    end_slot(s);
  }
}

namespace {

// The `n` members (indexes into `members`) with the highest rendezvous
// weight for `slot` among the eligible ones, best first.
void top_targets(std::uint32_t slot, const std::vector<map_member>& members, std::uint32_t n,
                 std::vector<std::pair<std::uint64_t, std::uint32_t>>& scratch, std::vector<std::uint32_t>& out) {
  scratch.clear();
  for (std::uint32_t i = 0; i < members.size(); ++i) {
    if (members[i].eligible) scratch.emplace_back(rendezvous_weight(slot, members[i].id), i);
  }
  const std::size_t width = std::min<std::size_t>(n, scratch.size());
  std::partial_sort(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(width), scratch.end(),
                    [&](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : members[a.second].id > members[b.second].id;
                    });
  out.clear();
  for (std::size_t r = 0; r < width; ++r) out.push_back(scratch[r].second);
}

}  // namespace

void slot_map::compute_targets(const slot_map* like) {
  if (like != nullptr && like->members_ == members_ && like->replicas_ == replicas_ &&
      like->slot_count_ == slot_count_) {
    target_width_ = like->target_width_;
    targets_ = like->targets_;
    return;
  }
  std::uint32_t eligible = 0;
  for (const auto& m : members_) eligible += m.eligible ? 1 : 0;
  target_width_ = std::min(replicas_, eligible);
  targets_.assign(static_cast<std::size_t>(slot_count_) * target_width_, 0);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> scratch;
  std::vector<std::uint32_t> t;
  for (std::uint32_t s = 0; s < slot_count_ && target_width_ > 0; ++s) {
    top_targets(s, members_, replicas_, scratch, t);
    std::copy(t.begin(), t.end(), targets_.begin() + static_cast<std::ptrdiff_t>(s) * target_width_);
  }
}

void slot_map::reset_slots() {
  offsets_.assign(slot_count_ + 1, 0);
  holders_.clear();
  holders_.reserve(static_cast<std::size_t>(slot_count_) * std::max<std::uint32_t>(target_width_, 1));
  primary_.assign(slot_count_, no_primary);
  handover_.assign(slot_count_, no_primary);
  default_.assign(slot_count_, 0);
}

void slot_map::end_slot(std::uint32_t s) {
  offsets_[s + 1] = static_cast<std::uint32_t>(holders_.size());
  auto t = targets(s);
  auto hs = holders(s);
  bool is_default = t.size() == hs.size() && handover_[s] == no_primary &&
                    (t.empty() ? primary_[s] == no_primary : primary_[s] == t[0]);
  for (std::size_t i = 0; is_default && i < t.size(); ++i) is_default = hs[i].member == t[i] && hs[i].ready;
  default_[s] = is_default ? 1 : 0;
}

slot_map slot_map::build(std::uint32_t slot_count, std::uint32_t replicas, std::uint32_t write_acks,
                         std::uint32_t epoch, std::vector<map_member> members,
                         const std::vector<slot_exception>& exceptions, const slot_map* like) {
  slot_map m(slot_count, replicas, write_acks);
  m.epoch_ = epoch;
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  members.erase(std::unique(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.id == b.id; }),
                members.end());
  m.members_ = std::move(members);
  m.compute_targets(like);
  // The exceptions by slot (the last one for a slot counts).
  std::vector<const slot_exception*> by_slot(m.slot_count_, nullptr);
  for (const slot_exception& e : exceptions) {
    if (e.slot < m.slot_count_) by_slot[e.slot] = &e;
  }
  m.reset_slots();
  for (std::uint32_t s = 0; s < m.slot_count_; ++s) {
    m.begin_slot(s);
    const std::size_t first = m.holders_.size();
    if (const slot_exception* e = by_slot[s]) {
      std::int32_t pos = 0, primary_pos = -1, handover_pos = -1;
      for (std::size_t i = 0; i < e->holders.size(); ++i) {
        const holder& h = e->holders[i];
        if (h.member >= m.members_.size()) continue;  // invalid: ignored
        if (static_cast<std::int32_t>(i) == e->primary) primary_pos = pos;
        if (static_cast<std::int32_t>(i) == e->handover) handover_pos = pos;
        m.holders_.push_back({h.member, h.ready ? 0 : h.since, h.ready});
        ++pos;
      }
      if (primary_pos >= 0 && m.holders_[first + static_cast<std::size_t>(primary_pos)].ready) {
        m.primary_[s] = m.holders_[first + static_cast<std::size_t>(primary_pos)].member;
      }
      if (handover_pos >= 0) m.handover_[s] = m.holders_[first + static_cast<std::size_t>(handover_pos)].member;
    } else {
      auto t = m.targets(s);
      for (std::uint32_t x : t) m.holders_.push_back({x, 0, true});
      if (!t.empty()) m.primary_[s] = t.front();
    }
    m.end_slot(s);
  }
  return m;
}

std::optional<std::uint32_t> slot_map::index_of(std::uint64_t id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id, [](const map_member& m, std::uint64_t x) {
    return m.id < x;
  });
  if (it == members_.end() || it->id != id) return std::nullopt;
  return static_cast<std::uint32_t>(it - members_.begin());
}

std::uint32_t slot_map::slot_of(std::string_view key) const { return slot_of_hash(key_hash(key)); }

std::span<const holder> slot_map::holders(std::uint32_t slot) const {
  if (slot >= slot_count_) return {};
  return {holders_.data() + offsets_[slot], offsets_[slot + 1] - offsets_[slot]};
}

// W is capped by the members of the map, not by the slot's holders: a
// member that is only unreachable stays in the map until its lease runs
// out, and a primary cut off from the others must then fail its writes, not
// acknowledge them with its own copy alone (a partition test lost such a
// write). It shrinks only when members leave the map, or there are fewer
// members than W.
std::uint32_t slot_map::write_quorum(std::uint32_t slot) const {
  (void)slot;
  const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(replicas_, members_.size()));
  return std::max<std::uint32_t>(1, std::min(write_acks_, n));
}

int slot_map::position(std::uint32_t slot, std::uint32_t member) const {
  auto hs = holders(slot);
  for (std::size_t i = 0; i < hs.size(); ++i) {
    if (hs[i].member == member) return static_cast<int>(i);
  }
  return -1;
}

std::vector<slot_exception> slot_map::exceptions() const {
  std::vector<slot_exception> out;
  for (std::uint32_t s = 0; s < slot_count_; ++s) {
    if (default_[s]) continue;
    slot_exception e;
    e.slot = s;
    auto hs = holders(s);
    e.holders.assign(hs.begin(), hs.end());
    for (std::size_t i = 0; i < hs.size(); ++i) {
      if (hs[i].member == primary_[s]) e.primary = static_cast<std::int32_t>(i);
      if (hs[i].member == handover_[s]) e.handover = static_cast<std::int32_t>(i);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::uint32_t slot_map::moving_slots() const {
  std::uint32_t n = 0;
  for (std::uint32_t s = 0; s < slot_count_; ++s) n += default_[s] ? 0 : 1;
  return n;
}

// ---- planner ------------------------------------------------------------------------

planner::planner(slot_map current)
    : map_(std::move(current)),
      primary_since_(map_.slot_count(), map_.epoch()),
      serving_(map_.slot_count(), 0) {}

bool planner::holds_nothing(std::uint64_t member) const {
  auto idx = map_.index_of(member);
  if (!idx) return true;
  for (std::uint32_t s = 0; s < map_.slot_count(); ++s) {
    if (map_.position(s, *idx) >= 0) return false;
  }
  return true;
}

void planner::bump() { ++map_.epoch_; }

bool planner::step(const plan_input& in) {
  const slot_map& cur = map_;
  const std::uint32_t next_epoch = cur.epoch() + 1;

  // The members of the next map: everyone not gone.
  std::vector<map_member> members;
  std::unordered_map<std::uint64_t, const plan_member*> info;
  for (const plan_member& m : in.members) {
    if (!info.emplace(m.id, &m).second) continue;
    members.push_back({m.id, (m.present || m.restarting) && !m.draining});
  }
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  slot_map next(cur.slot_count(), cur.replicas(), cur.write_acks());
  next.members_ = members;
  next.compute_targets(&cur);
  auto new_index = [&](std::uint64_t id) { return *next.index_of(id); };
  auto present = [&](std::uint64_t id) { return info.at(id)->present; };
  auto refill = [&](std::uint64_t id) { return info.at(id)->refill; };

  // Reports, by slot.
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> lagging;
  for (const lag_report& l : in.lagging) lagging[l.slot].push_back(l.member);
  std::unordered_map<std::uint32_t, std::vector<const fill_report*>> fills;
  for (const fill_report& f : in.filled) fills[f.slot].push_back(&f);
  for (const serve_report& r : in.serving) {
    if (r.slot >= cur.slot_count()) continue;
    const std::uint32_t p = cur.primary(r.slot);
    if (p != slot_map::no_primary && cur.members()[p].id == r.member && r.epoch >= primary_since_[r.slot]) {
      serving_[r.slot] = 1;
    }
  }

  next.reset_slots();
  std::vector<std::uint32_t> new_since = primary_since_;
  std::vector<std::uint8_t> new_serving = serving_;
  struct item {
    std::uint64_t id;
    std::uint32_t since;
    bool ready;
  };
  std::vector<item> list;
  for (std::uint32_t s = 0; s < cur.slot_count(); ++s) {
    auto t = next.targets(s);
    auto old = cur.holders(s);
    const std::uint32_t op = cur.primary(s);
    const std::uint64_t old_primary = op == slot_map::no_primary ? 0 : cur.members()[op].id;
    const bool had_primary = op != slot_map::no_primary;
    // A holder its primary lost contact with refills (the primary itself never lags).
    auto lags = [&](std::uint64_t id) {
      auto l = lagging.find(s);
      return l != lagging.end() && id != old_primary && std::find(l->second.begin(), l->second.end(), id) != l->second.end();
    };
    auto old_of = [&](std::uint64_t id) -> const holder* {
      for (const holder& h : old) {
        if (cur.members()[h.member].id == id) return &h;
      }
      return nullptr;
    };

    list.clear();
    for (std::uint32_t ti : t) {
      const std::uint64_t id = next.members_[ti].id;
      const holder* h = old_of(id);
      item it{id, next_epoch, false};
      if (h != nullptr && !refill(id) && !lags(id)) {
        it.ready = h->ready;
        it.since = h->ready ? 0 : h->since;
      }
      if (!it.ready) {
        if (auto f = fills.find(s); f != fills.end()) {
          // A fill counts if it pulled from the primary that still serves
          // the slot, and that primary had taken over before the fill began.
          for (const fill_report* r : f->second) {
            if (r->member == id && r->since == it.since && had_primary && r->source == old_primary &&
                r->from_epoch >= primary_since_[s] && serving_[s]) {
              it.ready = true;
            }
          }
        }
        if (it.ready) it.since = 0;
      }
      list.push_back(it);
    }
    const std::size_t target_count = list.size();
    // Former holders that may still matter: ready copies, and the old
    // primary (until the new one has fenced it).
    for (const holder& h : old) {
      const std::uint64_t id = cur.members()[h.member].id;
      if (!info.count(id)) continue;  // gone
      if (std::any_of(list.begin(), list.end(), [&](const item& x) { return x.id == id; })) continue;
      const bool ready = h.ready && !(present(id) && refill(id)) && !lags(id);
      if (ready || (had_primary && id == old_primary)) list.push_back({id, ready ? 0 : h.since, ready});
    }

    // The primary.
    auto usable = [&](const item& x) { return x.ready && present(x.id); };
    const item* keep = nullptr;
    for (const item& x : list) {
      if (had_primary && x.id == old_primary && usable(x)) keep = &x;
    }
    const item* first_target = target_count > 0 && usable(list[0]) ? &list[0] : nullptr;
    const item* chosen = nullptr;
    if (first_target != nullptr) chosen = first_target;
    else if (keep != nullptr) chosen = keep;
    else {
      for (const item& x : list) {
        if (usable(x)) {
          chosen = &x;
          break;
        }
      }
    }
    bool fresh = false;
    if (chosen == nullptr && std::none_of(list.begin(), list.end(), [](const item& x) { return x.ready; })) {
      // Every copy is lost (or this is a new database): the slot starts
      // over, empty, on its targets; its primary has nothing to sync.
      list.resize(target_count);
      for (item& x : list) x = {x.id, 0, true};
      for (const item& x : list) {
        if (present(x.id)) {
          chosen = &x;
          fresh = true;
          break;
        }
      }
    }
    const std::uint64_t new_primary = chosen ? chosen->id : 0;
    const bool changed = (chosen != nullptr) != had_primary || (chosen && new_primary != old_primary);
    // A handover: the old primary serves, stays listed and present, and is
    // fenced by the new one, which has taken its whole stream as a holder.
    std::uint64_t handover_id = 0;
    if (changed) {
      const bool old_listed = std::any_of(list.begin(), list.end(), [&](const item& x) { return x.id == old_primary; });
      if (chosen && had_primary && serving_[s] && old_listed && present(old_primary) && !refill(old_primary)) {
        handover_id = old_primary;
      }
      if (fresh) handover_id = chosen->id;  // a handover from itself: nothing to sync
      new_since[s] = next_epoch;
      new_serving[s] = 0;
    } else if (const std::uint32_t ho = cur.handover(s); ho != slot_map::no_primary && !new_serving[s]) {
      const std::uint64_t id = cur.members()[ho].id;
      if (std::any_of(list.begin(), list.end(), [&](const item& x) { return x.id == id; })) handover_id = id;
    }
    // Leaving holders go once the targets hold the slot and the first
    // target serves it.
    const bool settled = target_count > 0 && chosen == &list[0] && new_serving[s] &&
                         std::all_of(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(target_count),
                                     [](const item& x) { return x.ready; });
    if (settled) list.resize(target_count);

    next.begin_slot(s);
    for (const item& x : list) next.holders_.push_back({new_index(x.id), x.ready ? 0 : x.since, x.ready});
    next.primary_[s] = chosen ? new_index(new_primary) : slot_map::no_primary;
    if (handover_id != 0 && !settled) next.handover_[s] = new_index(handover_id);
    next.end_slot(s);
  }

  const bool same = next.members_ == cur.members_ && next.holders_ == cur.holders_ &&
                    next.offsets_ == cur.offsets_ && next.primary_ == cur.primary_ &&
                    next.handover_ == cur.handover_;
  serving_ = new_serving;
  if (same) return false;
  next.epoch_ = next_epoch;
  map_ = std::move(next);
  primary_since_ = std::move(new_since);
  return true;
}

}  // namespace panal::store
