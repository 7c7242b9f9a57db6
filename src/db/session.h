// Client sessions: one per TCP client connection, on the node it reached.
//
// The connection's process checks the CLIENT_HELLO (the database must have a
// server; with a client key, the token must match, asked of the master)
// before anything touches data, then reads requests while a session process
// on the same thread (a member of <db>/client) sends them to the master and
// writes the responses back, many per write. A malformed frame closes that
// connection only. When the connection closes, both processes end.
#pragma once

#include <string>

namespace panal::registry {
class pg;
}

namespace panal::db {

// Runs in the process that accepted the connection (see
// dist::distribution::set_client_handler).
void serve_client(registry::pg& groups, int fd, std::string first_frame, std::string rest);

}  // namespace panal::db
