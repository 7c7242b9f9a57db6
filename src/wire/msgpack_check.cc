#include "wire/msgpack_check.h"

#include <cstdint>
#include <vector>

namespace panal::wire {
namespace {

std::uint64_t be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

result<std::size_t> check_msgpack(std::string_view bytes, const msgpack_limits& limits) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t size = bytes.size();
  std::size_t pos = 0;
  // Each entry: values still to read in an open container.
  std::vector<std::uint64_t> pending;
  pending.reserve(8);
  std::uint64_t top_level = 1;
  std::size_t values = 0;

  auto fail = [&](const char* what) {
    return result<std::size_t>(errc::malformed, std::string("malformed msgpack at byte ") + std::to_string(pos) +
                                                    ": " + what);
  };

  while (true) {
    // Close finished containers.
    while (!pending.empty() && pending.back() == 0) pending.pop_back();
    std::uint64_t& left = pending.empty() ? top_level : pending.back();
    if (left == 0) break;  // the top-level value is complete
    --left;

    if (pos >= size) return fail("truncated");
    if (++values > limits.max_values) return fail("too many values");
    const unsigned char b = data[pos++];
    std::uint64_t skip = 0;       // payload bytes to skip
    std::uint64_t children = 0;   // nested values that follow
    int header = 0;               // length-field bytes
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      // positive/negative fixint, nil, false, true
    } else if ((b & 0xf0) == 0x80) {
      children = 2u * (b & 0x0f);  // fixmap
    } else if ((b & 0xf0) == 0x90) {
      children = b & 0x0f;  // fixarray
    } else if ((b & 0xe0) == 0xa0) {
      skip = b & 0x1f;  // fixstr
    } else {
      switch (b) {
        case 0xc4: header = 1; break;  // bin 8
        case 0xc5: header = 2; break;
        case 0xc6: header = 4; break;
        case 0xc7: header = 1; skip = 1; break;  // ext 8 (+ type byte)
        case 0xc8: header = 2; skip = 1; break;
        case 0xc9: header = 4; skip = 1; break;
        case 0xca: skip = 4; break;  // float 32
        case 0xcb: skip = 8; break;  // float 64
        case 0xcc: skip = 1; break;
        case 0xcd: skip = 2; break;
        case 0xce: skip = 4; break;
        case 0xcf: skip = 8; break;
        case 0xd0: skip = 1; break;
        case 0xd1: skip = 2; break;
        case 0xd2: skip = 4; break;
        case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;  // fixext 1 (+ type)
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xd9: header = 1; break;  // str 8
        case 0xda: header = 2; break;
        case 0xdb: header = 4; break;
        case 0xdc: header = -2; break;  // array 16
        case 0xdd: header = -4; break;  // array 32
        case 0xde: header = -102; break;  // map 16
        case 0xdf: header = -104; break;  // map 32
        default: return fail("reserved type byte 0xc1");
      }
    }
    if (header > 0) {
      if (size - pos < static_cast<std::size_t>(header)) return fail("truncated length");
      skip += be(data + pos, header);
      pos += static_cast<std::size_t>(header);
    } else if (header < 0) {
      const bool is_map = header < -100;
      const int n = is_map ? -header - 100 : -header;
      if (size - pos < static_cast<std::size_t>(n)) return fail("truncated length");
      const std::uint64_t count = be(data + pos, n);
      pos += static_cast<std::size_t>(n);
      if (count > limits.max_elements) return fail("too many elements");
      children = is_map ? 2 * count : count;
    }
    if (skip > size - pos) return fail("declared size exceeds the data");
    pos += static_cast<std::size_t>(skip);
    if (children > 0) {
      // Every element needs at least one byte: a count beyond the remaining
      // bytes is a lie, refused before anything is allocated for it.
      if (children > size - pos) return fail("declared element count exceeds the data");
      if (pending.size() + 1 > limits.max_depth) return fail("nested too deeply");
      pending.push_back(children);
    }
  }
  return pos;
}

}  // namespace panal::wire
