// Unpacking msgpack from the network, safely.
//
// Promise: unpack() first validates the bytes (check_msgpack: sizes must fit
// the data, depth and element counts are bounded), then unpacks with an
// explicit msgpack::unpack_limit. Malformed input is an errc::malformed
// error, never an exception or a large allocation.
//
// This header includes msgpack-c: include it only in .cc files that decode.
#pragma once

#include <msgpack.hpp>
#include <string_view>

#include "util/error.h"
#include "wire/msgpack_check.h"

namespace panal::wire {

// The whole of `bytes` must be exactly one msgpack value.
result<msgpack::object_handle> unpack(std::string_view bytes, const msgpack_limits& limits = {});

}  // namespace panal::wire
