// A validating pre-pass over msgpack bytes from the network.
//
// Promise: check() walks one msgpack value without allocating (beyond a
// small stack of depth `max_depth`) and accepts it only if it is complete,
// well-formed, nested at most `max_depth` deep, at most `max_values`
// values in all, and every declared
// array/map/str/bin/ext size fits in the bytes that actually follow. After a
// successful check, unpacking allocates at most a small multiple of the
// input size: a few bytes can no longer claim a billion elements.
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <string_view>

#include "util/error.h"

namespace panal::wire {

struct msgpack_limits {
  std::size_t max_depth = 32;
  std::size_t max_elements = 1u << 20;  // per array or map
  // Values in all (each nil, int, str, array... counts one): what a tree
  // of them costs is about 16 bytes each, so this bounds a decoded frame's
  // tree (128 MiB) whatever its shape; a 64 MiB frame of 1-byte values
  // would otherwise expand to 1 GiB.
  std::size_t max_values = 1u << 23;
};

// On success returns the number of bytes the value occupies (trailing bytes
// are allowed and not read).
result<std::size_t> check_msgpack(std::string_view bytes, const msgpack_limits& limits = {});

}  // namespace panal::wire
