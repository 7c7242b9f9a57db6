#include "db/batch.h"

#include <gtest/gtest.h>

namespace panal {
namespace {

std::vector<batch_op> ops_on(std::initializer_list<const char*> keys) {
  std::vector<batch_op> out;
  for (const char* k : keys) out.push_back({batch_kind::set, k, "v"});
  return out;
}

TEST(BatchWaves, DistinctKeysAreOneWave) {
  using w = std::vector<std::pair<std::size_t, std::size_t>>;
  EXPECT_EQ(batch_waves(ops_on({"a", "b", "c"})), (w{{0, 3}}));
  EXPECT_EQ(batch_waves({}), w{});
}

TEST(BatchWaves, ASecondUseOfAKeyStartsTheNextWave) {
  using w = std::vector<std::pair<std::size_t, std::size_t>>;
  // set a, get a, set a: each waits for the one before it.
  EXPECT_EQ(batch_waves(ops_on({"a", "a", "a"})), (w{{0, 1}, {1, 2}, {2, 3}}));
  // The second "a" is in a later wave than the first already: no cut for it.
  EXPECT_EQ(batch_waves(ops_on({"a", "b", "c", "b", "d", "a", "e"})), (w{{0, 3}, {3, 7}}));
  EXPECT_EQ(batch_waves(ops_on({"a", "b", "b", "a", "a"})), (w{{0, 2}, {2, 4}, {4, 5}}));
}

}  // namespace
}  // namespace panal
