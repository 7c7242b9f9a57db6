// The shared secret of a cluster, and proofs of holding it.
//
// Promise: a node proves it holds the cookie without sending it: it answers
// the peer's random challenge with HMAC-SHA256(cookie, "panal-dist-v1" ||
// challenge || its own name), checked in constant time. A cookie file that
// other users could read is refused.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "dist/protocol.h"
#include "util/error.h"

namespace panal::dist {

challenge random_challenge();
digest prove(std::string_view cookie, const challenge& nonce, std::string_view prover_name);
bool verify(std::string_view cookie, const challenge& nonce, std::string_view prover_name, const digest& mac);

// Reads a cookie file (surrounding whitespace trimmed). Refused when empty,
// missing, or readable/writable by group or others (chmod 600 it).
result<std::string> read_cookie_file(const std::string& path);

}  // namespace panal::dist
