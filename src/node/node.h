// panal::node: one node of a panal cluster, the composition root.
//
// A node owns the runtime (scheduler threads), the distribution (when its
// name is name@host:port), the group registry, and a root supervisor under
// which each database gets a db:<name> supervisor. start_server/start_data/
// start_client start those roles on this node, or on the named nodes of the
// cluster (through remote spawn).
//
// Thread-safety: every member may be called from any thread except from
// inside this node's own processes (they would wait on themselves).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dist/tls_files.h"
#include "node/client.h"
#include "runtime/runtime.h"
#include "store/limits.h"

namespace panal {

namespace registry {
class pg;
}
namespace dist {
class distribution;
}

struct node_options {
  std::string name = "nonode@nohost";  // name@host:port for a distributed node
  std::string cookie;                  // required with a distributed name
  unsigned threads = 0;                // scheduler threads; 0: one per CPU
  clock::duration tick = std::chrono::seconds(1);
  clock::duration down_after = std::chrono::seconds(4);
  clock::duration forget_after = std::chrono::seconds(60);  // then lost peers are dialled less often
  // How long an idle scheduler thread polls before it sleeps: a message or
  // socket event within that time costs no thread wake-up (lower latency at
  // low load), paid with CPU while idle (docs/runtime.md). Zero: sleep at once.
  clock::duration spin_before_sleep = std::chrono::microseconds(50);
  // Client sessions open at once on this node; more are refused with
  // `unavailable` (docs/protocol.md 11.8 has the other per-session bounds).
  std::uint32_t max_sessions = 1024;
  // Bytes queued for one peer node and not yet written: past this the peer
  // is taken as not reading and the connection is closed (then redialled).
  std::size_t max_send_queue = 256u << 20;
  // TLS on the node's port, for nodes and clients alike: certificate and
  // key (PEM), and optionally the CA that the nodes it dials must present a
  // certificate from. Off when empty. See docs/protocol.md §10.
  dist::tls_files tls;
  // "host:port" of an HTTP listener for operators: /metrics (Prometheus)
  // and the live page (docs/operations.md). Off when empty. Unauthenticated:
  // bind it to loopback or a network only operators reach.
  std::string http;
};

struct server_options {
  store::limits limits;
  std::string ckey;             // client key; empty: none
  std::uint32_t slots = 16384;
  std::uint32_t replicas = 3;   // owners per slot (capped by the number of data processes)
  std::uint32_t write_acks = 0; // holders that must have a write before it is acknowledged; 0: a majority of replicas
  std::chrono::milliseconds lease{0};  // how long a primary may serve without the master; 0: the node's down_after
};

struct db_groups {
  std::vector<pid> servers, data, clients;
};

struct data_stats {
  pid process;
  std::uint64_t keys = 0;          // live keys held, replicas included
  std::uint64_t keys_primary = 0;  // live keys of the slots it serves as primary (sums to the database's keys)
  std::uint64_t memory = 0;
  std::uint64_t entries = 0;     // keys and tombstones, replicas included
  std::uint64_t tombstones = 0;
  std::string state;             // serving, filling, syncing, draining, waiting
  std::uint32_t index = 0;       // its number on its node (data1, data2, ...)
  std::uint64_t member = 0;      // its stable identity
  std::uint32_t epoch = 0;       // the map epoch it holds
  std::uint32_t slots_primary = 0, slots_held = 0, slots_filling = 0;
  std::uint64_t keys_in = 0, bytes_in = 0, keys_out = 0, bytes_out = 0;  // moved by fills and syncs
  double rate = 0;               // bytes/s received by fills and syncs, last second
  // Slots it brought up to date as a new primary, counted per source:
  // agreed (the source held the same entries: nothing copied) or copied.
  std::uint64_t syncs_agreed = 0, syncs_copied = 0;
};

// A process as `panal top` lists it.
struct process_row {
  std::string pid, name;  // name: its registered name, if any
  std::uint64_t mailbox = 0, received = 0;
};

// A database's slot map as this node holds it.
struct map_info {
  std::uint32_t epoch = 0;
  pid master;
  std::uint32_t replicas = 0, write_acks = 0, slots = 0;
  std::uint32_t moving = 0;            // slots not in their settled state
  std::vector<std::uint64_t> members;  // identities
  std::vector<pid> pids;
  std::vector<bool> eligible;
  std::uint64_t owners_digest = 0;     // a hash of every slot's owners (targets): equal maps, equal digests
  // The primary (an index into pids; -1: none) of `sample_cells` evenly
  // spaced slots: a picture of who serves what, for views.
  static constexpr std::uint32_t sample_cells = 256;
  std::vector<std::int32_t> sampled_primaries;
};

class node {
 public:
  static result<std::unique_ptr<node>> start(node_options options);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;
  void stop();

