#include "store/limits.h"

#include <string>

namespace panal::store {

result<void> check_key(const limits& l, std::string_view key) {
  if (key.empty()) return {errc::bad_argument, "a key must not be empty"};
  if (key.size() > l.max_key_bytes) {
    return {errc::key_too_large, "key of " + std::to_string(key.size()) + " bytes; this database allows " +
                                     std::to_string(l.max_key_bytes)};
  }
  return {};
}

result<void> check_value(const limits& l, std::string_view value) {
  if (value.size() > l.max_value_bytes) {
    return {errc::value_too_large, "value of " + std::to_string(value.size()) + " bytes; this database allows " +
                                       std::to_string(l.max_value_bytes)};
  }
  return {};
}

}  // namespace panal::store
