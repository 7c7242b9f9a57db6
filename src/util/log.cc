#include "util/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace panal::log {
namespace {

level initial_level() {
  level l = level::info;
  if (const char* env = std::getenv("PANAL_LOG")) parse_level(env, l);
  return l;
}

std::atomic<int> g_level{static_cast<int>(initial_level())};
std::mutex g_sink_mutex;
sink g_sink;  // guarded by g_sink_mutex; empty means stderr

const char* level_name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
  }
  return "?";
}

}  // namespace

void set_level(level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
level get_level() { return static_cast<level>(g_level.load(std::memory_order_relaxed)); }
bool enabled(level l) {
  return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed) && l != level::off;
}

bool parse_level(std::string_view text, level& out) {
  for (level l : {level::debug, level::info, level::warn, level::error, level::off}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_sink(sink s) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(s);
}

void write(level l, std::string_view component, std::string_view text) {
  std::lock_guard lock(g_sink_mutex);
  if (g_sink) {
    g_sink(l, component, text);
    return;
  }
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  std::fprintf(stderr, "%s.%03lld %-5s [%.*s] %.*s\n", stamp, static_cast<long long>(ms), level_name(l),
               static_cast<int>(component.size()), component.data(), static_cast<int>(text.size()),
               text.data());
}

}  // namespace panal::log
