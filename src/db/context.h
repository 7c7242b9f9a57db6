// What a node gives its database processes: the registry, the node's route
// table, and the distribution (null on a node without a name).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace panal::registry {
class pg;
}
namespace panal::dist {
class distribution;
}

namespace panal::metrics {
class request_metrics;
}

namespace panal::db {

class routes;
class auth_throttle;

// What one client may make a node hold (docs/protocol.md 11.8).
struct session_limits {
  std::uint32_t max_sessions = 1024;         // per node; more are refused (`unavailable`)
  std::uint32_t max_in_flight = 256;         // a session's requests sent on and not yet answered
  std::size_t pause_bytes = 1u << 20;        // answers not yet taken by the client: stop reading above this
  std::size_t max_output_bytes = 64u << 20;  // ... and close the session above this
};

struct context {
  registry::pg& groups;
  db::routes& routes;
  dist::distribution* dist = nullptr;
  std::string node;  // this node's name
  std::chrono::milliseconds down_after{4000};  // the node's down-detection time (the default lease)
  session_limits sessions{};
  std::shared_ptr<std::atomic<std::uint32_t>> open_sessions = std::make_shared<std::atomic<std::uint32_t>>(0);
  std::shared_ptr<auth_throttle> auth;  // slows client-key guessing per address (null: not slowed)
  metrics::request_metrics* requests = nullptr;  // the node's request counters (null: not counted)
};

// The process on every node that receives maps for the route table
// (registered under this name).
inline constexpr const char* routes_process = "panal_routes";

// From that process to the node's data processes: a new map of `db` is in
// the route table. (Local only.)
struct map_changed {
  std::string db;
};

}  // namespace panal::db
