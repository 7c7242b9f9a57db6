// The client protocol: how a remote client talks to any node (docs/protocol.md §11).
//
// Same port and framing as the node protocol (4-byte length + msgpack array);
// a connection whose first frame is CLIENT_HELLO is a client session:
//   C->S [64, version, db, token or nil, client id]          CLIENT_HELLO
//   S->C [65, code, message, node name, max key, max value]  WELCOME (code 0: go on; else closed)
//   C->S [66, id, op, key (bin), value (bin)|nil, seq, floor, retry]  REQUEST (pipelined)
//   S->C [67, id, code, message, found, value (bin)|nil]     RESPONSE (any order)
//   C->S [68, id]                                            ROUTE_REQUEST (version 3)
//   S->C [69, id, code, generation, epoch, [node names], primaries (bin)]  ROUTE_MAP
// op: 1 get, 2 set, 3 remove, 4 exists, 5 unsafe_set (no RESPONSE).
// ROUTE_MAP is the node's newest slot map of the session's database, as a
// client routes with it: per slot (2 bytes big-endian each, slot count =
// length / 2) the index in `node names` of the node whose data process is
// the slot's primary (0xffff: none). Clients send each request to that node
// to save a hop between nodes; any node serves any key, so a stale map costs
// time, never correctness.
// code: an errc number (0: ok). Requests and responses match by id.
// A write's (client id, seq) names it across retries and reconnections:
// sent again with retry = true it is answered, not applied twice. floor:
// every write of this client with a lower seq has been answered. seq 0:
// not tracked.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace panal::db {

// The operations, with their numbers on the wire (also used between roles).
enum class op : std::uint8_t { get = 1, set = 2, remove = 3, exists = 4, unsafe_set = 5 };
inline bool is_write(op o) { return o == op::set || o == op::remove || o == op::unsafe_set; }
inline bool carries_value(op o) { return o == op::set || o == op::unsafe_set; }

namespace client_protocol {

inline constexpr std::uint32_t version = 3;
inline constexpr std::uint32_t oldest_version = 2;  // without ROUTE_REQUEST; still served
enum kind : int { hello = 64, welcome = 65, request = 66, response = 67, route_request = 68, route_map = 69 };
// Largest frame of a session: a value at the largest allowed limit
// (max_value_bytes + max_key_bytes < 60 MiB) and its framing fit.
inline constexpr std::size_t max_frame = 64u << 20;

std::string encode_hello(std::string_view db, std::string_view token, std::uint64_t client_id,
                         std::uint32_t speaks = version);
// What a node answers (WELCOME bad_argument) to a version it does not speak.
inline constexpr std::string_view unsupported_version = "unsupported client protocol version";
std::string encode_welcome(errc code, std::string_view message, std::string_view node,
                           std::uint64_t max_key = 0, std::uint64_t max_value = 0);
struct write_tag {
  std::uint64_t seq = 0;
  std::uint64_t floor = 0;
  bool retry = false;
};
std::string encode_request(std::uint64_t id, op o, std::string_view key, std::string_view value,
                           write_tag tag = {});
// Appends to `out` (many requests go out in one write).
void append_request(std::string& out, std::uint64_t id, op o, std::string_view key, std::string_view value,
                    write_tag tag = {});
std::string encode_response(std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                            std::string_view value);
// Appends to `out` (many responses go out in one write).
void append_response(std::string& out, std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                     std::string_view value);

struct frame {
  int kind = 0;
  std::uint32_t version = 0;
  std::string db, token;            // hello
  std::uint64_t client_id = 0;      // hello
  std::uint16_t code = 0;           // welcome, response
  std::string message, node;        // welcome, response
  std::uint64_t max_key = 0, max_value = 0;  // welcome: the database's limits (0: unknown)
  write_tag tag;                    // request
  std::uint64_t id = 0;             // request, response
  db::op op = db::op::get;          // request
  std::string key, value;           // request, response
  bool found = false;               // response
};

result<frame> decode(std::string_view payload);

// The kind of a frame (its first element), without decoding the rest; 0
// when it does not start like a client frame.
int kind_of(std::string_view payload);

// A RESPONSE read in place: message and value are views into `payload`.
struct response_view {
  std::uint64_t id = 0;
  std::uint16_t code = 0;
  std::string_view message, value;
  bool found = false;
};
result<response_view> decode_response(std::string_view payload);

struct routes {
  static constexpr std::uint16_t none = 0xffff;
  std::uint64_t id = 0;
  std::uint16_t code = 0;            // an errc number; not 0: no map (e.g. the node has none yet)
  std::uint64_t generation = 0;
  std::uint32_t epoch = 0;
  std::vector<std::string> nodes;     // node names ("name@host:port": the port is the client port too)
  std::vector<std::uint16_t> primary; // per slot: index into nodes, or none
};
std::string encode_route_request(std::uint64_t id);
result<std::uint64_t> decode_route_request(std::string_view payload);  // its id
void append_routes(std::string& out, const routes& r);
result<routes> decode_routes(std::string_view payload);

// A REQUEST frame read in place, without an object tree (the hot path):
// key and value are views into `payload`.
struct request_view {
  std::uint64_t id = 0;
  db::op op = db::op::get;
  std::string_view key, value;
  write_tag tag;
};
result<request_view> decode_request(std::string_view payload);

}  // namespace client_protocol
}  // namespace panal::db
