#include "db/client_protocol.h"

#include "dist/codec.h"
#include "wire/frame.h"
#include "wire/unpack.h"

namespace panal::db::client_protocol {
namespace {

using dist::byte_sink;
using dist::packer;

void bin(packer& p, std::string_view b) {
  p.pack_bin(static_cast<std::uint32_t>(b.size()));
  p.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
}

std::string framed(byte_sink& sink, std::size_t start) {
  wire::write_frame_header(sink.data.data() + start, static_cast<std::uint32_t>(sink.data.size() - start - 4));
  return std::move(sink.data);
}

std::string as_bytes(const msgpack::object& o) {
  if (o.type == msgpack::type::BIN) return std::string(o.via.bin.ptr, o.via.bin.size);
  if (o.type == msgpack::type::STR) return std::string(o.via.str.ptr, o.via.str.size);
  if (o.type == msgpack::type::NIL) return {};
  throw msgpack::type_error();
}

const msgpack::object& at(const msgpack::object& o, std::uint32_t i) {
  if (i >= o.via.array.size) throw msgpack::type_error();
  return o.via.array.ptr[i];
}

}  // namespace

std::string encode_hello(std::string_view db, std::string_view token) {
  byte_sink s;
  s.data.assign(4, '\0');
  packer p(s);
  p.pack_array(4);
  p.pack(static_cast<int>(hello));
  p.pack(version);
  p.pack(db);
  if (token.empty()) p.pack_nil();
  else p.pack(token);
  return framed(s, 0);
}

std::string encode_welcome(errc code, std::string_view message, std::string_view node) {
  byte_sink s;
  s.data.assign(4, '\0');
  packer p(s);
  p.pack_array(4);
  p.pack(static_cast<int>(welcome));
  p.pack(static_cast<int>(code));
  p.pack(message);
  p.pack(node);
  return framed(s, 0);
}

std::string encode_request(std::uint64_t id, std::uint8_t op, std::string_view key, std::string_view value) {
  byte_sink s;
  s.data.reserve(16 + key.size() + value.size());
  s.data.assign(4, '\0');
  packer p(s);
  p.pack_array(5);
  p.pack(static_cast<int>(request));
  p.pack(id);
  p.pack(op);
  bin(p, key);
  if (op == 2 || op == 5) bin(p, value);
  else p.pack_nil();
  return framed(s, 0);
}

void append_response(std::string& out, std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                     std::string_view value) {
  byte_sink s;
  s.data.swap(out);
  const std::size_t start = s.data.size();
  s.data.append(4, '\0');
  packer p(s);
  p.pack_array(6);
  p.pack(static_cast<int>(response));
  p.pack(id);
  p.pack(code);
  p.pack(message);
  p.pack(found);
  if (found) bin(p, value);
  else p.pack_nil();
  wire::write_frame_header(s.data.data() + start, static_cast<std::uint32_t>(s.data.size() - start - 4));
  s.data.swap(out);
}

std::string encode_response(std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                            std::string_view value) {
  std::string out;
  append_response(out, id, code, message, found, value);
  return out;
}

result<frame> decode(std::string_view payload) {
  auto handle = wire::unpack(payload);
  if (!handle) return handle.err();
  const msgpack::object& o = handle->get();
  try {
    if (o.type != msgpack::type::ARRAY || o.via.array.size == 0) throw msgpack::type_error();
    frame f;
    f.kind = at(o, 0).as<int>();
    switch (f.kind) {
      case hello:
        f.version = at(o, 1).as<std::uint32_t>();
        f.db = at(o, 2).as<std::string>();
        f.token = as_bytes(at(o, 3));
        break;
      case welcome:
        f.code = at(o, 1).as<std::uint16_t>();
        f.message = at(o, 2).as<std::string>();
        f.node = at(o, 3).as<std::string>();
        break;
      case request:
        f.id = at(o, 1).as<std::uint64_t>();
        f.op = at(o, 2).as<std::uint8_t>();
        f.key = as_bytes(at(o, 3));
        f.value = as_bytes(at(o, 4));
        if (f.op < 1 || f.op > 5) return {errc::malformed, "unknown operation " + std::to_string(f.op)};
        break;
      case response:
        f.id = at(o, 1).as<std::uint64_t>();
        f.code = at(o, 2).as<std::uint16_t>();
        f.message = at(o, 3).as<std::string>();
        f.found = at(o, 4).as<bool>();
        f.value = as_bytes(at(o, 5));
        break;
      default:
        return {errc::malformed, "unknown client frame kind " + std::to_string(f.kind)};
    }
    return f;
  } catch (const std::exception& e) {
    return {errc::malformed, std::string("malformed client frame: ") + e.what()};
  }
}

}  // namespace panal::db::client_protocol
