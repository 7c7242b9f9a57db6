#include "dist/cookie.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

namespace panal::dist {
namespace {

TEST(Cookie, AProofVerifiesOnlyInItsOwnTranscript) {
  const transcript t{random_challenge(), random_challenge(), "a@h:1", "b@h:2"};
  const digest mac = prove("secret", t, prover::dialer);
  EXPECT_TRUE(verify("secret", t, prover::dialer, mac));
  EXPECT_FALSE(verify("Secret", t, prover::dialer, mac));
  EXPECT_FALSE(verify("secret", t, prover::acceptor, mac)) << "a proof is bound to the direction";
  transcript u = t;
  u.dialer_nonce[0] ^= 1;
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "bound to the dialer's challenge";
  u = t;
  u.acceptor_nonce[31] ^= 1;
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "bound to the acceptor's challenge";
  u = t;
  u.dialer = "c@h:1";
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "bound to the dialer's name";
  u = t;
  u.acceptor = "c@h:2";
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "bound to the acceptor's name";
  // Names are length-prefixed: moving bytes from one name to the other
  // makes another transcript.
  const transcript v{t.dialer_nonce, t.acceptor_nonce, "ab", "c"}, w{t.dialer_nonce, t.acceptor_nonce, "a", "bc"};
  EXPECT_NE(prove("secret", v, prover::dialer), prove("secret", w, prover::dialer));
  // Swapping the roles (a reflection) gives another proof.
  const transcript r{t.acceptor_nonce, t.dialer_nonce, t.acceptor, t.dialer};
  EXPECT_FALSE(verify("secret", r, prover::acceptor, mac));
}

// Over TLS a proof is bound to the TLS session (its channel binding): a
// relay that ends TLS on both sides has two sessions, and a proof made in
// one does not verify in the other.
TEST(Cookie, AProofOverTlsVerifiesOnlyInItsOwnTlsSession) {
  const std::string one(32, 'a'), other(32, 'b');
  transcript t{random_challenge(), random_challenge(), "a@h:1", "b@h:2", one};
  const digest mac = prove("secret", t, prover::dialer);
  EXPECT_TRUE(verify("secret", t, prover::dialer, mac));
  transcript u = t;
  u.channel = other;
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "bound to the TLS session";
  u.channel = {};
  EXPECT_FALSE(verify("secret", u, prover::dialer, mac)) << "not valid over plain TCP";
}

// A fixed vector, so that another implementation can check its bytes
// (docs/protocol.md 3.3).
TEST(Cookie, TestVector) {
  transcript t{{}, {}, "n1@127.0.0.1:7001", "n2@127.0.0.1:7002"};
  for (int i = 0; i < 32; ++i) {
    t.dialer_nonce[i] = static_cast<unsigned char>(i);
    t.acceptor_nonce[i] = static_cast<unsigned char>(0x20 + i);
  }
  const digest mac = prove("secret", t, prover::dialer);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : mac) s += {hex[c >> 4], hex[c & 15]};
  EXPECT_EQ(s, "e5e6d0865398343585310ce52a0f7b241f65ecb10e7aee4947b1067dbd722193");
}

TEST(Cookie, ChallengesAreFresh) { EXPECT_NE(random_challenge(), random_challenge()); }

TEST(Cookie, FileReadableByOthersIsRefused) {
  const std::string path = ::testing::TempDir() + "panal_cookie_test";
  std::ofstream(path) << "  s3cret \n";
  ::chmod(path.c_str(), 0644);
  auto open = read_cookie_file(path);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.code(), errc::unauthorized);
  EXPECT_NE(open.err().message.find("chmod 600"), std::string::npos);
  ::chmod(path.c_str(), 0600);
  auto ok = read_cookie_file(path);
  ASSERT_TRUE(ok) << ok.err();
  EXPECT_EQ(*ok, "s3cret");
  std::remove(path.c_str());
  EXPECT_FALSE(read_cookie_file(path));
}

}  // namespace
}  // namespace panal::dist
