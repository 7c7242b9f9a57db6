#include "store/table.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "store/hash.h"

namespace panal::store {
namespace {

// An entry: [version u64][key length u32][value length u31 | tombstone bit][key][value].
struct header {
  std::uint64_t version;
  std::uint32_t key_len;
  std::uint32_t value_len_and_flag;
};
static_assert(sizeof(header) == 16);
constexpr std::uint32_t kTombstone = 1u << 31;
constexpr std::uintptr_t kEmpty = 0, kErased = 1;
constexpr std::uintptr_t kPointerMask = (std::uintptr_t{1} << 48) - 1;

header* blob_of(std::uintptr_t slot) { return reinterpret_cast<header*>(slot & kPointerMask); }
std::uintptr_t tag_of(std::uint64_t hash) { return static_cast<std::uintptr_t>(hash >> 48) << 48; }
const char* key_of(const header* h) { return reinterpret_cast<const char*>(h + 1); }
std::size_t value_len(const header* h) { return h->value_len_and_flag & ~kTombstone; }

entry_view view_of(const header* h) {
  return {std::string_view(key_of(h), h->key_len), std::string_view(key_of(h) + h->key_len, value_len(h)),
          h->version, (h->value_len_and_flag & kTombstone) != 0};
}

std::size_t usable(const void* p) { return malloc_usable_size(const_cast<void*>(p)); }

}  // namespace

table::table(std::size_t max_memory) : max_memory_(max_memory), index_(16, kEmpty) {}

table::~table() {
  for (std::uintptr_t s : index_) {
    if (s > kErased) std::free(blob_of(s));
  }
}

std::size_t table::probe(std::string_view key, std::uint64_t hash, bool& found) const {
  const std::size_t mask = index_.size() - 1;
  const std::uintptr_t tag = tag_of(hash);
  std::size_t i = static_cast<std::size_t>(hash) & mask;
  std::size_t first_erased = index_.size();
  for (;;) {
    const std::uintptr_t s = index_[i];
    if (s == kEmpty) {
      found = false;
      return first_erased != index_.size() ? first_erased : i;
    }
    if (s == kErased) {
      if (first_erased == index_.size()) first_erased = i;
    } else if ((s & ~kPointerMask) == tag) {
      const header* h = blob_of(s);
      if (h->key_len == key.size() && std::memcmp(key_of(h), key.data(), key.size()) == 0) {
        found = true;
        return i;
      }
    }
    i = (i + 1) & mask;
  }
}

std::optional<entry_view> table::find(std::string_view key) const {
  bool found = false;
  const std::size_t i = probe(key, key_hash(key), found);
  if (!found) return std::nullopt;
  return view_of(blob_of(index_[i]));
}

void table::grow() {
  std::vector<std::uintptr_t> old(index_.size() * 2, kEmpty);
  old.swap(index_);
  const std::size_t mask = index_.size() - 1;
  for (std::uintptr_t s : old) {
    if (s <= kErased) continue;
    const header* h = blob_of(s);
    std::size_t i = static_cast<std::size_t>(key_hash(std::string_view(key_of(h), h->key_len))) & mask;
    while (index_[i] != kEmpty) i = (i + 1) & mask;
    index_[i] = s;
  }
  erased_ = 0;
}

result<put_outcome> table::write(std::string_view key, std::string_view value, std::uint64_t version,
                                 bool tombstone) {
  if ((used_ + erased_ + 1) * 5 > index_.size() * 4) {  // keep the load under 80%
    const std::size_t extra = index_.size() * sizeof(std::uintptr_t);
    if (max_memory_ != 0 && memory_bytes() + extra > max_memory_) {
      return {errc::out_of_memory, "the data process is at its memory limit of " + std::to_string(max_memory_) +
                                       " bytes"};
    }
    grow();
  }
  const std::uint64_t hash = key_hash(key);
  bool found = false;
  const std::size_t i = probe(key, hash, found);
  header* old = found ? blob_of(index_[i]) : nullptr;
  if (old != nullptr && old->version >= version) return put_outcome::stale;

  const std::size_t need = sizeof(header) + key.size() + value.size();
  if (max_memory_ != 0) {
    const std::size_t freed = old != nullptr ? usable(old) : 0;
    // A malloc chunk is at least `need` and at most 16 bytes more.
    if (memory_bytes() - freed + need + 16 > max_memory_) {
      return {errc::out_of_memory, "the data process is at its memory limit of " + std::to_string(max_memory_) +
                                       " bytes"};
    }
  }
  auto* h = static_cast<header*>(std::malloc(need));
  if (h == nullptr) return {errc::out_of_memory, "the allocator refused " + std::to_string(need) + " bytes"};
  h->version = version;
  h->key_len = static_cast<std::uint32_t>(key.size());
  h->value_len_and_flag = static_cast<std::uint32_t>(value.size()) | (tombstone ? kTombstone : 0);
  std::memcpy(h + 1, key.data(), key.size());
  if (!value.empty()) std::memcpy(reinterpret_cast<char*>(h + 1) + key.size(), value.data(), value.size());
  blob_bytes_ += usable(h);

  put_outcome outcome = put_outcome::inserted;
  if (old != nullptr) {
    if ((old->value_len_and_flag & kTombstone) == 0) --live_;
    blob_bytes_ -= usable(old);
    std::free(old);
    outcome = put_outcome::updated;
  } else {
    if (index_[i] == kErased) --erased_;
    ++used_;
  }
  if (!tombstone) ++live_;
  index_[i] = tag_of(hash) | reinterpret_cast<std::uintptr_t>(h);
  return outcome;
}

result<put_outcome> table::put(std::string_view key, std::string_view value, std::uint64_t version) {
  return write(key, value, version, false);
}

result<put_outcome> table::remove(std::string_view key, std::uint64_t version) {
  return write(key, {}, version, true);
}

void table::for_each(const std::function<void(const entry_view&)>& fn) const {
  for (std::uintptr_t s : index_) {
    if (s > kErased) fn(view_of(blob_of(s)));
  }
}

std::size_t table::erase_if(const std::function<bool(std::string_view key)>& pred) {
  std::size_t n = 0;
  for (std::uintptr_t& s : index_) {
    if (s <= kErased) continue;
    header* h = blob_of(s);
    if (!pred(std::string_view(key_of(h), h->key_len))) continue;
    if ((h->value_len_and_flag & kTombstone) == 0) --live_;
    blob_bytes_ -= usable(h);
    std::free(h);
    s = kErased;
    --used_;
    ++erased_;
    ++n;
  }
  return n;
}

}  // namespace panal::store
