// Length-prefixed frames: a 4-byte big-endian payload length, then the payload.
//
// Promise: frame_reader never trusts its input. A declared length above the
// reader's maximum is an error as soon as its 4 bytes arrive (nothing is
// allocated for it); memory held is bounded by max_frame plus one read.
//
// Thread-safety: a reader belongs to one connection; not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace panal::wire {

inline constexpr std::size_t frame_header_size = 4;
inline constexpr std::size_t default_max_frame = 64u << 20;  // 64 MiB

// Appends the 4-byte length and the payload to `out`.
void append_frame(std::string& out, std::string_view payload);
// Writes a frame header for a payload of `size` bytes into 4 bytes at `at`.
void write_frame_header(char* at, std::uint32_t size);

class frame_reader {
 public:
  explicit frame_reader(std::size_t max_frame = default_max_frame);

  // Space to receive at least `n` more bytes into; then commit() what came.
  char* prepare(std::size_t n);
  void commit(std::size_t n);

  // Feeds bytes (tests and fuzzing; same as prepare + memcpy + commit).
  void feed(std::string_view bytes);

  // The next complete payload (valid until the next call), nothing if more
  // bytes are needed, or an error (frame too large) after which the reader
  // is unusable and the connection should close.
  result<std::optional<std::string_view>> next();

  std::size_t buffered() const { return end_ - begin_; }
  // Bytes the reader holds (after a large frame, given back on the next prepare()).
  std::size_t capacity() const { return buf_.capacity(); }
  // The bytes received but not yet returned as frames (to hand a stream over).
  std::string_view unread() const { return {buf_.data() + begin_, end_ - begin_}; }
  // Changes the limit for frames not yet returned (e.g. raised after a handshake).
  void set_max_frame(std::size_t max_frame) { max_frame_ = max_frame; }

 private:
  std::size_t max_frame_;
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool failed_ = false;
};

}  // namespace panal::wire
