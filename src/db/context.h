// What a node gives its database processes: the registry, the node's route
// table, and the distribution (null on a node without a name).
#pragma once

#include <chrono>
#include <string>

namespace panal::registry {
class pg;
}
namespace panal::dist {
class distribution;
}

namespace panal::db {

class routes;

struct context {
  registry::pg& groups;
  db::routes& routes;
  dist::distribution* dist = nullptr;
  std::string node;  // this node's name
  std::chrono::milliseconds down_after{4000};  // the node's down-detection time (the default lease)
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
