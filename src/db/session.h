// Client sessions: one per TCP client connection, on the node it reached.
//
// The connection's process checks the CLIENT_HELLO (the database must have a
// server; with a client key, the token must match, asked of the master)
// before anything touches data. Then it is the session (a member of
// <db>/client): its socket reads complete into its mailbox (io::start), so
// one process reads requests in place (no object tree), routes each to its
// slot's primary, and writes the answers back, many per write. A malformed
// frame closes that connection only; when the connection closes, the
// process ends. Over TLS when the node uses it (dist/stream.h).
#pragma once

#include <memory>
#include <string>

namespace panal::dist {
class stream;
}

namespace panal::db {

struct context;

// Runs in the process that accepted the connection (see
// dist::distribution::set_client_handler).
void serve_client(context& ctx, std::shared_ptr<dist::stream> conn, std::string first_frame, std::string rest);

}  // namespace panal::db
