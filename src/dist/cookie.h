// The shared secret of a cluster, and proofs of holding it.
//
// Promise: a node proves it holds the cookie without sending it. A proof is
// HMAC-SHA256 over the whole handshake transcript (both random challenges,
// both names, which side proves, and over TLS the TLS session's channel
// binding), so it verifies in no other handshake:
// it cannot be replayed, relayed between two connections, or reflected.
// Checked in constant time. A cookie file that other users could read is
// refused.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "dist/protocol.h"
#include "util/error.h"

namespace panal::dist {

challenge random_challenge();

// What both sides of one handshake have seen (docs/protocol.md 3.3).
struct transcript {
  challenge dialer_nonce{};
  challenge acceptor_nonce{};
  std::string_view dialer;    // node names
  std::string_view acceptor;
  // Over TLS, the session's channel binding (stream::channel_binding()):
  // then a proof holds only inside that one TLS session, so a relay that
  // ends TLS on both sides (a man in the middle) cannot pass it on.
  std::string_view channel;
};
enum class prover : std::uint8_t { dialer = 1, acceptor = 2 };

digest prove(std::string_view cookie, const transcript& t, prover who);
bool verify(std::string_view cookie, const transcript& t, prover who, const digest& mac);

// Reads a cookie file (surrounding whitespace trimmed). Refused when empty,
// missing, or readable/writable by group or others (chmod 600 it).
result<std::string> read_cookie_file(const std::string& path);

}  // namespace panal::dist
