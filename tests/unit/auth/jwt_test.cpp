// The JWT codec: base64url strictness, Ed25519 sign/verify, and DecodeJwt's structure checks.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "auth/jwt.hpp"
#include "core/crypto.hpp"

namespace basalt::auth {
namespace {

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    auto decoded = core::Base64UrlDecode(core::Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(core::Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64Url, RejectsPaddingForeignCharactersAndNonCanonicalTails) {
  EXPECT_FALSE(core::Base64UrlDecode("YQ=="));   // padding
  EXPECT_FALSE(core::Base64UrlDecode("a+b/"));   // base64, not base64url
  EXPECT_FALSE(core::Base64UrlDecode("abcde"));  // length % 4 == 1
  EXPECT_FALSE(core::Base64UrlDecode("YR"));     // "a" is "YQ": trailing bits must be zero
  EXPECT_TRUE(core::Base64UrlDecode("YQ"));
  EXPECT_TRUE(core::Base64UrlDecode(""));
}

TEST(Jwt, SignsAndVerifiesWithEd25519) {
  auto key = GenerateSigningKey("k1", 1);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->private_key.size(), 32u);
  EXPECT_EQ(key->public_key.size(), 32u);
  auto pub = Ed25519PublicKey(key->private_key);
  ASSERT_TRUE(pub);
  EXPECT_EQ(*pub, key->public_key);
  auto token = SignJwt(*key, boost::json::object{{"sub", "u1"}});
  ASSERT_TRUE(token);
  auto decoded = DecodeJwt(*token);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->header.at("alg").as_string(), "EdDSA");
  EXPECT_EQ(decoded->header.at("kid").as_string(), "k1");
  EXPECT_EQ(decoded->header.at("typ").as_string(), "JWT");
  EXPECT_EQ(decoded->payload.at("sub").as_string(), "u1");
  EXPECT_EQ(decoded->signature.size(), 64u);
  EXPECT_TRUE(VerifyEd25519(key->public_key, decoded->signing_input, decoded->signature));
  // Another key, a changed message, a flipped signature bit: all fail.
  auto other = GenerateSigningKey("k2", 1);
  ASSERT_TRUE(other);
  EXPECT_FALSE(VerifyEd25519(other->public_key, decoded->signing_input, decoded->signature));
  EXPECT_FALSE(VerifyEd25519(key->public_key, decoded->signing_input + "x", decoded->signature));
  std::string bad = decoded->signature;
  bad[10] = static_cast<char>(bad[10] ^ 1);
  EXPECT_FALSE(VerifyEd25519(key->public_key, decoded->signing_input, bad));
  EXPECT_FALSE(VerifyEd25519(key->public_key, decoded->signing_input, ""));
  EXPECT_FALSE(VerifyEd25519("short", decoded->signing_input, decoded->signature));
}

TEST(Jwt, DecodeRejectsMalformedTokens) {
  const std::string h = core::Base64UrlEncode(R"({"alg":"EdDSA"})");
  const std::string p = core::Base64UrlEncode(R"({"sub":"x"})");
  const std::string s = core::Base64UrlEncode("sig");
  EXPECT_TRUE(DecodeJwt(h + "." + p + "." + s));
  EXPECT_TRUE(DecodeJwt(h + "." + p + "."));  // empty signature decodes (and never verifies)
  for (const std::string& bad : std::vector<std::string>{std::string(), h, h + "." + p, h + "." + p + "." + s + ".x", "." + p + "." + s,
                                h + ".!!." + s, core::Base64UrlEncode("[1]") + "." + p + "." + s,
                                core::Base64UrlEncode("not json") + "." + p + "." + s, h + "." + core::Base64UrlEncode("3") + "." + s,
                                std::string(9000, 'a')}) {
    auto d = DecodeJwt(bad);
    EXPECT_FALSE(d) << bad.substr(0, 80);
    if (!d) {
      EXPECT_EQ(d.error().code, core::ErrorCode::kUnauthorized);
    }
  }
}

}  // namespace
}  // namespace basalt::auth
