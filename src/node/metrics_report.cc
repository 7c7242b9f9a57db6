#include "node/metrics_report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "db/messages.h"
#include "dist/distribution.h"
#include "metrics/request_metrics.h"
#include "registry/pg.h"
#include "runtime/runtime.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
#include "util/error.h"

namespace panal {

namespace {

namespace tp = this_process;

// Label values are escaped as the format says: backslash, quote, newline.
std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class writer {
 public:
  // Opens a family: its HELP and TYPE lines.
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // One sample: labels as name, value pairs.
  void sample(std::string_view name, std::initializer_list<std::pair<const char*, std::string_view>> labels,
              double value) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape(v);
        out_ += '"';
      }
      out_ += '}';
    }
    char buf[32];
    if (value >= 0 && value < 1e18 && value == static_cast<double>(static_cast<std::uint64_t>(value))) {
      std::snprintf(buf, sizeof buf, " %llu\n", static_cast<unsigned long long>(value));
    } else {
      std::snprintf(buf, sizeof buf, " %.9g\n", value);
    }
    out_ += buf;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string seconds(std::uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(us) / 1e6);
  return buf;
}

void requests(writer& w, const metrics::request_totals& t) {
  w.family("panal_requests_total", "counter",
           "Requests answered by this node's clients and sessions, by operation and result code (ok or an error).");
  for (unsigned op = 1; op < metrics::kOps; ++op) {
    const auto& o = t.ops[op];
    for (unsigned c = 0; c < metrics::kCodes; ++c) {
      if (c != 0 && o.by_code[c] == 0) continue;
      std::string code = c == metrics::kCodes - 1 ? "other" : to_string(static_cast<errc>(c));
      if (code == "unknown") code = "code_" + std::to_string(c);  // one series per code, named or not
      w.sample("panal_requests_total", {{"op", metrics::kOpNames[op]}, {"code", code}},
               static_cast<double>(o.by_code[c]));
    }
  }
  w.family("panal_request_duration_seconds", "histogram",
           "Time from a request's send to its answer, as its client or session saw it.");
  using b = metrics::latency_buckets;
  for (unsigned op = 1; op < metrics::kOps; ++op) {
    const auto& o = t.ops[op];
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < b::count; ++i) {
      seen += o.latency[i];
      // One boundary per power of two of microseconds (the finer buckets
      // serve the quantiles below).
      if (i % b::sub == b::sub - 1 || i < 2) {
        w.sample("panal_request_duration_seconds_bucket", {{"op", metrics::kOpNames[op]}, {"le", seconds(b::upper_bound(i))}},
                 static_cast<double>(seen));
      }
    }
    w.sample("panal_request_duration_seconds_bucket", {{"op", metrics::kOpNames[op]}, {"le", "+Inf"}},
             static_cast<double>(seen));
    w.sample("panal_request_duration_seconds_sum", {{"op", metrics::kOpNames[op]}},
             static_cast<double>(o.latency_sum_us) / 1e6);
    w.sample("panal_request_duration_seconds_count", {{"op", metrics::kOpNames[op]}}, static_cast<double>(seen));
  }
  w.family("panal_request_duration_quantile_seconds", "gauge",
           "Latency quantiles since the node started, from buckets 4 per power of two (at most 25% high).");
  for (unsigned op = 1; op < metrics::kOps; ++op) {
    for (const auto& [q, label] : {std::pair{0.5, "0.5"}, std::pair{0.99, "0.99"}, std::pair{0.999, "0.999"}}) {
      w.sample("panal_request_duration_quantile_seconds", {{"op", metrics::kOpNames[op]}, {"quantile", label}},
               static_cast<double>(t.ops[op].quantile_us(q)) / 1e6);
    }
  }
}

struct data_row {
  std::string db, pid;
  db::stats_reply s;
};

void data_processes(writer& w, const std::vector<data_row>& rows) {
  struct gauge {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const db::stats_reply&);
  };
  static const gauge gauges[] = {
      {"panal_data_keys", "gauge", "Live keys a data process holds, replicas included.",
       [](const db::stats_reply& s) { return double(s.keys); }},
      {"panal_data_keys_primary", "gauge", "Live keys of the slots it serves as primary (sum: the database's keys).",
       [](const db::stats_reply& s) { return double(s.keys_primary); }},
      {"panal_data_entries", "gauge", "Entries: keys and tombstones, replicas included.",
       [](const db::stats_reply& s) { return double(s.entries); }},
      {"panal_data_tombstones", "gauge", "Tombstones (removed keys kept until every holder has them).",
       [](const db::stats_reply& s) { return double(s.tombstones); }},
      {"panal_data_memory_bytes", "gauge", "Bytes its table accounts for (keys, values, entry overhead).",
       [](const db::stats_reply& s) { return double(s.memory); }},
      {"panal_data_map_epoch", "gauge", "The slot map epoch it holds.",
       [](const db::stats_reply& s) { return double(s.epoch); }},
      {"panal_data_transfer_rate_bytes", "gauge", "Bytes/s received by fills and syncs, last second.",
       [](const db::stats_reply& s) { return s.rate; }},
  };
  for (const auto& g : gauges) {
    w.family(g.name, g.type, g.help);
    for (const auto& r : rows) w.sample(g.name, {{"db", r.db}, {"pid", r.pid}}, g.get(r.s));
  }
  w.family("panal_data_slots", "gauge", "Slots a data process serves as primary, holds (primary included), fills.");
  for (const auto& r : rows) {
    w.sample("panal_data_slots", {{"db", r.db}, {"pid", r.pid}, {"role", "primary"}}, r.s.slots_primary);
    w.sample("panal_data_slots", {{"db", r.db}, {"pid", r.pid}, {"role", "held"}}, r.s.slots_held);
    w.sample("panal_data_slots", {{"db", r.db}, {"pid", r.pid}, {"role", "filling"}}, r.s.slots_filling);
  }
  w.family("panal_data_state", "gauge", "1 for the state a data process is in (serving, filling, syncing, draining, waiting).");
  for (const auto& r : rows) w.sample("panal_data_state", {{"db", r.db}, {"pid", r.pid}, {"state", r.s.state}}, 1);
  w.family("panal_data_moved_keys_total", "counter", "Keys moved by fills and syncs, into and out of a data process.");
  for (const auto& r : rows) {
    w.sample("panal_data_moved_keys_total", {{"db", r.db}, {"pid", r.pid}, {"direction", "in"}}, double(r.s.keys_in));
    w.sample("panal_data_moved_keys_total", {{"db", r.db}, {"pid", r.pid}, {"direction", "out"}}, double(r.s.keys_out));
  }
  w.family("panal_data_moved_bytes_total", "counter", "Bytes moved by fills and syncs, into and out of a data process.");
  for (const auto& r : rows) {
    w.sample("panal_data_moved_bytes_total", {{"db", r.db}, {"pid", r.pid}, {"direction", "in"}}, double(r.s.bytes_in));
    w.sample("panal_data_moved_bytes_total", {{"db", r.db}, {"pid", r.pid}, {"direction", "out"}},
             double(r.s.bytes_out));
  }
}

