// A reader of a few msgpack shapes straight from a byte buffer, without
// building an object tree: for the hot frames (client requests) whose shape
// is fixed. Strings and binaries come back as views into the buffer.
//
// Promise: never reads outside [data, data + size); any input that is not
// the asked shape sets failed() and makes every later read return a zero
// value. No allocation.
//
// Thread-safety: a value over a buffer the caller keeps alive.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace panal::wire {

class msgpack_reader {
 public:
  explicit msgpack_reader(std::string_view bytes)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool failed() const { return failed_; }
  bool at_end() const { return p_ == end_; }

  // An array header; its element count.
  std::uint32_t array() {
    if (!need(1)) return 0;
    const unsigned char t = *p_++;
    if ((t & 0xf0) == 0x90) return t & 0x0f;
    if (t == 0xdc) return static_cast<std::uint32_t>(big(2));
    if (t == 0xdd) return static_cast<std::uint32_t>(big(4));
    return fail();
  }

  // A non-negative integer (positive fixint or uint 8/16/32/64).
  std::uint64_t uint() {
    if (!need(1)) return 0;
    const unsigned char t = *p_++;
    if (t < 0x80) return t;
    switch (t) {
      case 0xcc: return big(1);
      case 0xcd: return big(2);
      case 0xce: return big(4);
      case 0xcf: return big(8);
      default: return fail();
    }
  }

  bool boolean() {
    if (!need(1)) return false;
    const unsigned char t = *p_++;
    if (t == 0xc2 || t == 0xc3) return t == 0xc3;
    return fail() != 0;
  }

  // A str, a bin or nil (nil: an empty view, *was_nil set).
  std::string_view bytes(bool* was_nil = nullptr) {
    if (was_nil != nullptr) *was_nil = false;
    if (!need(1)) return {};
    const unsigned char t = *p_++;
    std::uint64_t n;
    if (t == 0xc0) {
      if (was_nil != nullptr) *was_nil = true;
      return {};
    }
    if ((t & 0xe0) == 0xa0) n = t & 0x1f;
    else if (t == 0xd9 || t == 0xc4) n = big(1);
    else if (t == 0xda || t == 0xc5) n = big(2);
    else if (t == 0xdb || t == 0xc6) n = big(4);
    else return fail(), std::string_view{};
    if (failed_ || !need(n)) return {};
    const std::string_view out(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return out;
  }

 private:
  bool need(std::uint64_t n) {
    if (failed_ || static_cast<std::uint64_t>(end_ - p_) < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::uint64_t big(int n) {
    if (!need(static_cast<std::uint64_t>(n))) return 0;
    std::uint64_t x = 0;
    for (int i = 0; i < n; ++i) x = x << 8 | p_[i];
    p_ += n;
    return x;
  }
  std::uint64_t fail() {
    failed_ = true;
    return 0;
  }

  const unsigned char* p_;
  const unsigned char* end_;
  bool failed_ = false;
};

}  // namespace panal::wire
