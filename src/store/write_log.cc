#include "store/write_log.h"

#include <algorithm>

namespace panal::store {

void write_log::add(std::uint64_t client, const record& r, std::uint64_t floor, clock::time_point now) {
  if (client == 0) return;
  per_client& c = clients_[client];
  c.last_seen = now;
  auto& v = c.records;
  // Answered writes are never sent again: drop them from the front.
  while (c.head < v.size() && v[c.head].seq < floor) ++c.head;
  if (c.head >= v.size() / 2 && c.head > 0) {
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(c.head));
    c.head = 0;
  }
  if (r.seq < floor) return;
  // Sequences mostly arrive in order: append, or insert near the end.
  auto pos = v.end();
  while (pos != v.begin() + static_cast<std::ptrdiff_t>(c.head) && (pos - 1)->seq > r.seq) --pos;
  if (pos != v.begin() + static_cast<std::ptrdiff_t>(c.head) && (pos - 1)->seq == r.seq) {
    *(pos - 1) = r;
  } else {
    v.insert(pos, r);
  }
  if (v.size() - c.head > per_client_) ++c.head;  // the oldest goes
}

std::optional<write_log::record> write_log::find(std::uint64_t client, std::uint64_t seq) const {
  auto it = clients_.find(client);
  if (it == clients_.end()) return std::nullopt;
  const auto& v = it->second.records;
  auto first = v.begin() + static_cast<std::ptrdiff_t>(it->second.head);
  auto pos = std::lower_bound(first, v.end(), seq, [](const record& r, std::uint64_t s) { return r.seq < s; });
  if (pos == v.end() || pos->seq != seq) return std::nullopt;
  return *pos;
}

void write_log::for_slot(std::uint32_t slot, function_ref<void(std::uint64_t, const record&)> fn) const {
  for (const auto& [client, c] : clients_) {
    for (std::size_t i = c.head; i < c.records.size(); ++i) {
      if (c.records[i].slot == slot) fn(client, c.records[i]);
    }
  }
}

void write_log::for_slots(function_ref<bool(std::uint32_t)> wanted,
                          function_ref<void(std::uint64_t, const record&)> fn) const {
  for (const auto& [client, c] : clients_) {
    for (std::size_t i = c.head; i < c.records.size(); ++i) {
      if (wanted(c.records[i].slot)) fn(client, c.records[i]);
    }
  }
}

void write_log::erase_slots(function_ref<bool(std::uint32_t)> dropped) {
  for (auto& [client, c] : clients_) {
    auto first = c.records.begin() + static_cast<std::ptrdiff_t>(c.head);
    c.records.erase(std::remove_if(first, c.records.end(), [&](const record& r) { return dropped(r.slot); }),
                    c.records.end());
  }
}

void write_log::expire(clock::time_point now) {
  std::erase_if(clients_, [&](const auto& kv) { return now - kv.second.last_seen > idle_limit_; });
}

std::size_t write_log::records() const {
  std::size_t n = 0;
  for (const auto& [client, c] : clients_) n += c.records.size() - c.head;
  return n;
}

}  // namespace panal::store
