#include "util/error.h"

namespace panal {

const char* to_string(errc c) {
  switch (c) {
    case errc::ok: return "ok";
    case errc::timeout: return "timeout";
    case errc::noproc: return "noproc";
    case errc::name_taken: return "name_taken";
    case errc::not_running: return "not_running";
    case errc::bad_argument: return "bad_argument";
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::start_failed: return "start_failed";
    case errc::malformed: return "malformed";
    case errc::unauthorized: return "unauthorized";
    case errc::connection_lost: return "connection_lost";
    case errc::key_too_large: return "key_too_large";
    case errc::value_too_large: return "value_too_large";
    case errc::too_many_keys: return "too_many_keys";
    case errc::out_of_memory: return "out_of_memory";
    case errc::no_master: return "no_master";
    case errc::no_data: return "no_data";
    case errc::unknown_db: return "unknown_db";
    case errc::moved: return "moved";
    case errc::unavailable: return "unavailable";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, const error& e) {
  return os << to_string(e.code) << ": " << e.message;
}

}  // namespace panal
