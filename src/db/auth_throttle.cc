#include "db/auth_throttle.h"

#include <algorithm>

namespace panal::db {

auth_throttle::entry& auth_throttle::find(const std::string& address, clock::time_point now) {
  if (auto it = by_address_.find(address); it != by_address_.end()) return it->second;
  if (by_address_.size() >= max_addresses_) {
    std::erase_if(by_address_, [&](const auto& kv) { return kv.second.next <= now; });
    if (by_address_.size() >= max_addresses_) return shared_;
  }
  return by_address_[address];
}

std::optional<auth_throttle::clock::time_point> auth_throttle::admit(const std::string& address,
                                                                      clock::time_point now) {
  std::lock_guard lock(mutex_);
  entry& e = find(address, now);
  if (!e.penalized || e.next <= now) return now;
  if (e.next - now > max_wait_) return std::nullopt;
  const clock::time_point turn = e.next;
  e.next += penalty_;  // the attempt after this one waits for its own turn
  return turn;
}

void auth_throttle::fail(const std::string& address, clock::time_point now) {
  std::lock_guard lock(mutex_);
  entry& e = find(address, now);
  e.penalized = true;
  e.next = std::max(e.next, now + penalty_);
}

std::size_t auth_throttle::addresses() const {
  std::lock_guard lock(mutex_);
  return by_address_.size();
}

}  // namespace panal::db
