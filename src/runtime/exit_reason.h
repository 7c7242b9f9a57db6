// Why a process ended; carried by exit signals and DOWN messages.
//
// Semantics follow Erlang: `normal` is not an error and does not take linked
// processes down; `kill` cannot be trapped and arrives at links as `killed`;
// `noproc` answers a link or monitor on a process that does not exist;
// `noconnection` is delivered when the process's node is lost; `error`
// carries the text of an uncaught exception; `shutdown` is how supervisors
// stop their children (detail may say more, e.g. "reached_max_restart_intensity").
//
// Thread-safety: a plain value.
#pragma once

#include <ostream>
#include <string>

namespace panal {

struct exit_reason {
  enum class kind : unsigned char { normal, shutdown, kill, killed, noproc, noconnection, error };

  kind what = kind::normal;
  std::string detail;

  static exit_reason normal() { return {}; }
  static exit_reason shutdown(std::string d = {}) { return {kind::shutdown, std::move(d)}; }
  static exit_reason kill() { return {kind::kill, {}}; }
  static exit_reason killed() { return {kind::killed, {}}; }
  static exit_reason noproc() { return {kind::noproc, {}}; }
  static exit_reason noconnection() { return {kind::noconnection, {}}; }
  static exit_reason error(std::string d) { return {kind::error, std::move(d)}; }

  bool is_normal() const { return what == kind::normal; }
  // OTP's rule for transient children: normal and shutdown are not failures.
  bool is_failure() const { return what != kind::normal && what != kind::shutdown; }

  friend bool operator==(const exit_reason&, const exit_reason&) = default;
};

const char* to_string(exit_reason::kind k);
std::string to_string(const exit_reason& r);  // "normal", "error: boom", "shutdown: ..."
std::ostream& operator<<(std::ostream& os, const exit_reason& r);

}  // namespace panal
