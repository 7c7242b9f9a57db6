// Messages between a database's processes, and their wire registration.
// docs/protocol.md §12 describes the protocol they make up:
//
//   requester (client process or TCP session) --request--> primary data process
//   primary --replicate--> other holders --replicate_ack--> primary --reply--> requester
//   master --map_update--> data processes and every node's route table
//   data --lease_request/member_report/token_request--> master --lease_grant/token_grant--> data
//   data --transfer_request--> data --transfer_reply--> data (fills, syncs, fences)
//
// This header includes msgpack-c (via dist/codec.h): include it in .cc files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "db/client_protocol.h"
#include "dist/codec.h"
#include "runtime/pid.h"
#include "util/error.h"

namespace panal::db {

std::string server_group(const std::string& db);
std::string data_group(const std::string& db);
// The database a group name belongs to ("mydb/server" -> "mydb") if it is
// one of that kind (`role`: "server", "data", "client"), else empty.
std::string database_of(std::string_view group, std::string_view role);
std::string client_group(const std::string& db);

// ---- requests -------------------------------------------------------------------

// A write's identity for retries: the client that numbered it and its
// number. client 0: not tracked (unsafe_set).
struct write_id {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  std::uint64_t floor = 0;  // every write of this client below `floor` was answered
  bool retry = false;       // sent before: answer from the write log if it was applied
  MSGPACK_DEFINE(client, seq, floor, retry);
};

struct request {
  std::uint64_t id = 0;    // the requester's; echoed in the reply
  pid reply_to;            // null: nobody waits (unsafe_set)
  std::uint8_t kind = 0;   // op
  std::uint32_t epoch = 0; // the map epoch the requester routed with
  std::string key;
  std::string value;
  write_id wid;
  // key_hash(key) when a local sender computed it (0: not known). Not on
  // the wire: a request from another node always comes with 0.
  std::uint64_t hash = 0;
  std::uint64_t key_hash() const;
  MSGPACK_DEFINE(id, reply_to, kind, epoch, key, value, wid);
};

struct reply {
  std::uint64_t id = 0;
  std::uint16_t code = 0;  // errc
  std::string message;
  bool found = false;
  std::string value;
  std::uint32_t epoch = 0;  // the answering process's map epoch (for `moved`)
  MSGPACK_DEFINE(id, code, message, found, value, epoch);
};

// Many requests to one primary, or many replies to one requester, as one
// message: one mailbox hand-off for a batch (what a session read at once,
// what a data process answered in one turn). Each element is handled as if
// it came alone, in order.
struct request_batch {
  std::vector<request> requests;
  MSGPACK_DEFINE(requests);
};
struct reply_batch {
  std::vector<reply> replies;
  MSGPACK_DEFINE(replies);
};

// ---- the map ------------------------------------------------------------------

// A database's settings, published with its map.
struct db_config {
  std::uint32_t slots = 16384;
  std::uint32_t replicas = 3;
  std::uint32_t write_acks = 2;
  std::uint64_t max_key_bytes = 1024;
  std::uint64_t max_value_bytes = 8u << 20;
  std::uint64_t max_keys = 0;
  std::uint64_t max_memory = 0;
  std::uint64_t lease_ms = 4000;
  MSGPACK_DEFINE(slots, replicas, write_acks, max_key_bytes, max_value_bytes, max_keys, max_memory, lease_ms);
};

struct wire_member {
  std::uint64_t id = 0;
  pid who;
  bool eligible = true;
  MSGPACK_DEFINE(id, who, eligible);
};

struct wire_holder {
  std::uint32_t member = 0;
  std::uint32_t since = 0;
  bool ready = false;
  MSGPACK_DEFINE(member, since, ready);
};

struct wire_exception {
  std::uint32_t slot = 0;
  std::int32_t primary = -1;
  std::int32_t handover = -1;
  std::vector<wire_holder> holders;
  MSGPACK_DEFINE(slot, primary, handover, holders);
};

struct map_update {
  std::string db;
  std::uint64_t generation = 0;  // a database started anew gets a later one
  std::uint32_t epoch = 0;
  pid master;
  db_config config;
  std::vector<wire_member> members;
  std::vector<wire_exception> exceptions;
  MSGPACK_DEFINE(db, generation, epoch, master, config, members, exceptions);
};

// Anyone -> master: send the current map to `reply_to` (a map_update).
struct map_request {
  std::string db;
  pid reply_to;
  std::uint32_t known = 0;  // the asker's epoch (for logs; the master answers whatever it holds)
  MSGPACK_DEFINE(db, reply_to, known);
};

// Master -> data (a call on takeover): the map you hold (a map_update; epoch 0: none).
struct map_query {
  std::uint32_t unused = 0;
  MSGPACK_DEFINE(unused);
};

// ---- leases, reports, tokens ----------------------------------------------------

struct lease_request {
  pid from;
  std::uint64_t member = 0;  // stable identity
  std::uint32_t index = 0;   // per node and database
  std::uint64_t seq = 0;
  std::uint32_t epoch = 0;   // the map epoch the member holds
  bool draining = false;
  MSGPACK_DEFINE(from, member, index, seq, epoch, draining);
};

struct lease_grant {
  std::uint64_t seq = 0;
  std::uint64_t duration_ms = 0;
  std::uint32_t epoch = 0;
  bool report_all = false;  // a new master: tell it every slot you serve and have filled
  MSGPACK_DEFINE(seq, duration_ms, epoch, report_all);
};

struct fill_done {
  std::uint32_t slot = 0;
  std::uint32_t since = 0;       // the holder's `since` in the map
  std::uint32_t from_epoch = 0;  // the epoch at which the fill began
  std::uint64_t source = 0;      // the primary it filled from
  MSGPACK_DEFINE(slot, since, from_epoch, source);
};

struct slot_serving {
  std::uint32_t slot = 0;
  std::uint32_t epoch = 0;  // an epoch at which it served the slot as primary
  std::uint64_t live = 0;   // live keys in the slot
  MSGPACK_DEFINE(slot, epoch, live);
};

// A holder a primary lost contact with while writes were on their way to it.
struct lagging_holder {
  std::uint64_t member = 0;
  std::uint32_t slot = 0;
  MSGPACK_DEFINE(member, slot);
};

// Data -> master: what changed on this member.
struct member_report {
  pid from;
  std::uint64_t member = 0;
  std::uint32_t epoch = 0;
  std::vector<fill_done> filled;
  std::vector<slot_serving> serving;
  std::vector<lagging_holder> lagging;
  std::uint64_t tokens = 0;      // insert tokens held (key limit)
  std::uint64_t received = 0;    // insert tokens received, in all
  bool all_served = false;       // `serving` lists every slot it serves
  MSGPACK_DEFINE(from, member, epoch, filled, serving, lagging, tokens, received, all_served);
};

struct token_request {
  pid from;
  std::uint64_t member = 0;
  std::uint64_t want = 0;
  std::uint64_t held = 0;
  std::uint64_t received = 0;
  MSGPACK_DEFINE(from, member, want, held, received);
};
struct token_grant {
  std::uint64_t granted = 0;
  bool full = false;    // the database is at its key limit
  bool recall = false;  // (unasked) give back the tokens you hold: another member needs them
  MSGPACK_DEFINE(granted, full, recall);
};

// A call to a data process: start draining (it tells the master with its
// lease requests), or (check_only) ask whether it holds nothing any more.
struct drain_request {
  std::uint64_t member = 0;  // unused; kept for the wire layout
  bool check_only = false;
  MSGPACK_DEFINE(member, check_only);
};
struct drain_reply {
  std::uint16_t code = 0;
  std::string message;
  bool drained = false;
  MSGPACK_DEFINE(code, message, drained);
};

// ---- replication -------------------------------------------------------------------

struct repl_write {
  std::uint32_t slot = 0;
  std::string key;
  std::string value;
  std::uint32_t v_epoch = 0;
  std::uint64_t v_hlc = 0;
  bool tombstone = false;
  write_id wid;
  bool found = false;  // what the write answers (for the write log)
  MSGPACK_DEFINE(slot, key, value, v_epoch, v_hlc, tombstone, wid, found);
};

struct replicate {
  pid from;
  std::uint32_t epoch = 0;
  std::uint64_t stream = 0;  // per (primary, holder), consecutive
  std::vector<repl_write> writes;
  MSGPACK_DEFINE(from, epoch, stream, writes);
};

struct replicate_ack {
  pid from;
  std::uint64_t stream = 0;
  std::uint32_t epoch = 0;            // the holder's map epoch
  std::vector<std::uint32_t> refused;  // indexes of writes it did not take (fenced, not a holder)
  MSGPACK_DEFINE(from, stream, epoch, refused);
};

// Tombstones every holder has: drop them.
struct purge {
  pid from;
  std::uint32_t epoch = 0;
  std::vector<std::string> keys;
  std::vector<std::uint32_t> v_epochs;
  std::vector<std::uint64_t> v_hlcs;
  MSGPACK_DEFINE(from, epoch, keys, v_epochs, v_hlcs);
};

// ---- transfers (fills, syncs, fences) ---------------------------------------------

enum class transfer_purpose : std::uint8_t {
  fill = 1,   // a filling holder pulls the slot from its primary
  sync = 2,   // a new primary pulls the slot from a holder, and fences it
  fence = 3,  // a new primary fences the previous primary (handover): no data
};

struct wire_entry {
  std::string key;
  std::string value;
  std::uint32_t v_epoch = 0;
  std::uint64_t v_hlc = 0;
  bool tombstone = false;
  MSGPACK_DEFINE(key, value, v_epoch, v_hlc, tombstone);
};

struct wire_log_record {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  bool found = false;
  MSGPACK_DEFINE(client, seq, found);
};

struct transfer_part {
  std::uint32_t slot = 0;
  std::uint16_t code = 0;  // errc: ok, or moved (not now: ask again later)
  std::uint32_t generation = 0;
  std::uint32_t position = 0;
  bool done = false;
  std::vector<wire_entry> entries;
  std::vector<wire_log_record> log;  // with the last part of a slot
  // A sync's first request carries the new primary's digest of the slot; a
  // source whose digest is the same answers `same` (done, no entries).
  std::uint64_t digest = 0;
  bool same = false;
  MSGPACK_DEFINE(slot, code, generation, position, done, entries, log, digest, same);
};

struct transfer_request {
  pid from;
  std::uint32_t epoch = 0;
  std::uint8_t purpose = 0;
  std::uint64_t id = 0;  // echoed
  std::vector<transfer_part> parts;  // slot + cursor (generation, position)
  MSGPACK_DEFINE(from, epoch, purpose, id, parts);
};

struct transfer_reply {
  pid from;
  std::uint32_t epoch = 0;
  std::uint8_t purpose = 0;
  std::uint64_t id = 0;
  std::vector<transfer_part> parts;
  MSGPACK_DEFINE(from, epoch, purpose, id, parts);
};

// ---- views and the local API -------------------------------------------------------

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
  std::uint64_t keys = 0;          // live keys held, as primary or replica
  std::uint64_t keys_primary = 0;  // live keys of the slots it serves as primary (each key counts once there)
  std::uint64_t entries = 0;
  std::uint64_t memory = 0;
  std::uint64_t tombstones = 0;
  std::string state;              // serving, syncing, filling, draining, waiting
  std::uint64_t member = 0;
  std::uint32_t index = 0;
  std::uint32_t epoch = 0;
  std::uint32_t slots_primary = 0;  // slots it serves as primary
  std::uint32_t slots_held = 0;     // slots it holds (primary included)
  std::uint32_t slots_filling = 0;  // slots it is pulling
  std::uint64_t keys_in = 0, bytes_in = 0;    // received by fills and syncs
  std::uint64_t keys_out = 0, bytes_out = 0;  // sent to fills and syncs
  double rate = 0;                  // bytes/s received over the last second(s)
  // Slots it synced as a new primary, per source: agreed (equal digests,
  // nothing copied) or copied.
  std::uint64_t syncs_agreed = 0, syncs_copied = 0;
  MSGPACK_DEFINE(keys, keys_primary, entries, memory, tombstones, state, member, index, epoch, slots_primary, slots_held,
                 slots_filling, keys_in, bytes_in, keys_out, bytes_out, rate, syncs_agreed, syncs_copied);
};

// Where a key is: what one data process holds of it (call_request body / reply).
struct locate_request {
  std::string key;
  MSGPACK_DEFINE(key);
};
struct locate_reply {
  std::string role;     // none, filling, replica, primary
  bool held = false;    // an entry (value or tombstone) is here
  bool tombstone = false;
  std::string value;
  std::uint32_t v_epoch = 0;
  std::uint64_t v_hlc = 0;
  std::uint32_t epoch = 0;  // this process's map epoch
  MSGPACK_DEFINE(role, held, tombstone, value, v_epoch, v_hlc, epoch);
};

// What the local API (panal::client) asks a client process.
struct client_op {
  std::uint8_t kind = 0;
  std::string key;
  std::string value;
  write_id wid;
  MSGPACK_DEFINE(kind, key, value, wid);
};

void register_types();  // idempotent

inline reply error_reply(std::uint64_t id, const error& e) {
  return reply{id, static_cast<std::uint16_t>(e.code), e.message, false, {}, 0};
}

}  // namespace panal::db
