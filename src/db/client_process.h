// The client role: a named process (a member of <db>/client) that the
// in-process API (panal::client) talks to. It takes client_op calls and
// casts, routes each as a request to its slot's primary (see requester.h)
// and answers each call when the primary replies.
//
// Thread-safety: a process body.
#pragma once

#include <string>

namespace panal::db {

struct context;

void client_main(context& ctx, std::string db, std::string name);

}  // namespace panal::db
