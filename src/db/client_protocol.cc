#include "db/client_protocol.h"

#include "dist/codec.h"
#include "wire/frame.h"
#include "wire/msgpack_reader.h"
#include "wire/unpack.h"

namespace panal::db::client_protocol {
namespace {

using dist::frame_builder;
using dist::packer;

void bin(packer& p, std::string_view b) {
  p.pack_bin(static_cast<std::uint32_t>(b.size()));
  p.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
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

std::string encode_hello(std::string_view db, std::string_view token, std::uint64_t client_id) {
  frame_builder b;
  b.pk.pack_array(5);
  b.pk.pack(static_cast<int>(hello));
  b.pk.pack(version);
  b.pk.pack(db);
  if (token.empty()) b.pk.pack_nil();
  else b.pk.pack(token);
  b.pk.pack(client_id);
  return b.finish();
}

std::string encode_welcome(errc code, std::string_view message, std::string_view node, std::uint64_t max_key,
                           std::uint64_t max_value) {
  frame_builder b;
  b.pk.pack_array(6);
  b.pk.pack(static_cast<int>(welcome));
  b.pk.pack(static_cast<int>(code));
  b.pk.pack(message);
  b.pk.pack(node);
  b.pk.pack(max_key);
  b.pk.pack(max_value);
  return b.finish();
}

void append_request(std::string& out, std::uint64_t id, op o, std::string_view key, std::string_view value,
                    write_tag tag) {
  frame_builder b(std::move(out));
  b.pk.pack_array(8);
  b.pk.pack(static_cast<int>(request));
  b.pk.pack(id);
  b.pk.pack(static_cast<std::uint8_t>(o));
  bin(b.pk, key);
  if (carries_value(o)) bin(b.pk, value);
  else b.pk.pack_nil();
  b.pk.pack(tag.seq);
  b.pk.pack(tag.floor);
  b.pk.pack(tag.retry);
  out = b.finish();
}

std::string encode_request(std::uint64_t id, op o, std::string_view key, std::string_view value, write_tag tag) {
  std::string out;
  append_request(out, id, o, key, value, tag);
  return out;
}

void append_response(std::string& out, std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                     std::string_view value) {
  frame_builder b(std::move(out));
  b.pk.pack_array(6);
  b.pk.pack(static_cast<int>(response));
  b.pk.pack(id);
  b.pk.pack(code);
  b.pk.pack(message);
  b.pk.pack(found);
  if (found) bin(b.pk, value);
  else b.pk.pack_nil();
  out = b.finish();
}

std::string encode_response(std::uint64_t id, std::uint16_t code, std::string_view message, bool found,
                            std::string_view value) {
  std::string out;
  append_response(out, id, code, message, found, value);
  return out;
}

result<request_view> decode_request(std::string_view payload) {
  wire::msgpack_reader r(payload);
  request_view v;
  if (r.array() != 8 || r.uint() != static_cast<std::uint64_t>(request)) {
    return {errc::malformed, "expected a REQUEST frame"};
  }
  v.id = r.uint();
  const std::uint64_t o = r.uint();
  v.key = r.bytes();
  v.value = r.bytes();
  v.tag.seq = r.uint();
  v.tag.floor = r.uint();
  v.tag.retry = r.boolean();
  if (r.failed() || !r.at_end()) return {errc::malformed, "malformed REQUEST frame"};
  if (o < static_cast<std::uint64_t>(op::get) || o > static_cast<std::uint64_t>(op::unsafe_set)) {
    return {errc::malformed, "unknown operation " + std::to_string(o)};
  }
  v.op = static_cast<op>(o);
  return v;
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
        if (f.version != version) break;  // the caller answers with the version it speaks
        f.db = at(o, 2).as<std::string>();
        f.token = as_bytes(at(o, 3));
        f.client_id = at(o, 4).as<std::uint64_t>();
        break;
      case welcome:
        f.code = at(o, 1).as<std::uint16_t>();
        f.message = at(o, 2).as<std::string>();
        f.node = at(o, 3).as<std::string>();
        if (o.via.array.size > 5) {
          f.max_key = at(o, 4).as<std::uint64_t>();
          f.max_value = at(o, 5).as<std::uint64_t>();
        }
        break;
      case request:
        f.id = at(o, 1).as<std::uint64_t>();
        f.op = static_cast<op>(at(o, 2).as<std::uint8_t>());
        f.key = as_bytes(at(o, 3));
        f.value = as_bytes(at(o, 4));
        f.tag.seq = at(o, 5).as<std::uint64_t>();
        f.tag.floor = at(o, 6).as<std::uint64_t>();
        f.tag.retry = at(o, 7).as<bool>();
        if (f.op < op::get || f.op > op::unsafe_set) {
          return {errc::malformed, "unknown operation " + std::to_string(static_cast<int>(f.op))};
        }
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
