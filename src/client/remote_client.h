// panal::remote_client: a database over TCP, without a local node.
//
// Promises:
// - connect() tries the addresses in order and opens a session on the first
//   that answers (CLIENT_HELLO/WELCOME), the home session; a wrong token is
//   `unauthorized`, a database without a server `unknown_db`.
// - Routing (options.route, on by default): each request goes to the node
//   whose data process is its slot's primary, over a session opened there
//   on first use; the ops of one batch go out to all their nodes before any
//   answer is awaited. A node that cannot be reached, or a map not yet
//   known, sends requests through the home session, which serves any key:
//   routing saves a hop between nodes, it never decides an answer.
// - Calls from many threads share the connection and are pipelined; each
//   waits at most the timeout. A call reads its answers on its own thread
//   (the client starts no reader thread): whichever caller waits reads the
//   connection and hands out what comes to every waiter, so a call costs
//   one write and one read, with no hand-off between threads. A batch
//   larger than the sockets' buffers is read while it is written. A node
//   that went away is noticed by the next call that uses its connection (a
//   failed write, or the read that finds the connection's end). Retryable errors (no master, no data process,
//   a slot that moved, a write that reached too few holders, a lost
//   connection) are retried until the timeout, reconnecting to the next
//   address when the connection is lost; so a failover shows as latency.
//   Writes keep their identity (client id, sequence number) across retries
//   and reconnections: a retried write is never applied twice.
// - unsafe_set() does not wait; later calls on this client are ordered after it.
// - With TLS (options.tls), nothing is sent in the clear, TLS 1.3 only; an
//   untrusted node certificate is `unauthorized`.
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "db/batch.h"
#include "util/error.h"

namespace panal {

struct remote_options {
  std::vector<std::string> addresses;  // "host:port" (a node's address)
  std::string db;
  std::string token;                   // the database's client key, if it has one
  std::chrono::milliseconds timeout{5000};
  // TLS, for nodes that use it (panal node --tls-cert ...). With tls_ca the
  // node's certificate must chain to it and name the host dialled;
  // without, the connection is encrypted but the node is not checked (a
  // man in the middle could read the client key).
  bool tls = false;
  std::string tls_ca;  // implies tls
  // Send each request to the node of its slot's primary (learnt from the
  // home session's ROUTE_MAP, refreshed every second and after a lost
  // connection or `moved`), opening a session there on first use. Off:
  // everything goes through the home session, one hop more for most keys.
  bool route = true;
  // A call that waits for its answer first reads without blocking for up to
  // this long, then blocks: on one machine the answer usually comes before
  // a blocked thread would have woken (Python's sequential calls ran 2.4x
  // faster). It costs this client's CPU, never the node's, and stops by
  // itself where the answers take longer (util/pay_average.h). 0: never.
  std::chrono::microseconds spin{50};
};

class remote_client {
 public:
  static result<std::unique_ptr<remote_client>> connect(remote_options options);
  // The name of the node at options.addresses[0] (one address), as its
  // WELCOME says it, with the client's TLS settings: a HELLO for no
  // database, which every node refuses with its name. Opens no session.
  static result<std::string> node_at(remote_options options);
  ~remote_client();
  remote_client(const remote_client&) = delete;
  remote_client& operator=(const remote_client&) = delete;

  result<std::optional<std::string>> get(std::string_view key);
  result<void> set(std::string_view key, std::string_view value);
  result<bool> remove(std::string_view key);
  result<bool> exists(std::string_view key);
  result<void> unsafe_set(std::string_view key, std::string_view value);
  result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& keys);
  // The same, for keys the caller keeps alive (no copy of them).
  result<std::vector<std::optional<std::string>>> mget_views(const std::vector<std::string_view>& keys);
  result<void> mset(const std::vector<std::pair<std::string, std::string>>& items);
  // Mixed operations in one go (db/batch.h): a result per operation.
  std::vector<batch_result> batch(const std::vector<batch_op>& ops);

  // Called (on the calling thread, without the client's lock) at least
  // every 50 ms while a call waits for answers or between its retries; when
  // it returns true, the call ends at once: its unanswered operations with
  // `timeout` "interrupted" (a write may still be applied). Set it before
  // the client is shared. (The Python binding checks for Ctrl-C here.)
  void set_interrupt_check(std::function<bool()> check);

  void close();
  std::string node() const;  // the node of the home session
  // The nodes with an open session: the home node first, then those opened
  // for routing. A session whose node has closed it (a node that died) is
  // left out as soon as its socket says so, before a call notices.
  std::vector<std::string> sessions() const;
  void set_timeout(std::chrono::milliseconds t);

  struct impl;

 private:
  explicit remote_client(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace panal
