// The request line of an HTTP/1.x request head, parsed without trusting it
// (the operators' HTTP server; fuzzed with the wire decoders).
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

#include "util/error.h"

namespace panal::http {

struct request_line {
  std::string method;
  std::string path;  // the target without its query string
};

// `head`: the bytes received, the first line ending in CRLF (or the whole
// of it). bad_argument unless it reads METHOD SP TARGET SP HTTP/...
result<request_line> parse_request_line(std::string_view head);

}  // namespace panal::http
