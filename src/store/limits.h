// Per-database limits, set when the database's server starts and checked
// before anything is stored.
//
// Thread-safety: a value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/error.h"

namespace panal::store {

struct limits {
  std::size_t max_key_bytes = 1024;
  std::size_t max_value_bytes = 8u << 20;
  std::uint64_t max_keys = 0;    // per database; 0: unlimited
  std::size_t max_memory = 0;    // bytes per data process; 0: unlimited
};

result<void> check_key(const limits& l, std::string_view key);
result<void> check_value(const limits& l, std::string_view value);

}  // namespace panal::store
