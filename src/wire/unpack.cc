#include "wire/unpack.h"

namespace panal::wire {

result<msgpack::object_handle> unpack(std::string_view bytes, const msgpack_limits& limits) {
  auto checked = check_msgpack(bytes, limits);
  if (!checked) return checked.err();
  if (*checked != bytes.size()) return {errc::malformed, "trailing bytes after the msgpack value"};
  const msgpack::unpack_limit limit(limits.max_elements, limits.max_elements, bytes.size(), bytes.size(),
                                    bytes.size(), limits.max_depth);
  try {
    return msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr, limit);
  } catch (const std::exception& e) {
    return {errc::malformed, std::string("malformed msgpack: ") + e.what()};
  }
}

}  // namespace panal::wire