// Restarts of every child, by its supervisor's path from the root.
void restarts(writer& w, runtime& rt, const pid& root) {
  w.family("panal_child_restarts_total", "counter",
           "Times a supervisor restarted a child (the supervisor's path from the node's root, the child's id).");
  std::vector<std::string> path{"node"};  // path[d - 1]: the supervisor of the rows at depth d
  for (const auto& r : supervisor::walk_tree(rt, root, std::chrono::seconds(2))) {
    path.resize(r.depth);
    if (!r.error.empty()) continue;
    std::string sup = path[0];
    for (std::size_t d = 1; d < path.size(); ++d) sup += "/" + path[d];
    w.sample("panal_child_restarts_total", {{"supervisor", sup}, {"child", r.child.id}}, r.child.restarts);
    path.push_back(r.child.id);
  }
}

}  // namespace

std::string render_metrics(const metrics_sources& s) {
  writer w;
  w.family("panal_info", "gauge", "This node's name and panal's version.");
  w.sample("panal_info", {{"node", s.node}, {"version", PANAL_VERSION}}, 1);

  requests(w, s.requests.read());

  // This node's data processes, every database.
  std::vector<data_row> rows;
  for (const auto& g : s.groups.which_groups()) {
    const std::string db = db::database_of(g, "data");
    if (db.empty()) continue;
    for (const pid& p : s.groups.members(g)) {
      if (!s.rt.is_local(p)) continue;
      auto r = tp::call(p, db::stats_request{}, std::chrono::seconds(2));
      if (!r || !r->is<db::stats_reply>()) continue;  // it ended meanwhile
      rows.push_back({db, to_string(p), r->get<db::stats_reply>()});
    }
  }
  data_processes(w, rows);

  restarts(w, s.rt, s.root);

  w.family("panal_connected_nodes", "gauge", "Nodes this node has a connection to.");
  w.sample("panal_connected_nodes", {}, s.dist ? static_cast<double>(s.dist->nodes().size()) : 0.0);
  w.family("panal_client_sessions", "gauge", "TCP client sessions open on this node.");
  w.sample("panal_client_sessions", {}, s.client_sessions.load(std::memory_order_relaxed));

  auto procs = s.rt.processes();
  w.family("panal_processes", "gauge", "Live processes on this node.");
  w.sample("panal_processes", {}, static_cast<double>(procs.size()));
  std::sort(procs.begin(), procs.end(), [](const process_info& a, const process_info& b) {
    return a.mailbox > b.mailbox;
  });
  w.family("panal_mailbox_messages", "gauge",
           "Messages waiting in the longest mailboxes (at most 10 processes, those with any waiting).");
  for (std::size_t i = 0; i < procs.size() && i < kReportedMailboxes && procs[i].mailbox > 0; ++i) {
    w.sample("panal_mailbox_messages", {{"pid", to_string(procs[i].self)}, {"name", procs[i].name}},
             static_cast<double>(procs[i].mailbox));
  }

  const auto loads = s.rt.thread_loads();
  w.family("panal_scheduler_busy_seconds_total", "counter",
           "Time a scheduler thread spent running processes and I/O (not waiting for work).");
  for (std::size_t i = 0; i < loads.size(); ++i) {
    w.sample("panal_scheduler_busy_seconds_total", {{"thread", std::to_string(i)}},
             static_cast<double>(loads[i].busy_ns) / 1e9);
  }
  w.family("panal_scheduler_idle_seconds_total", "counter",
           "Time a scheduler thread spent waiting for work (spinning, then asleep).");
  for (std::size_t i = 0; i < loads.size(); ++i) {
    w.sample("panal_scheduler_idle_seconds_total", {{"thread", std::to_string(i)}},
             static_cast<double>(loads[i].idle_ns) / 1e9);
  }
  return w.take();
}

}  // namespace panal
