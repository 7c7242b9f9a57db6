#include "wire/frame.h"

#include <algorithm>
#include <cstring>

namespace panal::wire {

void write_frame_header(char* at, std::uint32_t size) {
  at[0] = static_cast<char>(size >> 24);
  at[1] = static_cast<char>(size >> 16);
  at[2] = static_cast<char>(size >> 8);
  at[3] = static_cast<char>(size);
}

void append_frame(std::string& out, std::string_view payload) {
  char header[frame_header_size];
  write_frame_header(header, static_cast<std::uint32_t>(payload.size()));
  out.append(header, frame_header_size);
  out.append(payload);
}

frame_reader::frame_reader(std::size_t max_frame) : max_frame_(max_frame) {}

char* frame_reader::prepare(std::size_t n) {
  if (begin_ > 0 && (begin_ == end_ || begin_ > buf_.size() / 2)) {
    // Move the unread tail to the front so the buffer does not creep.
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // After a large frame, give the memory back: one huge frame must not make
  // a connection hold a huge buffer for the rest of its life.
  constexpr std::size_t kKeep = 256 * 1024;
  const std::size_t wanted = end_ - begin_ + n;
  if (buf_.capacity() > kKeep && buf_.capacity() > 4 * wanted) {
    std::vector<char> smaller;
    smaller.reserve(std::max(wanted, kKeep));
    smaller.assign(buf_.begin() + static_cast<std::ptrdiff_t>(begin_), buf_.begin() + static_cast<std::ptrdiff_t>(end_));
    buf_.swap(smaller);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() < end_ + n) buf_.resize(end_ + n);
  return buf_.data() + end_;
}

void frame_reader::commit(std::size_t n) { end_ += n; }

void frame_reader::feed(std::string_view bytes) {
  if (bytes.empty()) return;  // data() may be null: memcpy from null is undefined even for 0 bytes
  std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
  commit(bytes.size());
}

result<std::optional<std::string_view>> frame_reader::next() {
  if (failed_) return {errc::malformed, "the connection sent a malformed frame earlier"};
  if (end_ - begin_ < frame_header_size) return std::optional<std::string_view>{};
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + begin_);
  const std::size_t size = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
  if (size > max_frame_) {
    failed_ = true;
    return {errc::malformed, "frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                                 std::to_string(max_frame_)};
  }
  if (end_ - begin_ < frame_header_size + size) return std::optional<std::string_view>{};
  std::string_view payload(buf_.data() + begin_ + frame_header_size, size);
  begin_ += frame_header_size + size;
  return std::optional<std::string_view>{payload};
}

}  // namespace panal::wire
