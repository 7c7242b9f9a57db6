// Process groups in the style of Erlang's pg: named groups of processes,
// known on every connected node.
//
// Promises:
// - A process joins and leaves only through its own node; each node owns its
//   local members and tells its peers. No global lock.
// - When nodes connect they exchange their local memberships; a process that
//   exits leaves all its groups on every node; a node that goes down takes
//   its members with it everywhere. Membership converges on all connected
//   nodes once messages stop flowing.
// - oldest(group): the member with the earliest join stamp, ties broken by
//   pid: the same answer on every node that sees the same members. This is
//   how a database picks its master.
// - Joining is idempotent: a pid is in a group at most once.
//
// Thread-safety: every member function may be called from any thread or
// process. Reads (members, oldest, ...) take a shared lock and never wait on
// a process; join/leave/monitor ask the scope process and wait for it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace panal::dist {
class distribution;
}

namespace panal::registry {

struct member {
  pid who;
  std::uint64_t stamp = 0;  // join time (µs since the epoch), strictly increasing per node
  friend bool operator==(const member&, const member&) = default;
};

// Sent to monitors of a group on every change seen by this node.
struct group_event {
  std::string group;
  std::vector<pid> joined;
  std::vector<pid> left;
};

class pg {
 public:
  // `dist` may be null for a single node; it must outlive the pg. With
  // `supervisor`, the scope process ("pg") is its permanent child: killed,
  // it is restarted with the memberships and subscriptions it had (they
  // live in the pg, not in the process), re-watches the local members, and
  // asks every peer for its members again (what they sent meanwhile was lost).
  static result<std::unique_ptr<pg>> start(runtime& rt, dist::distribution* dist, const pid& supervisor = {});
  ~pg();
  pg(const pg&) = delete;
  pg& operator=(const pg&) = delete;
  void stop();

  result<void> join(const std::string& group, const pid& p);
  result<void> join(const std::string& group, const std::vector<pid>& ps);
  result<void> leave(const std::string& group, const pid& p);

  std::vector<pid> members(const std::string& group) const;
  std::vector<member> members_with_stamps(const std::string& group) const;
  std::vector<pid> local_members(const std::string& group) const;
  std::vector<std::string> which_groups() const;
  std::optional<pid> oldest(const std::string& group) const;

  // group_event messages to `subscriber` (a process of this node) for every
  // change of `group`, until it ends. Subscribing twice counts once.
  result<void> monitor(const std::string& group, const pid& subscriber);
  // How many live subscribers `group` has on this node.
  result<std::size_t> subscribers(const std::string& group);

  struct impl;

 private:
  explicit pg(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;
};

}  // namespace panal::registry
