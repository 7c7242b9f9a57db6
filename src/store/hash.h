// The key hash: XXH3-64 (libxxhash, seed 0) of the key's bytes.
//
// Promise: stable across builds, platforms and versions of panal; a key's
// slot is key_hash(key) % slot_count, so every node and every client can
// compute it. (XXH3-64 of the empty string is 0x2d06800538d394c2.)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace panal::store {

std::uint64_t key_hash(std::string_view key);
// Rendezvous weight of `member` for `slot`.
std::uint64_t rendezvous_weight(std::uint32_t slot, std::uint64_t member);

}  // namespace panal::store
