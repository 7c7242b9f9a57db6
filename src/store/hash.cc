#include "store/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace panal::store {

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

std::uint64_t rendezvous_weight(std::uint32_t slot, std::uint64_t member) {
  unsigned char bytes[4] = {static_cast<unsigned char>(slot), static_cast<unsigned char>(slot >> 8),
                            static_cast<unsigned char>(slot >> 16), static_cast<unsigned char>(slot >> 24)};
  return XXH3_64bits_withSeed(bytes, sizeof bytes, member);
}

}  // namespace panal::store
