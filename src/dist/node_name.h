// Node names: "name@host:port", e.g. "n1@127.0.0.1:7001".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.h"

namespace panal::dist {

struct node_address {
  std::string name;  // the part before '@'
  std::string host;
  std::uint16_t port = 0;
};

result<node_address> parse_node_name(std::string_view full);

}  // namespace panal::dist
