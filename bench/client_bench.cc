// Store throughput through the TCP client: `n` operations of one kind,
// `pipeline` at a time (1: each waits for its answer), 16-byte keys,
// VALUE_BYTES-byte values (default 32). Prints operations per second.
//
//   build/release/client_bench ADDRESS DB set|get N PIPELINE [VALUE_BYTES]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "client/remote_client.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: client_bench ADDRESS DB set|get N PIPELINE [VALUE_BYTES]\n");
    return 2;
  }
  const std::string op = argv[3];
  const long n = std::atol(argv[4]);
  const long pipeline = std::max(1L, std::atol(argv[5]));
  auto c = panal::remote_client::connect({.addresses = {argv[1]}, .db = argv[2]});
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.err().message.c_str());
    return 1;
  }
  auto key = [](long i) {
    char k[32];
    std::snprintf(k, sizeof k, "key:%012ld", i % 1000000);
    return std::string(k, 16);
  };
  const std::string value(argc > 6 ? static_cast<std::size_t>(std::atol(argv[6])) : 32, 'v');
  const auto t0 = std::chrono::steady_clock::now();
  for (long done = 0; done < n;) {
    const long batch = std::min(pipeline, n - done);
    auto failed = [&](const panal::error& e) {
      std::fprintf(stderr, "%s after %ld operations: %s\n", op.c_str(), done, e.message.c_str());
      return 1;
    };
    if (batch == 1) {
      if (op == "set") {
        if (auto r = (*c)->set(key(done), value); !r) return failed(r.err());
      } else if (auto r = (*c)->get(key(done)); !r) {
        return failed(r.err());
      }
    } else if (op == "set") {
      std::vector<std::pair<std::string, std::string>> items;
      for (long i = 0; i < batch; ++i) items.emplace_back(key(done + i), value);
      if (auto r = (*c)->mset(items); !r) return failed(r.err());
    } else {
      std::vector<std::string> keys;
      for (long i = 0; i < batch; ++i) keys.push_back(key(done + i));
      if (auto r = (*c)->mget(keys); !r) return failed(r.err());
    }
    done += batch;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.0f\n", static_cast<double>(n) / secs);
  return 0;
}
