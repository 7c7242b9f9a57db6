#include "node/cluster_view.h"

namespace panal {

// src/node/live_page.html, made a string literal by CMake.
const std::string& live_page() {
  static const std::string page =
#include "node/live_page.inc"
      ;
  return page;
}

}  // namespace panal
