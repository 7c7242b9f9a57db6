// Messages between a database's roles (client or session -> server -> data)
// and their wire registration. Requests carry the requester's own id and the
// pid the answer goes to: the data process answers the requester directly,
// so the master only routes.
//
// This header includes msgpack-c (via dist/codec.h): include it in .cc files.
#pragma once

#include <cstdint>
#include <string>

#include "db/client_protocol.h"
#include "dist/codec.h"
#include "runtime/pid.h"
#include "util/error.h"

namespace panal::db {


std::string server_group(const std::string& db);
std::string data_group(const std::string& db);
std::string client_group(const std::string& db);

struct request {
  std::uint64_t id = 0;    // the requester's; echoed in the reply
  pid reply_to;            // null: nobody waits (unsafe_set)
  std::uint8_t kind = 0;   // op
  std::string key;
  std::string value;
  // Filled in by the master:
  std::uint64_t version = 0;
  bool may_insert = true;  // false at the database's key limit: only updates pass
  pid count_to;            // non-null: report inserted/removed keys there (key limit)
  std::uint64_t max_memory = 0;
  MSGPACK_DEFINE(id, reply_to, kind, key, value, version, may_insert, count_to, max_memory);
};

struct reply {
  std::uint64_t id = 0;
  std::uint16_t code = 0;  // errc
  std::string message;
  bool found = false;
  std::string value;
  MSGPACK_DEFINE(id, code, message, found, value);
};

// data -> master: live keys of `from` changed by `delta`.
struct key_delta {
  pid from;
  std::int64_t delta = 0;
  MSGPACK_DEFINE(from, delta);
};

// Asked of the master when a remote client opens a session (call_request body).
struct auth_request {
  std::string token;
  MSGPACK_DEFINE(token);
};

// A data process's figures (call_request body / reply).
struct stats_request {
  bool unused = false;
  MSGPACK_DEFINE(unused);
};
struct stats_reply {
  std::uint64_t keys = 0;
  std::uint64_t entries = 0;
  std::uint64_t memory = 0;
  MSGPACK_DEFINE(keys, entries, memory);
};

// What the local API (panal::client) asks a client process.
struct client_op {
  std::uint8_t kind = 0;
  std::string key;
  std::string value;
  MSGPACK_DEFINE(kind, key, value);
};

void register_types();  // idempotent

inline reply error_reply(std::uint64_t id, const error& e) {
  return reply{id, static_cast<std::uint16_t>(e.code), e.message, false, {}};
}

}  // namespace panal::db
