// Errors as values: a typed code plus a message for people.
//
// Every layer reports failure by returning result<T>; only the Python edge
// turns errors into exceptions (one exception class per code). Codes are
// stable: they cross the wire as integers.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

namespace panal {

enum class errc : std::uint16_t {
  ok = 0,
  timeout = 1,          // no answer in time
  noproc = 2,           // the process does not exist or died before answering
  name_taken = 3,       // register_name: another live process holds the name
  not_running = 4,      // the runtime is stopped or stopping
  bad_argument = 5,     // the caller passed something invalid
  not_found = 6,        // e.g. no child with that id
  already_exists = 7,   // e.g. a child with that id exists
  start_failed = 8,     // a child's start function failed
  malformed = 9,        // bytes from the network that are not a valid frame or message
  unauthorized = 10,    // wrong cookie, token or key
  connection_lost = 11, // the peer went away
  // The store's errors (they cross the client protocol as these numbers).
  key_too_large = 20,
  value_too_large = 21,
  too_many_keys = 22,
  out_of_memory = 23,
  no_master = 24,       // the database has no live server (retryable)
  no_data = 25,         // the database has no live data process (retryable)
  unknown_db = 26,
  moved = 27,           // the process is not (or not yet) the slot's serving primary: re-route and retry
  unavailable = 28,     // a write could not reach enough holders; it may have been stored (retryable: a
                        // retry with the same write id is not applied twice)
  // Also: `unauthorized` (10) answers a CLIENT_HELLO with a wrong key; `timeout`
  // (1) is a client's own verdict; `malformed` (9) closes the connection.
};

// Worth retrying after a moment: the cluster is changing, not the request.
inline bool retryable(errc c) {
  return c == errc::no_master || c == errc::no_data || c == errc::connection_lost || c == errc::noproc ||
         c == errc::moved || c == errc::unavailable;
}

const char* to_string(errc c);

struct error {
  errc code = errc::ok;
  std::string message;

  friend bool operator==(const error&, const error&) = default;
};

std::ostream& operator<<(std::ostream& os, const error& e);

// Either a T or an error. result<void> carries only success or an error.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit
  result(errc c, std::string msg) : v_(std::in_place_index<1>, error{c, std::move(msg)}) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const error& err() const { return std::get<1>(v_); }
  errc code() const { return ok() ? errc::ok : err().code; }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)) {}  // NOLINT: implicit
  result(errc c, std::string msg) : e_{c, std::move(msg)} {}

  bool ok() const { return e_.code == errc::ok; }
  explicit operator bool() const { return ok(); }
  const error& err() const { return e_; }
  errc code() const { return e_.code; }

 private:
  error e_;
};

}  // namespace panal
