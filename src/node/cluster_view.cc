#include "node/cluster_view.h"

#include <algorithm>
#include <chrono>

#include "db/messages.h"
#include "node/node.h"
#include "util/json.h"

namespace panal {

namespace {

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
    auto tree = n.supervision_tree(name, timeout);
    if (!tree) {
      w.field("error", tree.err().message);
    } else {
      w.key("tree").begin_array();
      for (const auto& e : *tree) {
        if (!e.error.empty()) continue;  // a supervisor that did not answer: its children are not known
        w.begin_object().field("depth", e.depth).field("id", e.id).field("supervisor", e.supervisor);
        w.field("restarts", e.restarts).key("pid");
        if (e.pid.empty()) {
          w.null();
        } else {
          w.value(e.pid);
        }
        w.end_object();
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();

  w.key("databases").begin_array();
  for (const auto& db : n.databases()) {
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
