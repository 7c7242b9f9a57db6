// Internal: the queue shared between an inbox (OS thread side) and its
// process entry (scheduler side). Guarded by `mutex`.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include "runtime/runtime.h"

namespace panal {

struct inbox::state {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<message> queue;
  bool closed = false;  // the pid is dead: the runtime stopped or the inbox was closed
};

}  // namespace panal
