// The node-to-node protocol: what each frame holds (see docs/protocol.md).
//
// Every frame payload is one msgpack array whose first element is the kind.
// Encoders return whole frames (length prefix included); decode() turns a
// payload into a typed frame or an errc::malformed error, never throwing.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <memory>
#include <vector>

#include "runtime/message.h"
#include "runtime/pid.h"
#include "util/error.h"

namespace panal::detail {
struct signal;
}

namespace panal::dist {

// 2: proofs bind the whole transcript, and the accepting side proves last.
inline constexpr std::uint32_t protocol_version = 2;
using challenge = std::array<unsigned char, 32>;
using digest = std::array<unsigned char, 32>;

enum class frame_kind : std::uint8_t {
  hello = 1,       // [1, version, node name, incarnation, challenge]
  proof = 2,       // [2, hmac]
  refused = 3,     // [3, reason]
  tick = 4,        // [4]
  signal = 5,      // [5, signal kind, from, to, tag, payload]
  send_named = 6,  // [6, from, registered name, message]
  peers = 7,       // [7, [node name, ...]]
};

struct hello_frame {
  std::uint32_t version = protocol_version;
  std::string name;
  std::uint32_t incarnation = 0;
  challenge nonce{};
};
struct proof_frame {
  digest mac{};
};
struct refused_frame {
  std::string reason;
};
struct tick_frame {};
struct send_named_frame {
  pid from;
  std::string name;
  message body;
};
struct peers_frame {
  std::vector<std::string> nodes;
};

std::string encode_hello(const hello_frame& f);
std::string encode_proof(const proof_frame& f);
std::string encode_refused(std::string_view reason);
std::string encode_tick();
std::string encode_peers(const std::vector<std::string>& nodes);
// Fails (nothing encoded) if the signal's message type is not registered
// for distribution (see codec.h).
result<std::string> encode_signal(const detail::signal& s);
result<std::string> encode_send_named(const pid& from, std::string_view name, const message& body);

// A decoded frame. signal frames come back as a detail::signal.
struct decoded {
  frame_kind kind;
  hello_frame hello;
  proof_frame proof;
  refused_frame refused;
  std::unique_ptr<detail::signal> sig;
  send_named_frame named;
  peers_frame peers;
  // Set when a signal or send_named frame carried a message of a type this
  // node does not know: the frame is well-formed, its message is dropped.
  std::string dropped;
};

result<decoded> decode(std::string_view payload);
// Before the handshake completes: only hello, proof and refused frames are
// decoded; any other kind is refused without parsing the rest.
result<decoded> decode_handshake(std::string_view payload);

// The kind of a frame (its first array element), validated but not decoded:
// how an incoming connection is told apart as a node or a client.
result<int> peek_kind(std::string_view payload);
// Kinds from this value up belong to the client protocol (db/session.h).
inline constexpr int first_client_kind = 64;

}  // namespace panal::dist
