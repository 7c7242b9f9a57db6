#include "runtime/exit_reason.h"

namespace panal {

const char* to_string(exit_reason::kind k) {
  switch (k) {
    case exit_reason::kind::normal: return "normal";
    case exit_reason::kind::shutdown: return "shutdown";
    case exit_reason::kind::kill: return "kill";
    case exit_reason::kind::killed: return "killed";
    case exit_reason::kind::noproc: return "noproc";
    case exit_reason::kind::noconnection: return "noconnection";
    case exit_reason::kind::error: return "error";
  }
  return "?";
}

std::string to_string(const exit_reason& r) {
  std::string s = to_string(r.what);
  if (!r.detail.empty()) s += ": " + r.detail;
  return s;
}

std::ostream& operator<<(std::ostream& os, const exit_reason& r) { return os << to_string(r); }

}  // namespace panal
