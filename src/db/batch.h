// A batch of mixed operations (a pipeline), offered by both clients
// (panal::client and panal::remote_client; here in db/, below both).
//
// Promise: every operation gets its own result, in order. Operations on
// different keys run in parallel; two on the same key run in the order
// given (the batch is cut into waves at the second use of a key, and a wave
// starts when the one before it is answered), so `set k; get k` reads what
// it wrote, retries included.
//
// Thread-safety: plain values and a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/error.h"

namespace panal {

enum class batch_kind : std::uint8_t { get = 1, set = 2, remove = 3, exists = 4 };  // the client protocol's numbers

struct batch_op {
  batch_kind kind = batch_kind::get;
  std::string key;
  std::string value;  // set only
};

struct batch_result {
  errc code = errc::ok;
  std::string message;  // why, when code is not ok
  bool found = false;   // get, exists: the key has a value; remove: it had one
  std::string value;    // get, when found
};

// [begin, end) ranges of `ops` in which no key appears twice, in order.
std::vector<std::pair<std::size_t, std::size_t>> batch_waves(const std::vector<batch_op>& ops);

}  // namespace panal
