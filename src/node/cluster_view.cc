#include "node/cluster_view.h"

#include <algorithm>
#include <chrono>

#include "db/messages.h"
#include "node/node.h"
#include "registry/pg.h"
#include "util/json.h"

namespace panal {

namespace {

// One line of node::supervision: "<indent>id[ (supervisor)] <pid>|not running, restarts N".
void tree_entry(json::writer& w, const std::string& line) {
  std::size_t indent = line.find_first_not_of(' ');
  if (indent == std::string::npos) return;
  std::string rest = line.substr(indent);
  std::uint64_t restarts = 0;
  if (auto r = rest.rfind(", restarts "); r != std::string::npos) {
    restarts = std::strtoull(rest.c_str() + r + 11, nullptr, 10);
    rest.resize(r);
  }
  std::string pid_text;
  if (rest.size() >= 12 && rest.compare(rest.size() - 12, 12, " not running") == 0) {
    rest.resize(rest.size() - 12);
  } else if (auto lt = rest.rfind(" <"); lt != std::string::npos) {
    pid_text = rest.substr(lt + 1);
    rest.resize(lt);
  }
  bool is_sup = false;
  if (rest.size() >= 13 && rest.compare(rest.size() - 13, 13, " (supervisor)") == 0) {
    is_sup = true;
    rest.resize(rest.size() - 13);
  }
  w.begin_object()
      .field("depth", static_cast<std::uint64_t>(indent / 2))
      .field("id", rest)
      .field("supervisor", is_sup)
      .field("restarts", restarts);
  w.key("pid");
  if (pid_text.empty()) {
    w.null();
  } else {
    w.value(pid_text);
  }
  w.end_object();
}

void pids(json::writer& w, std::string_view k, const std::vector<pid>& ps) {
  w.key(k).begin_array();
  for (const auto& p : ps) w.value(to_string(p));
  w.end_array();
}

}  // namespace

std::string cluster_json(node& n, const metrics::request_totals& requests, clock::duration timeout) {
  json::writer w;
  w.begin_object();
  w.field("node", n.name());
  w.field("time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());

  std::vector<std::string> names{n.name()};
  for (auto& other : n.nodes()) names.push_back(other);
  std::sort(names.begin() + 1, names.end());
  w.key("nodes").begin_array();
  for (const auto& name : names) {
    w.begin_object().field("name", name).field("self", name == n.name());
    auto tree = n.supervision(name, timeout);
    if (!tree) {
      w.field("error", tree.err().message);
    } else {
      w.key("tree").begin_array();
      for (std::size_t i = 1; i < tree->size(); ++i) tree_entry(w, (*tree)[i]);
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();

  std::vector<std::string> dbs;
  for (const auto& g : n.registry().which_groups()) {
    if (g.size() > 7 && g.compare(g.size() - 7, 7, "/server") == 0) dbs.push_back(g.substr(0, g.size() - 7));
  }
  std::sort(dbs.begin(), dbs.end());
  w.key("databases").begin_array();
  for (const auto& db : dbs) {
    const auto groups = n.groups(db);
    const auto master = n.master(db);
    w.begin_object().field("name", db);
    w.key("master");
    if (master) {
      w.value(to_string(*master));
    } else {
      w.null();
    }
    pids(w, "servers", groups.servers);
    pids(w, "clients", groups.clients);
    if (auto m = n.slot_map(db)) {
      w.key("map").begin_object();
      w.field("epoch", m->epoch).field("slots", m->slots).field("replicas", m->replicas);
      w.field("write_acks", m->write_acks).field("moving", m->moving);
      pids(w, "members", m->pids);
      w.key("cells").begin_array();
      for (auto c : m->sampled_primaries) w.value(c);
      w.end_array();
      w.end_object();
    }
    w.key("data").begin_array();
    for (const auto& s : n.stats(db)) {
      w.begin_object();
      w.field("pid", to_string(s.process)).field("node", node_name(s.process.node)).field("index", s.index);
      w.field("state", s.state).field("keys", s.keys).field("keys_primary", s.keys_primary);
      w.field("memory", s.memory).field("entries", s.entries).field("tombstones", s.tombstones);
      w.field("epoch", s.epoch).field("slots_primary", s.slots_primary).field("slots_held", s.slots_held);
      w.field("slots_filling", s.slots_filling).field("keys_in", s.keys_in).field("bytes_in", s.bytes_in);
      w.field("keys_out", s.keys_out).field("bytes_out", s.bytes_out).field("rate", s.rate);
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();

  w.key("requests").begin_object();
  for (unsigned op = 1; op < metrics::kOps; ++op) {
    const auto& o = requests.ops[op];
    const std::uint64_t total = o.total();
    w.key(metrics::kOpNames[op]).begin_object();
    w.field("count", total).field("errors", total - o.by_code[0]);
    w.field("p50_us", o.quantile_us(0.5)).field("p99_us", o.quantile_us(0.99));
    w.field("p999_us", o.quantile_us(0.999));
    w.end_object();
  }
  w.end_object();
  w.end_object();
  return w.take();
}

}  // namespace panal
