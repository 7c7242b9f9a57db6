#include "util/json.h"

#include <cmath>
#include <cstdio>

namespace panal::json {

void writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_) out_ += ',';
  first_ = false;
}

writer& writer::begin_object() {
  separate();
  out_ += '{';
  first_ = true;
  return *this;
}
writer& writer::end_object() {
  out_ += '}';
  first_ = false;
  return *this;
}
writer& writer::begin_array() {
  separate();
  out_ += '[';
  first_ = true;
  return *this;
}
writer& writer::end_array() {
  out_ += ']';
  first_ = false;
  return *this;
}

writer& writer::key(std::string_view k) {
  value(k);
  out_ += ':';
  after_key_ = true;
  return *this;
}

writer& writer::value(std::string_view s) {
  separate();
  out_ += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out_ += buf;
      ++i;
    } else if (c < 0x80) {
      out_ += static_cast<char>(c);
      ++i;
    } else {
      // A well-formed UTF-8 sequence is copied; anything else is U+FFFD.
      std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
      bool ok = len != 0 && i + len <= s.size() && c >= 0xC2 && c <= 0xF4;
      for (std::size_t j = 1; ok && j < len; ++j) ok = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
      if (ok) {
        out_.append(s.data() + i, len);
        i += len;
      } else {
        out_ += "\xEF\xBF\xBD";
        ++i;
      }
    }
  }
  out_ += '"';
  return *this;
}

writer& writer::value(std::uint64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}
writer& writer::value(std::int64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}
writer& writer::value(double d) {
  separate();
  if (!std::isfinite(d)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  out_ += buf;
  return *this;
}
writer& writer::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}
writer& writer::null() {
  separate();
  out_ += "null";
  return *this;
}

}  // namespace panal::json
