// Helpers shared by the C++ tests.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace panal::test {

// Polls `pred` until it holds or `limit` passes; returns its last value.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

constexpr auto kWait = std::chrono::seconds(10);  // generous bound for "arrives"

}  // namespace panal::test
