#include "node/http_request.h"

namespace panal::http {

result<request_line> parse_request_line(std::string_view head) {
  const std::string_view line = head.substr(0, head.find("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? std::string_view::npos : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || line.substr(sp2 + 1, 5) != "HTTP/") {
    return {errc::bad_argument, "not an HTTP request line"};
  }
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  return request_line{std::string(line.substr(0, sp1)), std::string(path)};
}

}  // namespace panal::http
