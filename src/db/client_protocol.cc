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

std::string encode_hello(std::string_view db, std::string_view token, std::uint64_t client_id, std::uint32_t speaks) {
  frame_builder b;
  b.pk.pack_array(5);
  b.pk.pack(static_cast<int>(hello));
  b.pk.pack(speaks);
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
        if (f.version < oldest_version || f.version > version) break;  // the caller answers with the version it speaks
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

int kind_of(std::string_view payload) {
  wire::msgpack_reader r(payload);
  if (r.array() == 0) return 0;
  const std::uint64_t k = r.uint();
  return r.failed() || k > 255 ? 0 : static_cast<int>(k);
}

result<response_view> decode_response(std::string_view payload) {
  wire::msgpack_reader r(payload);
  response_view v;
  if (r.array() != 6 || r.uint() != static_cast<std::uint64_t>(response)) {
    return {errc::malformed, "expected a RESPONSE frame"};
  }
  v.id = r.uint();
  const std::uint64_t code = r.uint();
  v.message = r.bytes();
  v.found = r.boolean();
  v.value = r.bytes();
  if (r.failed() || !r.at_end() || code > 0xffff) return {errc::malformed, "malformed RESPONSE frame"};
  v.code = static_cast<std::uint16_t>(code);
  return v;
}

std::string encode_route_request(std::uint64_t id) {
  frame_builder b;
  b.pk.pack_array(2);
  b.pk.pack(static_cast<int>(route_request));
  b.pk.pack(id);
  return b.finish();
}

result<std::uint64_t> decode_route_request(std::string_view payload) {
  wire::msgpack_reader r(payload);
  if (r.array() != 2 || r.uint() != static_cast<std::uint64_t>(route_request)) {
    return {errc::malformed, "expected a ROUTE_REQUEST frame"};
  }
  const std::uint64_t id = r.uint();
  if (r.failed() || !r.at_end()) return {errc::malformed, "malformed ROUTE_REQUEST frame"};
  return id;
}

void append_routes(std::string& out, const routes& m) {
  frame_builder b(std::move(out));
  b.pk.pack_array(7);
  b.pk.pack(static_cast<int>(route_map));
  b.pk.pack(m.id);
  b.pk.pack(m.code);
  b.pk.pack(m.generation);
  b.pk.pack(m.epoch);
  b.pk.pack_array(static_cast<std::uint32_t>(m.nodes.size()));
  for (const auto& n : m.nodes) b.pk.pack(n);
  std::string primaries(m.primary.size() * 2, '\0');
  for (std::size_t i = 0; i < m.primary.size(); ++i) {
    primaries[2 * i] = static_cast<char>(m.primary[i] >> 8);
    primaries[2 * i + 1] = static_cast<char>(m.primary[i] & 0xff);
  }
  bin(b.pk, primaries);
  out = b.finish();
}

result<routes> decode_routes(std::string_view payload) {
  wire::msgpack_reader r(payload);
  routes m;
  if (r.array() != 7 || r.uint() != static_cast<std::uint64_t>(route_map)) {
    return {errc::malformed, "expected a ROUTE_MAP frame"};
  }
  m.id = r.uint();
  const std::uint64_t code = r.uint();
  m.generation = r.uint();
  const std::uint64_t epoch = r.uint();
  const std::uint32_t count = r.array();
  // Each name takes at least one byte: a count beyond the frame is a lie,
  // and must not reserve memory.
  if (r.failed() || count > routes::none || count > payload.size() || code > 0xffff || epoch > 0xffffffffu) {
    return {errc::malformed, "malformed ROUTE_MAP frame"};
  }
  m.code = static_cast<std::uint16_t>(code);
  m.epoch = static_cast<std::uint32_t>(epoch);
  for (std::uint32_t i = 0; i < count && !r.failed(); ++i) m.nodes.emplace_back(r.bytes());
  const std::string_view primaries = r.bytes();
  if (r.failed() || !r.at_end() || primaries.size() % 2 != 0) return {errc::malformed, "malformed ROUTE_MAP frame"};
  m.primary.resize(primaries.size() / 2);
  for (std::size_t i = 0; i < m.primary.size(); ++i) {
    const auto hi = static_cast<unsigned char>(primaries[2 * i]), lo = static_cast<unsigned char>(primaries[2 * i + 1]);
    const std::uint16_t p = static_cast<std::uint16_t>(hi << 8 | lo);
    if (p != routes::none && p >= m.nodes.size()) return {errc::malformed, "ROUTE_MAP names a node it does not list"};
    m.primary[i] = p;
  }
  return m;
}

}  // namespace panal::db::client_protocol
