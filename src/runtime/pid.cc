#include "runtime/pid.h"

#include <deque>
#include <mutex>
#include <unordered_map>

namespace panal {
namespace {

struct node_table {
  std::mutex mutex;
  std::deque<std::string> names{"nonode@nohost"};  // deque: references stay valid
  std::unordered_map<std::string_view, std::uint32_t> index{{names.front(), 0}};
};

node_table& table() {
  static node_table* t = new node_table;  // never destroyed: pids may be printed at exit
  return *t;
}

}  // namespace

std::uint32_t node_index(std::string_view name) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  if (auto it = t.index.find(name); it != t.index.end()) return it->second;
  t.names.emplace_back(name);
  auto idx = static_cast<std::uint32_t>(t.names.size() - 1);
  t.index.emplace(t.names.back(), idx);
  return idx;
}

std::string node_name(std::uint32_t index) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  return index < t.names.size() ? t.names[index] : "?";
}

std::string to_string(const pid& p) {
  return "<" + node_name(p.node) + "." + std::to_string(p.id) + "." + std::to_string(p.incarnation) + ">";
}
std::string to_string(const ref& r) {
  return "#Ref<" + node_name(r.node) + "." + std::to_string(r.id) + "." + std::to_string(r.incarnation) + ">";
}
std::ostream& operator<<(std::ostream& os, const pid& p) { return os << to_string(p); }
std::ostream& operator<<(std::ostream& os, const ref& r) { return os << to_string(r); }

}  // namespace panal
