#include "dist/cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <sstream>

namespace panal::dist {

challenge random_challenge() {
  challenge c;
  if (RAND_bytes(c.data(), static_cast<int>(c.size())) != 1) {
    std::random_device rd;  // OpenSSL's pool failed: still unpredictable enough for a nonce
    for (auto& b : c) b = static_cast<unsigned char>(rd());
  }
  return c;
}

digest prove(std::string_view cookie, const challenge& nonce, std::string_view prover_name) {
  static constexpr std::string_view context = "panal-dist-v1";
  std::string data;
  data.reserve(context.size() + nonce.size() + prover_name.size());
  data.append(context);
  data.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  data.append(prover_name);
  digest mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), cookie.data(), static_cast<int>(cookie.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  return mac;
}

bool verify(std::string_view cookie, const challenge& nonce, std::string_view prover_name, const digest& mac) {
  const digest expected = prove(cookie, nonce, prover_name);
  return CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) == 0;
}

result<std::string> read_cookie_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {errc::bad_argument, "cannot read cookie file " + path};
  if ((st.st_mode & 077) != 0) {
    return {errc::unauthorized, "cookie file " + path + " is accessible by other users; run: chmod 600 " + path};
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cookie = ss.str();
  const auto first = cookie.find_first_not_of(" \t\r\n");
  const auto last = cookie.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) return {errc::bad_argument, "cookie file " + path + " is empty"};
  return cookie.substr(first, last - first + 1);
}

}  // namespace panal::dist
