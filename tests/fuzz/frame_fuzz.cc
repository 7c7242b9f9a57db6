// libFuzzer target: arbitrary bytes from a peer through the frame reader and
// the frame decoders (node protocol and client protocol). Nothing may crash,
// hang, leak or allocate without bound.
//
//   make fuzz            (clang++ -fsanitize=fuzzer,address,undefined)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "db/client_protocol.h"
#include "dist/protocol.h"
#include "node/http_request.h"
#include "runtime/process.h"
#include "wire/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The operators' HTTP server reads the same untrusted bytes as a request head.
  (void)panal::http::parse_request_line(std::string_view(reinterpret_cast<const char*>(data), size));
  panal::wire::frame_reader frames(1u << 20);
  // Feed in two pieces, as a socket might deliver them.
  const std::size_t half = size / 2;
  frames.feed(std::string_view(reinterpret_cast<const char*>(data), half));
  for (int pass = 0; pass < 2; ++pass) {
    for (;;) {
      auto f = frames.next();
      if (!f || !*f) break;
      auto d = panal::dist::decode(**f);
      if (d && d->sig) {
        (void)d->sig->payload.empty();
      }
      (void)panal::dist::peek_kind(**f);
      (void)panal::dist::decode_handshake(**f);  // what arrives before the cookie is proved
      (void)panal::db::client_protocol::decode(**f);  // the same bytes as a client would send them
      (void)panal::db::client_protocol::decode_request(**f);  // and read in place
      (void)panal::db::client_protocol::decode_response(**f);  // as a client reads answers
      (void)panal::db::client_protocol::decode_routes(**f);
      (void)panal::db::client_protocol::decode_route_request(**f);
      (void)panal::db::client_protocol::kind_of(**f);
    }
    if (pass == 0) frames.feed(std::string_view(reinterpret_cast<const char*>(data) + half, size - half));
  }
  return 0;
}
