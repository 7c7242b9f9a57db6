#include "db/requester.h"

#include "registry/pg.h"
#include "runtime/this_process.h"

namespace panal::db {

namespace tp = this_process;

requester::requester(registry::pg& groups, std::string db)
    : groups_(groups), db_(std::move(db)), server_group_(server_group(db_)) {}

void requester::submit(request r, done_fn done) {
  auto master = groups_.oldest(server_group_);
  if (!master) {
    if (done) done(error_reply(0, {errc::no_master, "database '" + db_ + "' has no live server"}));
    return;
  }
  if (*master != master_) {
    // Follow the master; requests sent to the old one fail when it goes down.
    master_ = *master;
    master_watch_ = tp::monitor(master_);
  }
  if (++submits_ % 4096 == 0) expire();
  if (done) {
    r.id = next_id_++;
    r.reply_to = tp::self();
    pending_.emplace(r.id, waiting{master_, std::move(done), clock::now()});
  } else {
    r.reply_to = {};
  }
  tp::send(master_, std::move(r));
}

void requester::expire() {
  const auto limit = clock::now() - expire_after;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.sent < limit) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(error_reply(0, {errc::timeout, "no answer from the data process"}));
    } else {
      ++it;
    }
  }
}

bool requester::on_message(message& m) {
  if (auto* rep = m.get_if<reply>()) {
    auto it = pending_.find(rep->id);
    if (it == pending_.end()) return true;  // late: its requester gave up on it
    auto done = std::move(it->second.done);
    pending_.erase(it);
    done(std::move(*rep));
    return true;
  }
  if (auto* d = m.get_if<down_msg>()) {
    const pid gone = d->who;  // the master, or an older one with requests still out
    bool ours = false;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.master == gone) {
        ours = true;
        auto done = std::move(it->second.done);
        it = pending_.erase(it);
        done(error_reply(0, {errc::no_master, "the master of '" + db_ + "' went down; retry"}));
      } else {
        ++it;
      }
    }
    if (gone == master_) {
      master_ = {};
      ours = true;
    }
    return ours;
  }
  return false;
}

}  // namespace panal::db
