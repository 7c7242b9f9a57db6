// A node's metrics in the Prometheus text exposition format (0.0.4).
//
// What it reports, and what each metric means, is listed in
// docs/operations.md: requests by operation and error code, latency
// histograms, keys and memory of this node's data processes, data moved by
// fills and syncs, restarts per supervisor, connections, the longest
// mailboxes and the scheduler threads' busy time.
//
// Thread-safety: render_metrics() runs inside a process of the node (it asks
// the data processes and supervisors, as a call does), any number at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "runtime/pid.h"

namespace panal {

class runtime;
namespace registry {
class pg;
}
namespace dist {
class distribution;
}
namespace metrics {
class request_metrics;
}

struct metrics_sources {
  runtime& rt;
  registry::pg& groups;
  const metrics::request_metrics& requests;
  const std::atomic<std::uint32_t>& client_sessions;
  dist::distribution* dist;  // null on a node without a name
  pid root;                  // the node's root supervisor
  std::string node;
};

std::string render_metrics(const metrics_sources& s);

// How many of the longest mailboxes are reported.
inline constexpr unsigned kReportedMailboxes = 10;

}  // namespace panal
