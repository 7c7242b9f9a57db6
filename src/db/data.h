// The data role: one data process holds slots of a database's key space.
//
// A data process is a member of <db>/data, named by a stable identity
// (node + database + index): a restarted process is the same member and gets
// back exactly its slots, refilled before it serves them.
//
// Per slot, as the master's map says, it is a filling holder (pulls the slot
// from the primary, takes new writes meanwhile), a ready replica, or the
// primary, which:
// - serves reads from its table, and orders writes: it stamps each with a
//   version above everything it has seen, sends it to every other holder,
//   applies it and answers once `write_quorum` holders (itself included)
//   have it;
// - before it serves a slot it has newly become primary of, fences the
//   former primary (a handover) or pulls the slot from every other holder
//   (filling ones too) and pushes back what each one lacked (a failover);
// - serves only while it holds a lease from the master, so a process that
//   was paused or cut off stops serving before the master moves its slots.
// docs/store.md and docs/protocol.md §12 give the whole protocol.
//
// Thread-safety: a process body; everything it owns is its own.
#pragma once

#include <cstdint>
#include <string>

namespace panal::db {

struct context;

// A member's stable identity.
std::uint64_t member_identity(const std::string& node, const std::string& db, std::uint32_t index);

void data_main(context& ctx, std::string db, std::uint32_t index);

}  // namespace panal::db
