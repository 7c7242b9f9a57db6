#include "db/messages.h"

#include "store/hash.h"

#include <mutex>

namespace panal::db {

std::string server_group(const std::string& db) { return db + "/server"; }
std::string data_group(const std::string& db) { return db + "/data"; }
std::string client_group(const std::string& db) { return db + "/client"; }
std::string database_of(std::string_view group, std::string_view role) {
  if (group.size() <= role.size() + 1 || group.substr(group.size() - role.size()) != role ||
      group[group.size() - role.size() - 1] != '/') {
    return {};
  }
  return std::string(group.substr(0, group.size() - role.size() - 1));
}

std::uint64_t request::key_hash() const { return hash != 0 ? hash : store::key_hash(key); }

void register_types() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& t = dist::message_types::global();
    t.add<request>("panal.db.request");
    t.add<reply>("panal.db.reply");
    t.add<request_batch>("panal.db.request_batch");
    t.add<reply_batch>("panal.db.reply_batch");
    t.add<map_update>("panal.db.map_update");
    t.add<map_request>("panal.db.map_request");
    t.add<map_query>("panal.db.map_query");
    t.add<lease_request>("panal.db.lease_request");
    t.add<lease_grant>("panal.db.lease_grant");
    t.add<member_report>("panal.db.member_report");
    t.add<token_request>("panal.db.token_request");
    t.add<token_grant>("panal.db.token_grant");
    t.add<drain_request>("panal.db.drain_request");
    t.add<drain_reply>("panal.db.drain_reply");
    t.add<replicate>("panal.db.replicate");
    t.add<replicate_ack>("panal.db.replicate_ack");
    t.add<purge>("panal.db.purge");
    t.add<transfer_request>("panal.db.transfer_request");
    t.add<transfer_reply>("panal.db.transfer_reply");
    t.add<auth_request>("panal.db.auth_request");
    t.add<stats_request>("panal.db.stats_request");
    t.add<stats_reply>("panal.db.stats_reply");
    t.add<client_op>("panal.db.client_op");
    t.add<locate_request>("panal.db.locate_request");
    t.add<locate_reply>("panal.db.locate_reply");
  });
}

}  // namespace panal::db
