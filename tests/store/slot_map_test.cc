#include "store/slot_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "store/hash.h"

namespace panal::store {
namespace {

std::vector<std::uint64_t> ids(std::size_t n, std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> out(n);
  for (auto& x : out) x = rng();
  return out;
}

std::vector<map_member> members(const std::vector<std::uint64_t>& xs) {
  std::vector<map_member> out;
  for (auto x : xs) out.push_back({x, true});
  return out;
}

slot_map settled(std::uint32_t slots, std::uint32_t r, const std::vector<std::uint64_t>& xs) {
  return slot_map::build(slots, r, r / 2 + 1, 1, members(xs), {});
}

std::uint64_t primary_id(const slot_map& m, std::uint32_t s) {
  const auto p = m.primary(s);
  return p == slot_map::no_primary ? 0 : m.members()[p].id;
}

std::vector<std::uint64_t> holder_ids(const slot_map& m, std::uint32_t s) {
  std::vector<std::uint64_t> out;
  for (const holder& h : m.holders(s)) out.push_back(m.members()[h.member].id);
  return out;
}

std::vector<std::uint64_t> target_ids(const slot_map& m, std::uint32_t s) {
  std::vector<std::uint64_t> out;
  for (auto t : m.targets(s)) out.push_back(m.members()[t].id);
  return out;
}

plan_input all_present(const std::vector<std::uint64_t>& xs) {
  plan_input in;
  for (auto x : xs) in.members.push_back({x, true, false, false});
  return in;
}

TEST(KeyHash, IsXxh3AndStable) {
  EXPECT_EQ(key_hash(""), 0x2d06800538d394c2ull);  // XXH3-64 of the empty input, seed 0
  EXPECT_EQ(key_hash("panal"), key_hash(std::string("panal")));
  EXPECT_NE(key_hash("a"), key_hash("b"));
}

TEST(SlotMap, OwnersAreTheSameWhateverTheOrderOfMembers) {
  auto m = ids(5);
  auto a = settled(1024, 2, m);
  std::reverse(m.begin(), m.end());
  auto b = settled(1024, 2, m);
  for (std::uint32_t s = 0; s < 1024; ++s) {
    ASSERT_EQ(holder_ids(a, s), holder_ids(b, s));
    ASSERT_EQ(a.holders(s).size(), 2u);
    ASSERT_NE(holder_ids(a, s)[0], holder_ids(a, s)[1]);
    ASSERT_EQ(primary_id(a, s), holder_ids(a, s)[0]);
  }
  EXPECT_TRUE(a.exceptions().empty()) << "a settled map lists no exceptions";
}

TEST(SlotMap, NoMembersNoOwners) {
  slot_map m;
  EXPECT_TRUE(m.holders(3).empty());
  EXPECT_EQ(m.primary(3), slot_map::no_primary);
}

TEST(SlotMap, ReplicasAndTheQuorumAreCappedByMembers) {
  auto m = slot_map::build(64, 3, 2, 1, members(ids(2)), {});
  for (std::uint32_t s = 0; s < 64; ++s) {
    EXPECT_EQ(m.holders(s).size(), 2u);
    EXPECT_EQ(m.write_quorum(s), 2u);
  }
  auto one = slot_map::build(64, 3, 2, 1, members(ids(1)), {});
  EXPECT_EQ(one.write_quorum(0), 1u);
  // Members that are only absent (unreachable, their leases not run out)
  // still count: a primary left alone with its own copy cannot reach W.
  auto alone = members(ids(3));
  alone[1].eligible = alone[2].eligible = false;
  auto cut = slot_map::build(64, 3, 2, 1, alone, {});
  for (std::uint32_t s = 0; s < 64; ++s) {
    EXPECT_EQ(cut.holders(s).size(), 1u);
    EXPECT_EQ(cut.write_quorum(s), 2u);
  }
}

TEST(SlotMap, TenThousandKeysSpreadWithinTenPercentOverFiveMembers) {
  // Several member sets: the promise holds for any identities, not one lucky set.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto map = settled(16384, 1, ids(5, seed));
    std::map<std::uint64_t, int> per;
    for (int k = 0; k < 10000; ++k) ++per[primary_id(map, map.slot_of("key:" + std::to_string(k)))];
    ASSERT_EQ(per.size(), 5u);
    for (auto& [member, n] : per) {
      EXPECT_GE(n, 1800) << "seed " << seed;
      EXPECT_LE(n, 2200) << "seed " << seed;
    }
  }
}

TEST(SlotMap, AddingAMemberMovesAboutOneNthOfTheSlotsAndOnlyToIt) {
  for (std::size_t n = 2; n <= 8; ++n) {
    auto m = ids(n + 1, n);
    auto before = settled(16384, 1, {m.begin(), m.end() - 1});
    auto after = settled(16384, 1, m);
    std::uint32_t moved = 0;
    for (std::uint32_t s = 0; s < before.slot_count(); ++s) {
      if (primary_id(before, s) != primary_id(after, s)) {
        ++moved;
        EXPECT_EQ(primary_id(after, s), m.back()) << "a slot moved between old members";
      }
    }
    const double share = static_cast<double>(moved) / before.slot_count();
    const double expected = 1.0 / static_cast<double>(n + 1);
    EXPECT_NEAR(share, expected, 0.2 * expected) << "n=" << n << " moved " << moved;
  }
}

TEST(SlotMap, ExceptionsTravelAndRebuildTheSameMap) {
  auto xs = ids(4);
  std::vector<slot_exception> ex;
  ex.push_back({5, 1, 0, {{0, 0, true}, {2, 0, true}, {3, 9, false}}});
  ex.push_back({7, -1, -1, {{1, 4, false}}});
  auto m = slot_map::build(16, 3, 2, 12, members(xs), ex);
  EXPECT_EQ(m.epoch(), 12u);
  auto back = m.exceptions();
  ASSERT_EQ(back.size(), 2u);
  auto again = slot_map::build(16, 3, 2, 12, members(xs), back);
  for (std::uint32_t s = 0; s < 16; ++s) {
    EXPECT_EQ(holder_ids(m, s), holder_ids(again, s));
    EXPECT_EQ(m.primary(s), again.primary(s));
    EXPECT_EQ(m.handover(s), again.handover(s));
  }
  EXPECT_EQ(primary_id(m, 5), m.members()[2].id);
  EXPECT_EQ(m.handover(5), 0u);
  EXPECT_EQ(m.primary(7), slot_map::no_primary);
  EXPECT_FALSE(m.holders(5)[2].ready);
  EXPECT_EQ(m.holders(5)[2].since, 9u);
}

// ---- the planner ----------------------------------------------------------------------

TEST(Planner, AFreshDatabaseIsReadyAtOnce) {
  auto xs = ids(3);
  planner p(slot_map(256, 3, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  const auto& m = p.current();
  EXPECT_EQ(m.epoch(), 1u);
  for (std::uint32_t s = 0; s < 256; ++s) {
    ASSERT_EQ(m.holders(s).size(), 3u);
    for (auto& h : m.holders(s)) EXPECT_TRUE(h.ready);
    EXPECT_EQ(primary_id(m, s), target_ids(m, s)[0]);
  }
  EXPECT_FALSE(p.step(all_present(xs))) << "nothing changed: same epoch";
  EXPECT_EQ(p.current().epoch(), 1u);
}

// Reports that every filling holder has filled from the primary, and that
// every primary serves, until the map settles. Returns the steps it took.
int settle(planner& p, const std::vector<std::uint64_t>& present, int limit = 10) {
  for (int step = 0; step < limit; ++step) {
    const auto& m = p.current();
    auto in = all_present(present);
    for (std::uint32_t s = 0; s < m.slot_count(); ++s) {
      const auto pr = m.primary(s);
      if (pr == slot_map::no_primary) continue;
      in.serving.push_back({m.members()[pr].id, s, m.epoch()});
      for (const holder& h : m.holders(s)) {
        if (!h.ready) in.filled.push_back({m.members()[h.member].id, s, h.since, m.epoch(), m.members()[pr].id});
      }
    }
    if (!p.step(in)) return step;
  }
  return limit;
}

TEST(Planner, AJoiningMemberFillsThenTakesOverThenFormerOwnersLeave) {
  auto xs = ids(4);
  std::vector<std::uint64_t> three(xs.begin(), xs.end() - 1);
  planner p(slot_map(512, 2, 2));
  ASSERT_TRUE(p.step(all_present(three)));
  settle(p, three);
  const slot_map before = p.current();
  const std::uint64_t joiner = xs.back();

  ASSERT_TRUE(p.step(all_present(xs)));
  const slot_map moving = p.current();
  int gained = 0;
  for (std::uint32_t s = 0; s < 512; ++s) {
    auto t = target_ids(moving, s);
    if (std::find(t.begin(), t.end(), joiner) == t.end()) {
      EXPECT_EQ(holder_ids(moving, s), holder_ids(before, s)) << "only slots the joiner gains change";
      continue;
    }
    ++gained;
    // The primary stays where it was while the joiner fills.
    EXPECT_EQ(primary_id(moving, s), primary_id(before, s));
    const int pos = moving.position(s, *moving.index_of(joiner));
    ASSERT_GE(pos, 0);
    EXPECT_FALSE(moving.holders(s)[pos].ready);
    EXPECT_EQ(moving.holders(s).size(), 3u) << "targets + the owner it replaces, which keeps its copy";
  }
  EXPECT_NEAR(gained / 512.0, 2.0 / 4.0, 0.1);

  // The joiner reports its fills; where it is the first target it becomes
  // primary by a handover from the serving primary.
  auto in = all_present(xs);
  for (std::uint32_t s = 0; s < 512; ++s) {
    in.serving.push_back({primary_id(moving, s), s, moving.epoch()});
    for (const holder& h : moving.holders(s)) {
      if (!h.ready) in.filled.push_back({joiner, s, h.since, moving.epoch(), primary_id(moving, s)});
    }
  }
  ASSERT_TRUE(p.step(in));
  const slot_map switched = p.current();
  for (std::uint32_t s = 0; s < 512; ++s) {
    auto t = target_ids(switched, s);
    if (t[0] == joiner) {
      EXPECT_EQ(primary_id(switched, s), joiner);
      ASSERT_NE(switched.handover(s), slot_map::no_primary);
      EXPECT_EQ(switched.members()[switched.handover(s)].id, primary_id(moving, s)) << "fenced, not synced";
    }
  }
  settle(p, xs);
  const slot_map done = p.current();
  EXPECT_EQ(done.moving_slots(), 0u);
  EXPECT_EQ(done.exceptions().size(), 0u);
}

TEST(Planner, AFillFromAnotherPrimaryDoesNotCount) {
  auto xs = ids(3);
  planner p(slot_map(64, 3, 2));
  ASSERT_TRUE(p.step(all_present({xs[0], xs[1]})));
  settle(p, {xs[0], xs[1]});
  ASSERT_TRUE(p.step(all_present(xs)));  // xs[2] joins: fills every slot
  const slot_map m = p.current();
  auto in = all_present(xs);
  for (std::uint32_t s = 0; s < 64; ++s) {
    in.serving.push_back({primary_id(m, s), s, m.epoch()});
    const int pos = m.position(s, *m.index_of(xs[2]));
    const auto& h = m.holders(s)[pos];
    // Pulled from a holder that is not the primary: refused.
    const std::uint64_t other = primary_id(m, s) == xs[0] ? xs[1] : xs[0];
    in.filled.push_back({xs[2], s, h.since, m.epoch(), other});
  }
  p.step(in);
  for (std::uint32_t s = 0; s < 64; ++s) {
    const auto& after = p.current();
    const int pos = after.position(s, *after.index_of(xs[2]));
    EXPECT_FALSE(after.holders(s)[pos].ready) << s;
  }
}

TEST(Planner, FailoverGoesToAReadyHolderWithoutAHandover) {
  auto xs = ids(3);
  planner p(slot_map(256, 3, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  settle(p, xs);
  const slot_map before = p.current();
  const std::uint64_t dead = xs[0];
  // xs[0] is gone (dead, or its lease ran out): not in the input at all.
  ASSERT_TRUE(p.step(all_present({xs[1], xs[2]})));
  const slot_map after = p.current();
  EXPECT_FALSE(after.index_of(dead));
  for (std::uint32_t s = 0; s < 256; ++s) {
    EXPECT_EQ(after.holders(s).size(), 2u);
    if (primary_id(before, s) == dead) {
      EXPECT_NE(primary_id(after, s), 0u);
      EXPECT_EQ(after.handover(s), slot_map::no_primary) << "the new primary syncs from every holder";
    } else {
      EXPECT_EQ(primary_id(after, s), primary_id(before, s)) << "slots it did not lead keep their primary";
    }
  }
}

TEST(Planner, AnUnreachableMemberStaysListedUntilItIsGone) {
  auto xs = ids(3);
  planner p(slot_map(128, 3, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  settle(p, xs);
  const slot_map before = p.current();
  auto in = all_present(xs);
  in.members[0].present = false;  // silent, but its lease may still run
  ASSERT_TRUE(p.step(in));
  const slot_map absent = p.current();
  int led = 0;
  for (std::uint32_t s = 0; s < 128; ++s) {
    auto hs = holder_ids(absent, s);
    if (primary_id(before, s) == xs[0]) {
      ++led;
      EXPECT_NE(std::find(hs.begin(), hs.end(), xs[0]), hs.end()) << "the new primary must still fence it";
    }
    EXPECT_NE(primary_id(absent, s), xs[0]) << "never the primary while unreachable";
  }
  EXPECT_GT(led, 0);
}

TEST(Planner, ARestartedMemberRefillsTheSameSlotsAndTakesThemBack) {
  auto xs = ids(4);
  planner p(slot_map(256, 2, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  settle(p, xs);
  const slot_map before = p.current();
  auto in = all_present(xs);
  in.members[1].refill = true;  // same identity, new (empty) process
  ASSERT_TRUE(p.step(in));
  const slot_map refilling = p.current();
  const auto me = *refilling.index_of(xs[1]);
  for (std::uint32_t s = 0; s < 256; ++s) {
    EXPECT_EQ(target_ids(refilling, s), target_ids(before, s)) << "a restart moves no slot";
    const int pos = refilling.position(s, me);
    if (pos >= 0) {
      EXPECT_FALSE(refilling.holders(s)[pos].ready);
      EXPECT_NE(primary_id(refilling, s), xs[1]);
    }
  }
  settle(p, xs);
  const slot_map back = p.current();
  for (std::uint32_t s = 0; s < 256; ++s) {
    EXPECT_EQ(holder_ids(back, s), holder_ids(before, s));
    EXPECT_EQ(primary_id(back, s), primary_id(before, s)) << "it takes its slots back";
  }
}

TEST(Planner, ADrainingMemberHandsEverythingOverThenHoldsNothing) {
  auto xs = ids(3);
  planner p(slot_map(128, 2, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  settle(p, xs);
  auto in = all_present(xs);
  in.members[2].draining = true;
  ASSERT_TRUE(p.step(in));
  EXPECT_FALSE(p.holds_nothing(xs[2])) << "it keeps its copies until the others hold them";
  for (int i = 0; i < 10 && !p.holds_nothing(xs[2]); ++i) {
    const auto& m = p.current();
    auto step = all_present(xs);
    step.members[2].draining = true;
    for (std::uint32_t s = 0; s < m.slot_count(); ++s) {
      const auto pr = m.primary(s);
      step.serving.push_back({m.members()[pr].id, s, m.epoch()});
      for (const holder& h : m.holders(s)) {
        if (!h.ready) step.filled.push_back({m.members()[h.member].id, s, h.since, m.epoch(), m.members()[pr].id});
      }
    }
    p.step(step);
  }
  EXPECT_TRUE(p.holds_nothing(xs[2]));
}

TEST(Planner, ASlotWithEveryCopyLostStartsOverOnItsTargets) {
  auto xs = ids(3);
  planner p(slot_map(64, 1, 1));
  ASSERT_TRUE(p.step(all_present(xs)));
  const slot_map before = p.current();
  ASSERT_TRUE(p.step(all_present({xs[1], xs[2]})));  // xs[0] gone with the only copy of its slots
  for (std::uint32_t s = 0; s < 64; ++s) {
    EXPECT_NE(primary_id(p.current(), s), 0u) << "served again (empty), not stuck";
    for (auto& h : p.current().holders(s)) EXPECT_TRUE(h.ready);
  }
}

}  // namespace
}  // namespace panal::store

namespace panal::store {
namespace {

TEST(Planner, AnOnlyMemberRestartedWhileItsSlotsRefillGetsThemBackEmpty) {
  // One data member (R=1): it restarts (refill) but no other holder can fill
  // it, so its slots must start over empty on it, with it as primary.
  auto xs = ids(1);
  planner p(slot_map(64, 3, 2));
  ASSERT_TRUE(p.step(all_present(xs)));
  plan_input restarted;
  restarted.members.push_back({xs[0], true, false, true, false});
  p.step(restarted);
  p.step(restarted);
  for (std::uint32_t s = 0; s < 64; ++s) {
    ASSERT_EQ(primary_id(p.current(), s), xs[0]) << "slot " << s;
  }
  // The same after the master changed: a new planner from that map.
  planner q(p.current());
  plan_input again;
  again.members.push_back({xs[0], false, false, false, true});  // restarting: absent, in its grace
  q.step(again);
  q.step(restarted);
  for (std::uint32_t s = 0; s < 64; ++s) {
    ASSERT_EQ(primary_id(q.current(), s), xs[0]) << "slot " << s << " after a new master";
  }
}

}  // namespace
}  // namespace panal::store
