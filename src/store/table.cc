#include "store/table.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "store/hash.h"

namespace panal::store {

namespace {

// An entry: header, then (long form only) the two lengths, then the key,
// then the value. The short form covers keys under 256 bytes and values
// under 4 MiB in 16 bytes of header: a 16-byte key and a 32-byte value make
// 64 bytes, one allocator class and one cache line (a 24-byte header made
// 72 bytes in an 80-byte class).
struct header {
  std::uint64_t hlc;
  std::uint32_t epoch;
  // Short: key length (bits 0-7) | value length (bits 8-29); bit 30: a
  // tombstone; bit 31: the long form, whose lengths follow the header.
  std::uint32_t lens;
};
static_assert(sizeof(header) == 16);
struct long_lens {
  std::uint32_t key_len, value_len;
};
constexpr std::uint32_t kLong = 1u << 31, kTombstone = 1u << 30;
constexpr std::size_t kShortKeyMax = 0xff, kShortValueMax = (1u << 22) - 1;
constexpr std::uintptr_t kEmpty = 0, kErased = 1;
constexpr std::uintptr_t kPointerMask = (std::uintptr_t{1} << 48) - 1;

header* blob_of(std::uintptr_t cell) { return reinterpret_cast<header*>(cell & kPointerMask); }
// The slot is hash % slot_count (low bits); the index position and the tag
// come from other bits, so one slot's keys spread over its whole index.
std::uintptr_t tag_of(std::uint64_t hash) { return static_cast<std::uintptr_t>((hash >> 16) & 0xffff) << 48; }
std::size_t home_of(std::uint64_t hash, std::size_t mask) { return static_cast<std::size_t>(hash >> 32) & mask; }
bool is_long(const header* h) { return (h->lens & kLong) != 0; }
const long_lens* long_of(const header* h) { return reinterpret_cast<const long_lens*>(h + 1); }
std::size_t key_len(const header* h) { return is_long(h) ? long_of(h)->key_len : h->lens & kShortKeyMax; }
std::size_t value_len(const header* h) { return is_long(h) ? long_of(h)->value_len : (h->lens >> 8) & kShortValueMax; }
bool is_tombstone(const header* h) { return (h->lens & kTombstone) != 0; }
// The bytes between the header and the key.
std::size_t extra_for(std::size_t key_size, std::size_t value_size) {
  return key_size <= kShortKeyMax && value_size <= kShortValueMax ? 0 : sizeof(long_lens);
}
const char* key_of(const header* h) { return reinterpret_cast<const char*>(h + 1) + (is_long(h) ? sizeof(long_lens) : 0); }
char* key_of(header* h) { return const_cast<char*>(key_of(static_cast<const header*>(h))); }
// Sets the lengths of an entry whose form (extra_for) is already its own.
void set_lens(header* h, std::size_t key_size, std::size_t value_size, bool tombstone) {
  const std::uint32_t t = tombstone ? kTombstone : 0;
  if (extra_for(key_size, value_size) == 0) {
    h->lens = static_cast<std::uint32_t>(key_size) | static_cast<std::uint32_t>(value_size) << 8 | t;
  } else {
    h->lens = kLong | t;
    auto* l = reinterpret_cast<long_lens*>(h + 1);
    l->key_len = static_cast<std::uint32_t>(key_size);
    l->value_len = static_cast<std::uint32_t>(value_size);
  }
}
version version_of(const header* h) { return {h->epoch, h->hlc}; }

// One entry's share of its slot's digest.
std::uint64_t entry_digest(std::uint64_t hash, version v, bool tombstone) {
  std::uint64_t x = hash ^ (v.hlc * 0x9e3779b97f4a7c15ULL) ^ ((std::uint64_t{v.epoch} << 1 | tombstone) * 0xbf58476d1ce4e5b9ULL);
  x ^= x >> 31;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 32);
}

entry_view view_of(const header* h) {
  return {std::string_view(key_of(h), key_len(h)), std::string_view(key_of(h) + key_len(h), value_len(h)),
          version_of(h), is_tombstone(h)};
}

std::size_t usable(const void* p) { return malloc_usable_size(const_cast<void*>(p)); }

error memory_error(std::size_t limit) {
  return {errc::out_of_memory, "the data process is at its memory limit of " + std::to_string(limit) + " bytes"};
}

}  // namespace

