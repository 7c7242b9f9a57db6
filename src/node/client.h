// panal::client: the API of one database through a client process.
//
// Promises: every call returns a value or a typed error; errors that mean
// "the cluster is changing" (no master, no data process, lost connection)
// are retried until the call's timeout, so a master failover shows only as
// latency. unsafe_set() returns without waiting for the store, yet later
// calls on the same client are ordered after it.
//
// Thread-safety: a client may be shared by threads; each call is independent.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/runtime.h"

namespace panal {

class client {
 public:
  client(runtime& rt, pid process, std::string db, clock::duration timeout = std::chrono::seconds(5));

  result<std::optional<std::string>> get(std::string_view key);
  result<void> set(std::string_view key, std::string_view value);
  result<bool> remove(std::string_view key);  // true if the key existed
  result<bool> exists(std::string_view key);
  result<void> unsafe_set(std::string_view key, std::string_view value);
  result<std::vector<std::optional<std::string>>> mget(const std::vector<std::string>& keys);
  result<void> mset(const std::vector<std::pair<std::string, std::string>>& items);

  const pid& process() const { return process_; }
  const std::string& db() const { return db_; }
  void set_timeout(clock::duration t) { timeout_ = t; }

 private:
  runtime* rt_;
  pid process_;
  std::string db_;
  clock::duration timeout_;
};

}  // namespace panal
