// The cluster as one node sees it, as JSON: the live page's data and
// `panal status --json` (docs/operations.md has the shape).
//
// Thread-safety: from any thread, or inside a process of the node (it asks
// other processes and nodes, each for at most `timeout`).
#pragma once

#include <string>

#include "metrics/request_metrics.h"
#include "runtime/runtime.h"

namespace panal {

class node;

// `requests`: this node's request counters, summed.
std::string cluster_json(node& n, const metrics::request_totals& requests, clock::duration timeout);

// The live page (one self-contained HTML document: no outside resources).
const std::string& live_page();

}  // namespace panal
