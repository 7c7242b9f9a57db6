// Logger with levels, shared by every layer.
//
// Promise: each call writes one whole line (timestamp, level, component,
// text) to the sink; lines from different threads never interleave. The
// level check is a relaxed atomic load, so a disabled level costs one
// branch and formats nothing.
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace panal::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

// Lines below `l` are dropped. The initial level comes from the environment
// variable PANAL_LOG (debug|info|warn|error|off), default: info.
void set_level(level l);
level get_level();
bool enabled(level l);

// Parses "debug", "info", "warn", "error", "off"; false if unknown.
bool parse_level(std::string_view text, level& out);

// Replaces the sink (default: stderr). Passing nullptr restores stderr.
// Tests use this to read what was logged.
using sink = std::function<void(level, std::string_view component, std::string_view line)>;
void set_sink(sink s);

void write(level l, std::string_view component, std::string_view text);

template <class... Args>
void emit(level l, std::string_view component, const Args&... args) {
  if (!enabled(l)) return;
  std::ostringstream out;
  (out << ... << args);
  write(l, component, out.str());
}

template <class... Args> void debug(std::string_view c, const Args&... a) { emit(level::debug, c, a...); }
template <class... Args> void info(std::string_view c, const Args&... a) { emit(level::info, c, a...); }
template <class... Args> void warn(std::string_view c, const Args&... a) { emit(level::warn, c, a...); }
template <class... Args> void error(std::string_view c, const Args&... a) { emit(level::error, c, a...); }

}  // namespace panal::log
