// Forward declarations of the runtime, so headers that only pass these types
// around need not include the heavy ones (asio, Boost.Fiber).
#pragma once

namespace panal {
struct pid;
struct ref;
struct exit_reason;
class message;
class runtime;
class inbox;
struct spawn_options;
struct runtime_options;
namespace detail {
class process;
class scheduler;
struct signal;
}  // namespace detail
}  // namespace panal
