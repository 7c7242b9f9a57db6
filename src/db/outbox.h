// Messages to many processes, gathered per destination and sent as one
// batch each (one mailbox hand-off for many): a requester's requests to its
// primaries, a data process's answers to its requesters.
//
// Promise: per destination, items go out in the order added. A
// destination's batch goes out at once when it reaches `max_items` or
// `max_bytes` (with what came before it, so a batch stays below max_bytes
// plus one item); flush() sends the rest. A batch of one goes out as the
// item itself.
//
// Thread-safety: used by the one process that owns it.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "runtime/pid.h"
#include "runtime/this_process.h"

namespace panal::db {

template <class Item, class Batch, std::vector<Item> Batch::*Items>
class outbox {
 public:
  outbox(std::size_t max_items, std::size_t max_bytes) : max_items_(max_items), max_bytes_(max_bytes) {}

  void add(const pid& to, Item&& item, std::size_t bytes) {
    auto it = boxes_.begin();
    while (it != boxes_.end() && it->to != to) ++it;  // a few destinations: a scan beats a map
    if (it == boxes_.end()) it = boxes_.insert(boxes_.end(), box{to, {}, 0});
    it->items.push_back(std::move(item));
    it->bytes += bytes;
    if (it->items.size() >= max_items_ || it->bytes >= max_bytes_) send(*it);
  }

  void flush() {
    for (box& b : boxes_) send(b);
    boxes_.clear();
  }

 private:
  struct box {
    pid to;
    std::vector<Item> items;
    std::size_t bytes = 0;
  };
  static void send(box& b) {
    if (b.items.size() == 1) {
      this_process::send(b.to, std::move(b.items.front()));
    } else if (!b.items.empty()) {
      Batch batch;
      batch.*Items = std::move(b.items);
      this_process::send(b.to, std::move(batch));
    }
    b.items = {};
    b.bytes = 0;
  }

  std::size_t max_items_, max_bytes_;
  std::vector<box> boxes_;
};

}  // namespace panal::db
