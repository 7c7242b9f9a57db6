#include "db/batch.h"

#include <string_view>
#include <unordered_set>

namespace panal {

std::vector<std::pair<std::size_t, std::size_t>> batch_waves(const std::vector<batch_op>& ops) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::unordered_set<std::string_view> keys;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!keys.insert(ops[i].key).second) {
      out.emplace_back(begin, i);
      keys.clear();
      keys.insert(ops[i].key);
      begin = i;
    }
  }
  if (begin < ops.size()) out.emplace_back(begin, ops.size());
  return out;
}

}  // namespace panal
