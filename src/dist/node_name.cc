#include "dist/node_name.h"

#include <cctype>
#include <charconv>

namespace panal::dist {

result<node_address> parse_node_name(std::string_view full) {
  auto bad = [&](const char* why) {
    return result<node_address>(errc::bad_argument, "bad node name '" + std::string(full) + "': " + why +
                                                        " (expected name@host:port, e.g. n1@127.0.0.1:7001)");
  };
  const auto at = full.find('@');
  const auto colon = full.rfind(':');
  if (at == std::string_view::npos || at == 0) return bad("no name before '@'");
  if (colon == std::string_view::npos || colon < at + 2) return bad("no host:port after '@'");
  node_address a;
  a.name = std::string(full.substr(0, at));
  a.host = std::string(full.substr(at + 1, colon - at - 1));
  const auto port_text = full.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return bad("the port must be a number from 1 to 65535");
  }
  for (char c : a.name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
      return bad("the name may hold letters, digits, '_', '-' and '.'");
    }
  }
  a.port = static_cast<std::uint16_t>(port);
  return a;
}

}  // namespace panal::dist