  runtime& rt();
  const std::string& name() const;
  result<void> connect(const std::string& other);
  std::vector<std::string> nodes() const;  // connected peers

  // `on`: node names; empty means this node.
  result<std::vector<pid>> start_server(const std::string& db, const std::vector<std::string>& on = {},
                                        const server_options& options = {});
  result<std::vector<pid>> start_data(const std::string& db, const std::vector<std::string>& on = {},
                                      unsigned count = 1);
  // Drains `count` data processes of `db` on each node of `on` (default:
  // this one): their slots move to the others, then they stop. Returns when
  // all are stopped, or the first error (e.g. it would leave no data process).
  result<void> stop_data(const std::string& db, const std::vector<std::string>& on = {}, unsigned count = 1,
                         clock::duration timeout = std::chrono::minutes(10));
  // Starts a client process named `name` on each node of `on` (default: this
  // one) and returns a client bound to the first.
  result<client> start_client(const std::string& name, const std::string& db,
                              const std::vector<std::string>& on = {});

  db_groups groups(const std::string& db) const;
  // Databases with a live server in the cluster, sorted.
  std::vector<std::string> databases() const;
  std::optional<pid> master(const std::string& db) const;
  // Keys, memory and state of every live data process of `db`.
  std::vector<data_stats> stats(const std::string& db);
  // The database's slot map as this node holds it (asked of the master, up to 1 s,
  // when this node has none yet).
  std::optional<map_info> slot_map(const std::string& db) const;

  // What every live data process of `db` holds of `key` (for experiments
  // and for finding out where a key went).
  struct key_copy {
    pid process;
    std::string role;  // none, filling, replica, primary
    bool held = false, tombstone = false;
    std::string value;
    std::uint32_t version_epoch = 0;
    std::uint64_t version_hlc = 0;
    std::uint32_t epoch = 0;
  };
  std::vector<key_copy> locate(const std::string& db, const std::string& key);

  // The supervision tree of `node_name` (default: this node), one line per
  // child: indented id, pid (or "not running") and restart count.
  result<std::vector<std::string>> supervision(const std::string& node_name = {},
                                               clock::duration timeout = std::chrono::seconds(10));

  // The same tree as entries: depth (1: the root's children), id, whether
  // it is a supervisor, pid ("" when not running), restarts; a supervisor
  // that did not answer is an entry with an empty id and `error` set.
  struct tree_entry {
    unsigned depth = 1;
    std::string id;
    bool supervisor = false;
    std::string pid, error;
    unsigned restarts = 0;
  };
  result<std::vector<tree_entry>> supervision_tree(const std::string& node_name = {},
                                                   clock::duration timeout = std::chrono::seconds(10));

  // The metrics of `node_name` (default: this node) in the Prometheus text
  // format; docs/operations.md lists them.
  result<std::string> metrics(const std::string& node_name = {}, clock::duration timeout = std::chrono::seconds(10));
  // Every live process of `node_name` (default: this node), its mailbox
  // length and the messages it has received.
  result<std::vector<process_row>> processes(const std::string& node_name = {},
                                             clock::duration timeout = std::chrono::seconds(10));
  // The cluster as this node sees it, as JSON (what the live page and
  // `panal status --json` show; docs/operations.md has its shape).
  std::string view_json(clock::duration timeout = std::chrono::seconds(2));
  // The port of the HTTP listener (options.http), 0 if none.
  unsigned short http_port() const;

  // Fault injection: cut this node off from `nodes` as a network partition
  // would, until heal() (see dist::distribution::partition).
  result<void> partition(const std::vector<std::string>& nodes);
  void heal();

  // The layers below, for tools and tests.
  registry::pg& registry();
  dist::distribution* distribution();  // null when not distributed
  pid root_supervisor() const;  // children "dist", "listener", "pg", ... (docs/architecture.md)

  struct impl;

 private:
  explicit node(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace panal
