// Distribution: nodes that find each other and pass signals between them.
//
// Promises:
// - A node listens on the host:port of its name. Connecting to one node of a
//   cluster joins the full mesh: peers tell each other the nodes they know.
// - Handshake: both sides prove they hold the cookie without sending it
//   (random challenge + HMAC-SHA256, constant-time check). A wrong cookie is
//   refused on both sides with a log line; nothing but handshake frames is
//   accepted before the handshake completes.
// - With TLS (dist_options::tls), every connection on the port is TLS 1.3
//   and the cookie proofs are bound to its TLS session; a peer that speaks
//   plain TCP to it, or TLS to a node without, is refused with a log line.
// - Heartbeats: a peer from which nothing arrives for `down_after` is
//   declared down and disconnected. Lost nodes are dialled again every
//   `reconnect_every`, after `forget_after` every `slow_reconnect`, forever.
// - Signals to pids of other nodes (messages, exits, links, monitors) travel
//   in order per pair of processes. When a node is lost, every local process
//   linked to one of its processes gets an exit signal `noconnection`, and
//   every local monitor of one of its processes a DOWN `noconnection`.
// - Only message types registered in dist::message_types cross nodes; others
//   are dropped with a log line.
// - Malformed, truncated or oversized frames close that one connection with a
//   logged reason; they never crash the node.
//
// Thread-safety: every member may be called from any thread or process,
// except stop() and the destructor, which must not run inside a process of
// this runtime. The runtime must outlive the distribution.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dist/tls_files.h"
#include "runtime/runtime.h"
#include "util/error.h"

namespace panal::dist {

class stream;

struct dist_options {
  std::string cookie;                                          // the cluster's shared secret
  clock::duration tick = std::chrono::seconds(1);              // heartbeat when idle
  clock::duration down_after = std::chrono::seconds(4);        // silence that means "down"
  clock::duration handshake_timeout = std::chrono::seconds(5);
  clock::duration reconnect_every = std::chrono::seconds(1);
  clock::duration forget_after = std::chrono::seconds(60);      // then dial only every slow_reconnect
  clock::duration slow_reconnect = std::chrono::seconds(5);
  std::size_t max_frame = 64u << 20;
  // Bytes queued for one peer and not yet written: past this the peer is
  // not reading (stopped, or too slow), and the connection is closed rather
  // than let the queue grow (its links and monitors fire noconnection).
  std::size_t max_send_queue = 256u << 20;
  // TLS on the node's port (nodes and clients), when its files are given:
  // then every connection must speak TLS 1.3, and the cookie handshake runs
  // inside it, bound to the TLS session (a plaintext peer is refused).
  tls_files tls;
};

// Sent to processes that called monitor_nodes(), by the connection itself:
// node_up before any message that came over the connection, node_down after
// the last. `connection` tells connections to one node apart: a node_down
// whose connection is not the latest node_up's is about an older one.
struct node_up {
  std::string node;
  std::uint64_t connection = 0;
};
struct node_down {
  std::string node;
  std::string reason;
  std::uint64_t connection = 0;
};

class distribution {
 public:
  // The runtime's node name must be "name@host:port"; the listener binds it.
  // With `supervisor`, the controller ("dist") and the listener ("listener")
  // start as its permanent children: either may be killed and restarted
  // without losing the connections or the nodes it knows (they live in the
  // distribution, not in the process). Without, they are plain processes.
  static result<std::unique_ptr<distribution>> start(runtime& rt, dist_options options, const pid& supervisor = {});
  ~distribution();
  distribution(const distribution&) = delete;
  distribution& operator=(const distribution&) = delete;

  void stop();

  // Connects to `node` (and through it to its peers); returns when the
  // handshake with `node` completed or failed. A node connected this way is
  // dialled again whenever the connection is lost, forever.
  result<void> connect(const std::string& node, clock::duration timeout = std::chrono::seconds(10));
  std::vector<std::string> nodes() const;  // connected peers
  // Connected peers with the number of their current connection (as in node_up).
  std::vector<node_up> connections() const;
  const std::string& name() const;

  // node_up / node_down messages to `subscriber` (any local pid), until
  // demonitor_nodes(subscriber).
  void monitor_nodes(const pid& subscriber);
  void demonitor_nodes(const pid& subscriber);

  // Fault injection (tests, experiments): cuts this node off from `nodes`
  // as a network partition would: their connections close, and no
  // connection with them is made (either way) until heal(). Their peers see
  // the connection drop; frames in flight are lost.
  void partition(const std::vector<std::string>& nodes);
  void heal();

  // How long nothing has arrived from `node` (max() when not connected). A
  // node that was paused learns how stale its view is from this before its
  // connections time out.
  clock::duration silence(const std::string& node) const;

  // Sends to the process registered as `name` on `node` (this node included).
  result<void> send_named(const std::string& node, const std::string& name, message m, const pid& from = {});

  // Request-reply with the process registered as `name` on `node` (a
  // call_request it answers with this_process::reply). Both types must be
  // registered for distribution. A node not connected yet is connected
  // first, within `timeout` (which bounds the whole call); one that never
  // answered is not kept for redials.
  result<message> call_named(const std::string& node, const std::string& name, message request,
                             clock::duration timeout = std::chrono::seconds(10));

  // A function other nodes may spawn by name: it runs in this node's
  // distribution controller, gets the caller's argument bytes and must
  // return quickly with the pid it started.
  using spawn_fn = std::function<result<pid>(const std::string& args)>;
  void register_spawn(const std::string& name, spawn_fn fn);
  // Runs `fn` on `node` with `args`; the new pid, or why not.
  result<pid> spawn_on(const std::string& node, const std::string& fn, const std::string& args,
                       clock::duration timeout = std::chrono::seconds(10));

  // Connections whose first frame is of a client-protocol kind (>= 64) are
  // handed to `handler` in the connection's own process: the connection
  // (TLS already done, if the node uses it), the first frame's payload and
  // the raw bytes that arrived after it. Without a handler they are closed.
  using client_handler =
      std::function<void(std::shared_ptr<stream> conn, std::string first_frame, std::string rest)>;
  void set_client_handler(client_handler handler);

  struct impl;

 private:
  // `keep_trying` false: a name that never answers is not kept for redials.
  result<void> connect(const std::string& node, clock::duration timeout, bool keep_trying);
  explicit distribution(std::shared_ptr<impl> i);
  std::shared_ptr<impl> impl_;  // shared with the distribution's processes
};

}  // namespace panal::dist