struct table::slot_index {
  std::uint32_t capacity;  // a power of two
  std::uint32_t used;      // entries
  std::uint32_t erased;    // erased markers
  std::uint32_t live;
  std::uint32_t generation;  // bumps when the cells move (scan cursors restart)
  std::uint32_t unused;
  std::uint64_t digest;      // see table::digest
  std::uintptr_t cells[1];

  static std::size_t bytes_for(std::uint32_t capacity) {
    return offsetof(slot_index, cells) + sizeof(std::uintptr_t) * capacity;
  }

  // The cell holding `key`, or where it would go; `found` tells which.
  std::size_t probe(std::string_view key, std::uint64_t hash, bool& found) const {
    const std::size_t mask = capacity - 1;
    const std::uintptr_t tag = tag_of(hash);
    std::size_t i = home_of(hash, mask);
    std::size_t first_erased = capacity;
    for (;;) {
      const std::uintptr_t c = cells[i];
      if (c == kEmpty) {
        found = false;
        return first_erased != capacity ? first_erased : i;
      }
      if (c == kErased) {
        if (first_erased == capacity) first_erased = i;
      } else if ((c & ~kPointerMask) == tag) {
        const header* h = blob_of(c);
        if (key_len(h) == key.size() && std::memcmp(key_of(h), key.data(), key.size()) == 0) {
          found = true;
          return i;
        }
      }
      i = (i + 1) & mask;
    }
  }
};

table::table(std::uint32_t slot_count, std::size_t max_memory)
    : max_memory_(max_memory), slots_(std::max<std::uint32_t>(slot_count, 1), nullptr) {}

table::~table() {
  for (std::uint32_t s = 0; s < slots_.size(); ++s) (void)drop_slot(s);
}

std::optional<entry_view> table::find(std::string_view key) const { return find(key, key_hash(key)); }

std::optional<entry_view> table::find(std::string_view key, std::uint64_t hash) const {
  const slot_index* si = slots_[slot_of(hash)];
  if (si == nullptr) return std::nullopt;
  bool found = false;
  const std::size_t i = si->probe(key, hash, found);
  if (!found) return std::nullopt;
  return view_of(blob_of(si->cells[i]));
}

void table::prefetch(std::uint64_t hash, int stage) const {
  const std::uint32_t slot = slot_of(hash);
  if (stage == 0) {
    __builtin_prefetch(&slots_[slot]);
    return;
  }
  const slot_index* si = slots_[slot];
  if (si == nullptr) return;
  const std::size_t home = home_of(hash, si->capacity - 1);
  if (stage == 1) {
    __builtin_prefetch(&si->cells[home]);
    return;
  }
  const std::uintptr_t c = si->cells[home];
  if (c > kErased) {
    // An entry may span two lines (one over 64 bytes, or a chunk not
    // aligned to a line): the key is compared, the value copied.
    const char* blob = reinterpret_cast<const char*>(blob_of(c));
    __builtin_prefetch(blob);
    __builtin_prefetch(blob + 64);
  }
}

table::slot_index* table::grow(std::uint32_t slot, bool check_memory) {
  slot_index* old = slots_[slot];
  // Mostly erased markers: rebuild at the same size instead of doubling.
  const std::uint32_t capacity = old == nullptr ? 8 : old->erased > old->used / 2 ? old->capacity : old->capacity * 2;
  const std::size_t bytes = slot_index::bytes_for(capacity);
  if (check_memory && max_memory_ != 0 && memory_bytes() + bytes > max_memory_) return nullptr;
  auto* si = static_cast<slot_index*>(std::calloc(1, bytes));
  if (si == nullptr) return nullptr;
  if (check_memory && max_memory_ != 0 && memory_bytes() + usable(si) > max_memory_) {  // the allocator rounds up
    std::free(si);
    return nullptr;
  }
  si->capacity = capacity;
  index_bytes_ += usable(si);
  if (old != nullptr) {
    si->used = old->used;
    si->live = old->live;
    si->generation = old->generation + 1;
    si->digest = old->digest;
    const std::size_t mask = capacity - 1;
    for (std::uint32_t j = 0; j < old->capacity; ++j) {
      const std::uintptr_t c = old->cells[j];
      if (c <= kErased) continue;
      const header* h = blob_of(c);
      std::size_t i = home_of(key_hash(std::string_view(key_of(h), key_len(h))), mask);
      while (si->cells[i] != kEmpty) i = (i + 1) & mask;
      si->cells[i] = c;
    }
    index_bytes_ -= usable(old);
    std::free(old);
  }
  slots_[slot] = si;
  return si;
}

