// The three roles of a database, as process bodies. Each joins its group
// (<db>/server, <db>/data, <db>/client) in the registry and runs until it is
// stopped or crashes; supervisors restart them (see database.h).
//
// - server: the oldest living member of <db>/server is the master. It checks
//   limits, stamps writes with a version (a hybrid logical clock), picks the
//   key's slot owner from the slot map of <db>/data and forwards the request
//   there. A server that is not the master answers no_master (retryable).
// - data: holds a versioned table; applies writes whose version is newer
//   (last write wins) and answers the requester directly.
// - client: the in-process API's end: takes client_op calls, sends requests
//   to the master, and answers each call when the data process replies.
#pragma once

#include <cstdint>
#include <string>

#include "store/limits.h"

namespace panal::registry {
class pg;
}

namespace panal::db {

struct server_config {
  std::string db;
  store::limits limits;
  std::string ckey;              // empty: no client key
  std::uint32_t slots = 16384;   // fixed for the life of the database
};

void server_main(registry::pg& groups, server_config config);
void data_main(registry::pg& groups, std::string db);
void client_main(registry::pg& groups, std::string db, std::string name);

}  // namespace panal::db
