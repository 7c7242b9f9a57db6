#include "db/messages.h"

#include <mutex>

namespace panal::db {

std::string server_group(const std::string& db) { return db + "/server"; }
std::string data_group(const std::string& db) { return db + "/data"; }
std::string client_group(const std::string& db) { return db + "/client"; }

void register_types() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& t = dist::message_types::global();
    t.add<request>("panal.db.request");
    t.add<reply>("panal.db.reply");
    t.add<key_delta>("panal.db.key_delta");
    t.add<auth_request>("panal.db.auth_request");
    t.add<stats_request>("panal.db.stats_request");
    t.add<stats_reply>("panal.db.stats_reply");
    t.add<client_op>("panal.db.client_op");
  });
}

}  // namespace panal::db