std::size_t table::entry_size(std::size_t key_size, std::size_t value_size) {
  return sizeof(header) + extra_for(key_size, value_size) + key_size + value_size;
}

result<put_outcome> table::write(std::string_view key, std::uint64_t hash, std::string_view value, version v,
                                 bool tombstone, bool check_memory) {
  const std::uint32_t slot = slot_of(hash);
  slot_index* si = slots_[slot];
  if (si == nullptr || (si->used + si->erased + 1) * 5 > si->capacity * 4) {  // keep the load under 80%
    si = grow(slot, check_memory);
    if (si == nullptr) return memory_error(max_memory_);
  }
  bool found = false;
  const std::size_t i = si->probe(key, hash, found);
  header* old = found ? blob_of(si->cells[i]) : nullptr;
  if (old != nullptr && version_of(old) >= v) return put_outcome::stale;

  const std::uint64_t digest_change = entry_digest(hash, v, tombstone) ^
                                      (old != nullptr ? entry_digest(hash, version_of(old), is_tombstone(old)) : 0);
  const std::size_t extra = extra_for(key.size(), value.size());
  const std::size_t need = entry_size(key.size(), value.size());
  if (old != nullptr && usable(old) >= need && usable(old) < need + 64 &&
      extra_for(key_len(old), value_len(old)) == extra) {
    // Rewrite in place: same key, same form, a value that fits, no waste worth freeing.
    if (!is_tombstone(old)) --si->live, --live_;
    old->hlc = v.hlc;
    old->epoch = v.epoch;
    set_lens(old, key.size(), value.size(), tombstone);
    if (!value.empty()) std::memcpy(key_of(old) + key.size(), value.data(), value.size());
    if (!tombstone) ++si->live, ++live_;
    si->digest ^= digest_change;
    return put_outcome::updated;
  }
  const std::size_t freed = old != nullptr ? usable(old) : 0;
  const bool limited = check_memory && max_memory_ != 0;
  if (limited && memory_bytes() - freed + need > max_memory_) return memory_error(max_memory_);
  auto* h = static_cast<header*>(std::malloc(need));
  if (h == nullptr) return error{errc::out_of_memory, "the allocator refused " + std::to_string(need) + " bytes"};
  // The allocator's chunk is what counts, and its rounding depends on the
  // allocator (jemalloc's classes grow by a quarter): checked exactly.
  if (limited && memory_bytes() - freed + usable(h) > max_memory_) {
    std::free(h);
    return memory_error(max_memory_);
  }
  h->hlc = v.hlc;
  h->epoch = v.epoch;
  set_lens(h, key.size(), value.size(), tombstone);
  std::memcpy(key_of(h), key.data(), key.size());
  if (!value.empty()) std::memcpy(key_of(h) + key.size(), value.data(), value.size());
  blob_bytes_ += usable(h);

  put_outcome outcome = put_outcome::inserted;
  if (old != nullptr) {
    if (!is_tombstone(old)) --si->live, --live_;
    blob_bytes_ -= usable(old);
    std::free(old);
    outcome = put_outcome::updated;
  } else {
    if (si->cells[i] == kErased) --si->erased;
    ++si->used;
    ++used_;
  }
  if (!tombstone) ++si->live, ++live_;
  si->digest ^= digest_change;
  si->cells[i] = tag_of(hash) | reinterpret_cast<std::uintptr_t>(h);
  return outcome;
}

