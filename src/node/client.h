// panal::client: the API of one database through a client process.
//
// Promises: every call returns a value or a typed error; errors that mean
// "the cluster is changing" (no master, no data process, a slot that moved,
// a lost connection) are retried until the call's timeout, so a failover
// shows only as latency. A write keeps its identity (this client's id and a
// sequence number) across retries, so it is never applied twice, and a
// retried remove reports whether the key existed before the first attempt
// took effect. mset checks every item's size before it sends any.
// unsafe_set() returns without waiting for the store, yet later calls on
// the same client are ordered after it.
//
// Thread-safety: a client may be shared by threads; each call is independent.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <memory>

#include "db/batch.h"
#include "runtime/runtime.h"

namespace panal {

namespace db {
class routes;
}

class client {
 public:
  // `routes` (may be null) gives the database's limits to mset.
  client(runtime& rt, pid process, std::string db, clock::duration timeout = std::chrono::seconds(5),
         const db::routes* routes = nullptr);

  result<std::optional<std::string>> get(std::string_view key);
  result<void> set(std::string_view key, std::string_view value);
  result<bool> remove(std::string_view key);  // true if the key existed
  result<bool> exists(std::string_view key);
  result<void> unsafe_set(std::string_view key, std::string_view value);
  result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& keys);
  result<void> mset(const std::vector<std::pair<std::string, std::string>>& items);
  // Mixed operations in one go (db/batch.h): a result per operation.
  std::vector<batch_result> batch(const std::vector<batch_op>& ops);

  const pid& process() const { return process_; }
  const std::string& db() const { return db_; }
  void set_timeout(clock::duration t) { timeout_ = t; }

  struct writes;  // write identities shared by copies of this client

 private:
  runtime* rt_;
  pid process_;
  std::string db_;
  clock::duration timeout_;
  const db::routes* routes_;
  std::shared_ptr<writes> writes_;
};

}  // namespace panal
