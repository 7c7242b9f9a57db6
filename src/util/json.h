// A minimal JSON writer for the node's views (no parser: panal reads no JSON).
//
// Promise: the output is valid JSON (RFC 8259) when the calls nest
// properly; strings are escaped, including control characters and bytes
// that are not UTF-8 (each becomes U+FFFD), so any key or name is safe.
//
// Thread-safety: a value; one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace panal::json {

class writer {
 public:
  writer& begin_object();
  writer& end_object();
  writer& begin_array();
  writer& end_array();
  writer& key(std::string_view k);  // inside an object, before its value
  writer& value(std::string_view s);
  writer& value(const char* s) { return value(std::string_view(s)); }
  writer& value(const std::string& s) { return value(std::string_view(s)); }
  writer& value(std::uint64_t n);
  writer& value(std::int64_t n);
  writer& value(std::uint32_t n) { return value(std::uint64_t{n}); }
  writer& value(std::int32_t n) { return value(std::int64_t{n}); }
  writer& value(double d);
  writer& value(bool b);
  writer& null();
  template <class T>
  writer& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  std::string take() { return std::move(out_); }

 private:
  void separate();
  std::string out_;
  bool first_ = true;  // no value yet at this level
  bool after_key_ = false;
};

}  // namespace panal::json
