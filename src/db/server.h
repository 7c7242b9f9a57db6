// The server role. The oldest living member of <db>/server is the master;
// the others stand by. The master coordinates and is not on the data path:
// - it learns the data members from their lease requests (a member is a
//   stable identity: node + database + index) and their liveness from
//   monitors, and grants each a lease (lease_ms) while it sees a majority
//   of the nodes of the map's members;
// - it plans the slot map (store::planner) on every change of membership
//   or readiness and publishes it, with a new epoch, to every node's route
//   table (the route process passes it to the node's data processes);
// - it removes a member that went silent only once the member's lease has
//   run out, and after a master change only once the old master's leases
//   may have run out, so two primaries never serve one slot;
// - on taking over, it asks every data member for the map it holds and
//   continues from the newest;
// - with a key limit it hands out insert tokens (store::key_quota);
// - it checks client keys for new sessions.
//
// Thread-safety: a process body.
#pragma once

#include <string>

#include "db/cluster_map.h"

namespace panal::db {

struct context;

struct server_config {
  std::string db;
  db::settings settings;
  std::string ckey;  // empty: no client key
};

void server_main(context& ctx, server_config config);

}  // namespace panal::db
