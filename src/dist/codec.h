// Encoding of runtime values for the wire: msgpack adaptors for pid, ref,
// exit_reason and the system messages, and the registry of message types
// that may cross nodes.
//
// Promise: a message crosses nodes only if its C++ type is registered
// (message_types::add<T>("stable.name")); it arrives as the same type.
// On the wire a message is [type id, value]; the id is the 32-bit FNV-1a of
// the name, so both nodes must register the same names. A pid travels as
// [node name, incarnation, id] and is re-interned on arrival.
//
// Thread-safety: register types before starting distribution; lookups are
// then read-only and safe from any thread. This header includes msgpack-c.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <msgpack.hpp>
#include <string>
#include <type_traits>
#include <typeindex>
#include <unordered_map>

#include "runtime/message.h"
#include "runtime/pid.h"
#include "runtime/system_messages.h"
#include "wire/frame.h"

namespace panal::dist {

// A byte buffer msgpack packs into (a std::string we can move into a message).
struct byte_sink {
  std::string data;
  void write(const char* p, std::size_t n) { data.append(p, n); }
};
using packer = msgpack::packer<byte_sink>;

// Packs one frame (4-byte length, then the msgpack payload with `pk`),
// appended to what `into` already holds; finish() fills in the length.
struct frame_builder {
  explicit frame_builder(std::string into = {}) : start(into.size()) {
    sink.data = std::move(into);
    sink.data.append(wire::frame_header_size, '\0');
  }
  std::string finish() {
    wire::write_frame_header(sink.data.data() + start,
                             static_cast<std::uint32_t>(sink.data.size() - start - wire::frame_header_size));
    return std::move(sink.data);
  }
  byte_sink sink;
  std::size_t start;
  packer pk{sink};
};

std::uint32_t type_id(std::string_view name);

struct message_type {
  std::uint32_t id = 0;
  std::string name;
  std::function<void(packer&, const message&)> encode;
  std::function<message(const msgpack::object&)> decode;  // throws msgpack::type_error on bad input
};

class message_types {
 public:
  // The process-wide registry, with panal's built-in types already in it.
  static message_types& global();

  template <class T>
  void add(const std::string& name) {
    message_type t;
    t.id = type_id(name);
    t.name = name;
    t.encode = [](packer& p, const message& m) { p.pack(m.get<T>()); };
    t.decode = [](const msgpack::object& o) { return message(o.as<T>()); };
    insert(std::type_index(typeid(T)), std::move(t));
  }

  const message_type* find(const std::type_info& t) const;
  const message_type* find(std::uint32_t id) const;

 private:
  void insert(std::type_index type, message_type t);
  std::unordered_map<std::type_index, message_type> by_type_;
  std::unordered_map<std::uint32_t, const message_type*> by_id_;
};

// [type id, value]; false (and nothing packed) if the type is not registered.
bool encode_message(packer& p, const message& m);

// Thrown while packing a message nested in another (a call's body) whose
// type is not registered; encode_signal turns it into an error.
struct unregistered_type : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown while decoding a message whose type id this node does not know: the
// one message is dropped, the connection stays (nodes may run different sets
// of services).
struct unknown_type : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws msgpack::type_error for bad values, unknown_type for unknown types.
message decode_message(const msgpack::object& o);

}  // namespace panal::dist

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {

// pids and refs alike: [node name, incarnation, id].
template <class Stream, class Id>
packer<Stream>& pack_id(packer<Stream>& o, const Id& v) {
  o.pack_array(3);
  o.pack(panal::node_name(v.node));
  o.pack(v.incarnation);
  o.pack(v.id);
  return o;
}

template <>
struct pack<panal::pid> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::pid& v) const {
    return pack_id(o, v);
  }
};
template <>
struct convert<panal::pid> {
  const msgpack::object& operator()(const msgpack::object& o, panal::pid& v) const;
};

template <>
struct pack<panal::ref> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::ref& v) const {
    return pack_id(o, v);
  }
};
template <>
struct convert<panal::ref> {
  const msgpack::object& operator()(const msgpack::object& o, panal::ref& v) const;
};

template <>
struct pack<panal::exit_reason> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::exit_reason& v) const {
    o.pack_array(2);
    o.pack(static_cast<int>(v.what));
    o.pack(v.detail);
    return o;
  }
};
template <>
struct convert<panal::exit_reason> {
  const msgpack::object& operator()(const msgpack::object& o, panal::exit_reason& v) const;
};

template <>
struct pack<panal::exit_msg> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::exit_msg& v) const {
    o.pack_array(2);
    o.pack(v.from);
    o.pack(v.reason);
    return o;
  }
};
template <>
struct convert<panal::exit_msg> {
  const msgpack::object& operator()(const msgpack::object& o, panal::exit_msg& v) const;
};

template <>
struct pack<panal::down_msg> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::down_msg& v) const {
    o.pack_array(3);
    o.pack(v.monitor);
    o.pack(v.who);
    o.pack(v.reason);
    return o;
  }
};
template <>
struct convert<panal::down_msg> {
  const msgpack::object& operator()(const msgpack::object& o, panal::down_msg& v) const;
};

// Messages nested in call_request/call_reply travel as [type id, value].
template <>
struct pack<panal::call_request> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::call_request& v) const {
    o.pack_array(3);
    static_assert(std::is_same_v<Stream, panal::dist::byte_sink>, "messages pack into a byte_sink");
    o.pack(v.from);
    o.pack(v.tag);
    if (!panal::dist::encode_message(o, v.body)) {
      throw panal::dist::unregistered_type(std::string("call body of type ") + v.body.type_name() +
                                           " is not registered for distribution");
    }
    return o;
  }
};
template <>
struct convert<panal::call_request> {
  const msgpack::object& operator()(const msgpack::object& o, panal::call_request& v) const;
};

template <>
struct pack<panal::call_reply> {
  template <class Stream>
  packer<Stream>& operator()(packer<Stream>& o, const panal::call_reply& v) const {
    o.pack_array(2);
    static_assert(std::is_same_v<Stream, panal::dist::byte_sink>, "messages pack into a byte_sink");
    o.pack(v.tag);
    if (!panal::dist::encode_message(o, v.body)) {
      throw panal::dist::unregistered_type(std::string("reply of type ") + v.body.type_name() +
                                           " is not registered for distribution");
    }
    return o;
  }
};
template <>
struct convert<panal::call_reply> {
  const msgpack::object& operator()(const msgpack::object& o, panal::call_reply& v) const;
};

}  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE
}  // namespace msgpack
