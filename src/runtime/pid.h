// Process identifiers and references.
//
// Promise: a pid names one process for all time: {node, id, incarnation}
// is never reused, so a message to a dead process's pid never reaches a
// newer process. `node` is an index into a process-wide table of interned
// node names (see node_name()), which keeps pids 16 bytes and cheap to copy
// and compare. `incarnation` tells apart two runs of a node with one name.
//
// Thread-safety: pid and ref are plain values. node_index()/node_name() may be
// called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace panal {

// Interns `name` and returns its stable index (the same for the life of the
// OS process). Index 0 is the anonymous node "nonode@nohost".
std::uint32_t node_index(std::string_view name);
std::string node_name(std::uint32_t index);

struct pid {
  std::uint32_t node = 0;
  std::uint32_t incarnation = 0;
  std::uint64_t id = 0;  // 0: the null pid

  explicit operator bool() const { return id != 0; }
  friend bool operator==(const pid&, const pid&) = default;
  friend auto operator<=>(const pid&, const pid&) = default;
};

// A unique reference (monitor, timer or call id); same uniqueness as pid.
struct ref {
  std::uint32_t node = 0;
  std::uint32_t incarnation = 0;
  std::uint64_t id = 0;

  explicit operator bool() const { return id != 0; }
  friend bool operator==(const ref&, const ref&) = default;
  friend auto operator<=>(const ref&, const ref&) = default;
};

// "<node.id.incarnation>" in the style of Erlang, e.g. "<n1@127.0.0.1:7001.4097.7>".
std::string to_string(const pid& p);
std::string to_string(const ref& r);
std::ostream& operator<<(std::ostream& os, const pid& p);
std::ostream& operator<<(std::ostream& os, const ref& r);

}  // namespace panal

template <>
struct std::hash<panal::pid> {
  std::size_t operator()(const panal::pid& p) const noexcept {
    return std::hash<std::uint64_t>{}(p.id ^ (std::uint64_t{p.node} << 48) ^ (std::uint64_t{p.incarnation} << 32));
  }
};
template <>
struct std::hash<panal::ref> {
  std::size_t operator()(const panal::ref& r) const noexcept {
    return std::hash<std::uint64_t>{}(r.id ^ (std::uint64_t{r.node} << 48) ^ (std::uint64_t{r.incarnation} << 32));
  }
};
