#include "dist/cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
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

digest prove(std::string_view cookie, const transcript& t, prover who) {
  static constexpr std::string_view context = "panal-dist-v2";
  std::string data;
  data.reserve(context.size() + 1 + 2 * sizeof(challenge) + 4 + t.dialer.size() + t.acceptor.size());
  data.append(context);
  data.push_back(static_cast<char>(who));
  data.append(reinterpret_cast<const char*>(t.dialer_nonce.data()), t.dialer_nonce.size());
  data.append(reinterpret_cast<const char*>(t.acceptor_nonce.data()), t.acceptor_nonce.size());
  // Length-prefixed, so that no two pairs of names give the same bytes.
  for (std::string_view name : {t.dialer, t.acceptor}) {
    const std::size_t n = std::min<std::size_t>(name.size(), 0xffff);
    data.push_back(static_cast<char>(n >> 8));
    data.push_back(static_cast<char>(n & 0xff));
    data.append(name.substr(0, n));
  }
  if (!t.channel.empty()) {  // TLS (plain TCP proofs stay as they were)
    data.push_back(static_cast<char>(t.channel.size() & 0xff));
    data.append(t.channel);
  }
  digest mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), cookie.data(), static_cast<int>(cookie.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  return mac;
}

bool verify(std::string_view cookie, const transcript& t, prover who, const digest& mac) {
  const digest expected = prove(cookie, t, who);
  return CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) == 0;
}

result<std::string> read_cookie_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return {errc::bad_argument, "cannot read cookie file " + path + ": every node of a cluster needs the same secret "
                                "there; create it with: echo 'a secret' > " + path + " && chmod 600 " + path +
                                " (or give another file with --cookie-file)"};
  }
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
