#include "db/cluster_map.h"

#include "db/messages.h"

namespace panal::db {

namespace {

db_config to_wire(const settings& s) {
  return {s.slots, s.replicas, s.write_acks, s.max_key_bytes, s.max_value_bytes, s.max_keys, s.max_memory, s.lease_ms};
}

settings from_wire(const db_config& c) {
  return {c.slots, c.replicas, c.write_acks, c.max_key_bytes, c.max_value_bytes, c.max_keys, c.max_memory, c.lease_ms};
}

}  // namespace

map_update encode(const cluster_map& m) {
  map_update u;
  u.db = m.db;
  u.generation = m.generation;
  u.epoch = m.epoch();
  u.master = m.master;
  u.config = to_wire(m.settings);
  const auto& members = m.slots.members();
  for (std::size_t i = 0; i < members.size(); ++i) {
    u.members.push_back({members[i].id, i < m.pids.size() ? m.pids[i] : pid{}, members[i].eligible});
  }
  for (const store::slot_exception& e : m.slots.exceptions()) {
    wire_exception w;
    w.slot = e.slot;
    w.primary = e.primary;
    w.handover = e.handover;
    for (const store::holder& h : e.holders) w.holders.push_back({h.member, h.since, h.ready});
    u.exceptions.push_back(std::move(w));
  }
  return u;
}

map_ptr decode(const map_update& u, const cluster_map* like) {
  auto m = std::make_shared<cluster_map>();
  m->db = u.db;
  m->generation = u.generation;
  m->master = u.master;
  m->settings = from_wire(u.config);
  if (m->settings.slots == 0 || m->settings.slots > (1u << 20)) return nullptr;
  std::vector<store::map_member> members;
  for (const wire_member& w : u.members) members.push_back({w.id, w.eligible});
  std::vector<store::slot_exception> exceptions;
  for (const wire_exception& w : u.exceptions) {
    store::slot_exception e;
    e.slot = w.slot;
    e.primary = w.primary;
    e.handover = w.handover;
    for (const wire_holder& h : w.holders) e.holders.push_back({h.member, h.since, h.ready});
    exceptions.push_back(std::move(e));
  }
  m->slots = store::slot_map::build(m->settings.slots, m->settings.replicas, m->settings.write_acks, u.epoch,
                                    std::move(members), exceptions,
                                    like != nullptr && like->db == u.db ? &like->slots : nullptr);
  // Pids by the sorted member order the map uses.
  m->pids.resize(m->slots.members().size());
  for (const wire_member& w : u.members) {
    if (auto i = m->slots.index_of(w.id)) m->pids[*i] = w.who;
  }
  return m;
}

map_ptr routes::get(const std::string& db) const {
  std::lock_guard lock(mutex_);
  auto it = maps_.find(db);
  return it == maps_.end() ? nullptr : it->second;
}

bool routes::update(map_ptr m) {
  if (!m) return false;
  std::lock_guard lock(mutex_);
  auto& held = maps_[m->db];
  if (held && !m->newer_than(*held)) return false;
  held = std::move(m);
  version_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

std::vector<std::string> routes::databases() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (auto& [db, m] : maps_) out.push_back(db);
  return out;
}

}  // namespace panal::db