result<put_outcome> table::put(std::string_view key, std::string_view value, version v, bool check_memory) {
  return write(key, key_hash(key), value, v, false, check_memory);
}
result<put_outcome> table::put(std::string_view key, std::uint64_t hash, std::string_view value, version v,
                               bool check_memory) {
  return write(key, hash, value, v, false, check_memory);
}
result<put_outcome> table::remove(std::string_view key, version v, bool check_memory) {
  return write(key, key_hash(key), {}, v, true, check_memory);
}
result<put_outcome> table::remove(std::string_view key, std::uint64_t hash, version v, bool check_memory) {
  return write(key, hash, {}, v, true, check_memory);
}

bool table::purge(std::string_view key, std::uint64_t hash, version v) {
  slot_index* si = slots_[slot_of(hash)];
  if (si == nullptr) return false;
  bool found = false;
  const std::size_t i = si->probe(key, hash, found);
  if (!found) return false;
  header* h = blob_of(si->cells[i]);
  if (!is_tombstone(h) || version_of(h) != v) return false;
  si->digest ^= entry_digest(hash, v, true);
  blob_bytes_ -= usable(h);
  std::free(h);
  // An empty successor ends every probe sequence here: no marker needed.
  const std::size_t next = (i + 1) & (si->capacity - 1);
  if (si->cells[next] == kEmpty) {
    si->cells[i] = kEmpty;
  } else {
    si->cells[i] = kErased;
    ++si->erased;
  }
  --si->used;
  --used_;
  return true;
}

std::size_t table::drop_slot(std::uint32_t slot) {
  slot_index* si = slots_[slot];
  if (si == nullptr) return 0;
  std::size_t n = 0;
  for (std::uint32_t j = 0; j < si->capacity; ++j) {
    const std::uintptr_t c = si->cells[j];
    if (c <= kErased) continue;
    header* h = blob_of(c);
    blob_bytes_ -= usable(h);
    std::free(h);
    ++n;
  }
  used_ -= si->used;
  live_ -= si->live;
  index_bytes_ -= usable(si);
  std::free(si);
  slots_[slot] = nullptr;
  return n;
}

bool table::scan(std::uint32_t slot, cursor& c, std::size_t max_bytes,
                 function_ref<void(const entry_view&)> fn) const {
  const slot_index* si = slots_[slot];
  if (si == nullptr) return true;
  if (si->generation != c.generation) c = {si->generation, 0};  // the cells moved: start over
  std::size_t bytes = 0;
  while (c.position < si->capacity) {
    const std::uintptr_t cell = si->cells[c.position++];
    if (cell <= kErased) continue;
    const header* h = blob_of(cell);
    fn(view_of(h));
    bytes += key_len(h) + value_len(h) + 32;
    if (bytes >= max_bytes) break;
  }
  return c.position >= si->capacity;
}

void table::for_each(function_ref<void(const entry_view&)> fn) const {
  for (const slot_index* si : slots_) {
    if (si == nullptr) continue;
    for (std::uint32_t j = 0; j < si->capacity; ++j) {
      if (si->cells[j] > kErased) fn(view_of(blob_of(si->cells[j])));
    }
  }
}

std::size_t table::live_keys(std::uint32_t slot) const { return slots_[slot] ? slots_[slot]->live : 0; }
std::uint64_t table::digest(std::uint32_t slot) const { return slots_[slot] ? slots_[slot]->digest : 0; }
std::size_t table::entries(std::uint32_t slot) const { return slots_[slot] ? slots_[slot]->used : 0; }

table::probes table::probe_lengths() const {
  std::size_t longest = 0, total = 0, n = 0;
  for (const slot_index* si : slots_) {
    if (si == nullptr) continue;
    const std::size_t mask = si->capacity - 1;
    for (std::uint32_t j = 0; j < si->capacity; ++j) {
      const std::uintptr_t c = si->cells[j];
      if (c <= kErased) continue;
      const header* h = blob_of(c);
      const std::size_t home = home_of(key_hash(std::string_view(key_of(h), key_len(h))), mask);
      const std::size_t len = ((j - home) & mask) + 1;
      longest = std::max(longest, len);
      total += len;
      ++n;
    }
  }
  return {n == 0 ? 0.0 : static_cast<double>(total) / static_cast<double>(n), longest};
}

}  // namespace panal::store
