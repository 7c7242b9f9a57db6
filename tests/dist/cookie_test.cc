#include "dist/cookie.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

namespace panal::dist {
namespace {

TEST(Cookie, ProofVerifiesOnlyWithTheSameCookieNonceAndName) {
  const challenge nonce = random_challenge();
  const digest mac = prove("secret", nonce, "a@h:1");
  EXPECT_TRUE(verify("secret", nonce, "a@h:1", mac));
  EXPECT_FALSE(verify("Secret", nonce, "a@h:1", mac));
  EXPECT_FALSE(verify("secret", nonce, "b@h:1", mac)) << "a proof is bound to the prover's name";
  challenge other = nonce;
  other[0] ^= 1;
  EXPECT_FALSE(verify("secret", other, "a@h:1", mac)) << "a proof is bound to the challenge";
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
