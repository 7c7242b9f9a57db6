#include "dist/protocol.h"

#include <cstring>

#include "dist/codec.h"
#include "runtime/process.h"
#include "wire/frame.h"
#include "wire/unpack.h"

namespace panal::dist {
namespace {

using detail::signal;

template <std::size_t N>
void pack_bin(packer& p, const std::array<unsigned char, N>& a) {
  p.pack_bin(N);
  p.pack_bin_body(reinterpret_cast<const char*>(a.data()), N);
}

template <std::size_t N>
std::array<unsigned char, N> as_bin(const msgpack::object& o) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != N) throw msgpack::type_error();
  std::array<unsigned char, N> a;
  std::memcpy(a.data(), o.via.bin.ptr, N);
  return a;
}

const msgpack::object& at(const msgpack::object& o, std::uint32_t i) {
  if (i >= o.via.array.size) throw msgpack::type_error();
  return o.via.array.ptr[i];
}

bool payload_is_reason(signal::kind k) {
  return k == signal::kind::exit || k == signal::kind::link_exit || k == signal::kind::down;
}

}  // namespace

std::string encode_hello(const hello_frame& f) {
  frame_builder b;
  b.pk.pack_array(5);
  b.pk.pack(static_cast<int>(frame_kind::hello));
  b.pk.pack(f.version);
  b.pk.pack(f.name);
  b.pk.pack(f.incarnation);
  pack_bin(b.pk, f.nonce);
  return b.finish();
}

std::string encode_proof(const proof_frame& f) {
  frame_builder b;
  b.pk.pack_array(2);
  b.pk.pack(static_cast<int>(frame_kind::proof));
  pack_bin(b.pk, f.mac);
  return b.finish();
}

std::string encode_refused(std::string_view reason) {
  frame_builder b;
  b.pk.pack_array(2);
  b.pk.pack(static_cast<int>(frame_kind::refused));
  b.pk.pack(reason);
  return b.finish();
}

std::string encode_tick() {
  frame_builder b;
  b.pk.pack_array(1);
  b.pk.pack(static_cast<int>(frame_kind::tick));
  return b.finish();
}

std::string encode_peers(const std::vector<std::string>& nodes) {
  frame_builder b;
  b.pk.pack_array(2);
  b.pk.pack(static_cast<int>(frame_kind::peers));
  b.pk.pack(nodes);
  return b.finish();
}

result<std::string> encode_signal(const signal& s) try {
  frame_builder b;
  b.pk.pack_array(6);
  b.pk.pack(static_cast<int>(frame_kind::signal));
  b.pk.pack(static_cast<int>(s.what));
  b.pk.pack(s.from);
  b.pk.pack(s.to);
  b.pk.pack(s.tag);
  if (payload_is_reason(s.what)) {
    const exit_reason* r = s.payload.get_if<exit_reason>();
    if (r == nullptr) return {errc::bad_argument, "signal without its exit reason"};
    b.pk.pack(*r);
  } else if (s.what == signal::kind::message) {
    if (!encode_message(b.pk, s.payload)) {
      return {errc::bad_argument, std::string("message type ") + s.payload.type_name() +
                                      " is not registered for distribution"};
    }
  } else {
    b.pk.pack_nil();
  }
  return b.finish();
} catch (const unregistered_type& e) {
  return {errc::bad_argument, e.what()};
}

result<std::string> encode_send_named(const pid& from, std::string_view name, const message& body) try {
  frame_builder b;
  b.pk.pack_array(4);
  b.pk.pack(static_cast<int>(frame_kind::send_named));
  b.pk.pack(from);
  b.pk.pack(name);
  if (!encode_message(b.pk, body)) {
    return {errc::bad_argument, std::string("message type ") + body.type_name() + " is not registered for distribution"};
  }
  return b.finish();
} catch (const unregistered_type& e) {
  return {errc::bad_argument, e.what()};
}

namespace {

result<decoded> decode_impl(std::string_view payload, bool handshake) {
  auto handle = wire::unpack(payload);
  if (!handle) return handle.err();
  const msgpack::object& o = handle->get();
  try {
    if (o.type != msgpack::type::ARRAY || o.via.array.size == 0) throw msgpack::type_error();
    decoded d;
    const int kind = at(o, 0).as<int>();
    d.kind = static_cast<frame_kind>(kind);
    if (handshake && d.kind != frame_kind::hello && d.kind != frame_kind::proof && d.kind != frame_kind::refused) {
      return {errc::malformed, "frame kind " + std::to_string(kind) + " before the handshake completed"};
    }
    switch (d.kind) {
      case frame_kind::hello:
        d.hello.version = at(o, 1).as<std::uint32_t>();
        d.hello.name = at(o, 2).as<std::string>();
        d.hello.incarnation = at(o, 3).as<std::uint32_t>();
        d.hello.nonce = as_bin<32>(at(o, 4));
        break;
      case frame_kind::proof:
        d.proof.mac = as_bin<32>(at(o, 1));
        break;
      case frame_kind::refused:
        d.refused.reason = at(o, 1).as<std::string>();
        break;
      case frame_kind::tick:
        break;
      case frame_kind::signal: {
        auto s = std::make_unique<signal>();
        const int k = at(o, 1).as<int>();
        if (k < 0 || k > static_cast<int>(signal::kind::down)) throw msgpack::type_error();
        s->what = static_cast<signal::kind>(k);
        s->from = at(o, 2).as<pid>();
        s->to = at(o, 3).as<pid>();
        s->tag = at(o, 4).as<ref>();
        if (payload_is_reason(s->what)) {
          s->payload = at(o, 5).as<exit_reason>();
        } else if (s->what == signal::kind::message) {
          try {
            s->payload = decode_message(at(o, 5));
          } catch (const unknown_type& e) {
            d.dropped = e.what();
          }
        }
        d.sig = std::move(s);
        break;
      }
      case frame_kind::send_named:
        d.named.from = at(o, 1).as<pid>();
        d.named.name = at(o, 2).as<std::string>();
        try {
          d.named.body = decode_message(at(o, 3));
        } catch (const unknown_type& e) {
          d.dropped = e.what();
        }
        break;
      case frame_kind::peers:
        d.peers.nodes = at(o, 1).as<std::vector<std::string>>();
        break;
      default:
        return {errc::malformed, "unknown frame kind " + std::to_string(kind)};
    }
    return d;
  } catch (const std::exception& e) {
    return {errc::malformed, std::string("malformed frame: ") + e.what()};
  }
}

}  // namespace

result<decoded> decode(std::string_view payload) { return decode_impl(payload, false); }

result<int> peek_kind(std::string_view payload) {
  auto handle = wire::unpack(payload);
  if (!handle) return handle.err();
  const msgpack::object& o = handle->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size == 0 ||
      o.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER || o.via.array.ptr[0].via.u64 > 255) {
    return {errc::malformed, "a frame must be an array that starts with its kind"};
  }
  return static_cast<int>(o.via.array.ptr[0].via.u64);
}
result<decoded> decode_handshake(std::string_view payload) { return decode_impl(payload, true); }

}  // namespace panal::dist
