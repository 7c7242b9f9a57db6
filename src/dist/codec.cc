#include "dist/codec.h"

#include <cstdlib>
#include <vector>

#include "util/log.h"

namespace panal::dist {

std::uint32_t type_id(std::string_view name) {
  std::uint32_t h = 2166136261u;  // FNV-1a: stable across builds and platforms
  for (unsigned char c : name) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

namespace {

void register_builtins(message_types& t) {
  t.add<bool>("panal.bool");
  t.add<std::int32_t>("panal.i32");
  t.add<std::int64_t>("panal.i64");
  t.add<std::uint64_t>("panal.u64");
  t.add<double>("panal.f64");
  t.add<std::string>("panal.string");
  t.add<std::vector<std::string>>("panal.strings");
  t.add<pid>("panal.pid");
  t.add<std::vector<pid>>("panal.pids");
  t.add<ref>("panal.ref");
  t.add<exit_reason>("panal.exit_reason");
  t.add<exit_msg>("panal.exit_msg");
  t.add<down_msg>("panal.down_msg");
  t.add<call_request>("panal.call_request");
  t.add<call_reply>("panal.call_reply");
}

}  // namespace

message_types& message_types::global() {
  static message_types* types = [] {
    auto* t = new message_types;  // never destroyed: used until the last thread ends
    register_builtins(*t);
    return t;
  }();
  return *types;
}

void message_types::insert(std::type_index type, message_type t) {
  if (auto it = by_id_.find(t.id); it != by_id_.end() && it->second->name != t.name) {
    log::error("dist", "message type '", t.name, "' collides with '", it->second->name, "'; rename one");
    std::abort();
  }
  auto [it, inserted] = by_type_.insert_or_assign(type, std::move(t));
  by_id_[it->second.id] = &it->second;
}

const message_type* message_types::find(const std::type_info& t) const {
  auto it = by_type_.find(std::type_index(t));
  return it == by_type_.end() ? nullptr : &it->second;
}

const message_type* message_types::find(std::uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

bool encode_message(packer& p, const message& m) {
  if (m.empty()) return false;
  const message_type* t = message_types::global().find(m.type());
  if (t == nullptr) return false;
  p.pack_array(2);
  p.pack(t->id);
  t->encode(p, m);
  return true;
}

message decode_message(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) throw msgpack::type_error();
  const auto id = o.via.array.ptr[0].as<std::uint32_t>();
  const message_type* t = message_types::global().find(id);
  if (t == nullptr) throw unknown_type("unknown message type id " + std::to_string(id));
  return t->decode(o.via.array.ptr[1]);
}

}  // namespace panal::dist

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
namespace adaptor {
namespace {

const msgpack::object& element(const msgpack::object& o, std::uint32_t size, std::uint32_t i) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != size) throw msgpack::type_error();
  return o.via.array.ptr[i];
}

template <class Id>
void convert_id(const msgpack::object& o, Id& v) {
  v.node = panal::node_index(element(o, 3, 0).as<std::string>());
  v.incarnation = element(o, 3, 1).as<std::uint32_t>();
  v.id = element(o, 3, 2).as<std::uint64_t>();
}

}  // namespace

const msgpack::object& convert<panal::pid>::operator()(const msgpack::object& o, panal::pid& v) const {
  convert_id(o, v);
  return o;
}

const msgpack::object& convert<panal::ref>::operator()(const msgpack::object& o, panal::ref& v) const {
  convert_id(o, v);
  return o;
}

const msgpack::object& convert<panal::exit_reason>::operator()(const msgpack::object& o,
                                                               panal::exit_reason& v) const {
  const int k = element(o, 2, 0).as<int>();
  if (k < 0 || k > static_cast<int>(panal::exit_reason::kind::error)) throw msgpack::type_error();
  v.what = static_cast<panal::exit_reason::kind>(k);
  v.detail = element(o, 2, 1).as<std::string>();
  return o;
}

const msgpack::object& convert<panal::exit_msg>::operator()(const msgpack::object& o, panal::exit_msg& v) const {
  v.from = element(o, 2, 0).as<panal::pid>();
  v.reason = element(o, 2, 1).as<panal::exit_reason>();
  return o;
}

const msgpack::object& convert<panal::down_msg>::operator()(const msgpack::object& o, panal::down_msg& v) const {
  v.monitor = element(o, 3, 0).as<panal::ref>();
  v.who = element(o, 3, 1).as<panal::pid>();
  v.reason = element(o, 3, 2).as<panal::exit_reason>();
  return o;
}

const msgpack::object& convert<panal::call_request>::operator()(const msgpack::object& o,
                                                                panal::call_request& v) const {
  v.from = element(o, 3, 0).as<panal::pid>();
  v.tag = element(o, 3, 1).as<panal::ref>();
  v.body = panal::dist::decode_message(element(o, 3, 2));
  return o;
}

const msgpack::object& convert<panal::call_reply>::operator()(const msgpack::object& o,
                                                              panal::call_reply& v) const {
  v.tag = element(o, 2, 0).as<panal::ref>();
  v.body = panal::dist::decode_message(element(o, 2, 1));
  return o;
}

}  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE
}  // namespace msgpack
