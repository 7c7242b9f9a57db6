// Bytes per key of the data table: 1,000,000 keys of 16 bytes with 32-byte
// values (the workload), as the table accounts them and as the
// process's resident memory grows.
//
//   build/release/store_memory_bench [keys]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "store/table.h"

namespace {

long rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  if (n <= 0 || n > 999999999999L) return 2;
  const long before = rss_kib();
  panal::store::table t;
  char key[32], value[48];  // room for any long; the keys used are 16 and 32 bytes
  for (long i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "key:%012ld", i);       // 16 bytes
    std::snprintf(value, sizeof value, "value:%026ld", i);  // 32 bytes
    if (!t.put(std::string_view(key, 16), std::string_view(value, 32), {1, 1})) return 1;
  }
  const long after = rss_kib();
  std::printf("keys %ld\n", n);
  std::printf("table_bytes_per_key %.1f\n", static_cast<double>(t.memory_bytes()) / static_cast<double>(n));
  std::printf("rss_bytes_per_key %.1f\n", static_cast<double>(after - before) * 1024.0 / static_cast<double>(n));
  return 0;
}
