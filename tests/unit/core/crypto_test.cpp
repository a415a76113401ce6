#include "core/crypto.hpp"

#include <gtest/gtest.h>

namespace basalt::core {
namespace {

// 32 bytes each, base64.
constexpr const char* kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr const char* kKey2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";  // URL-safe alphabet, no padding

KeyRing Ring(std::string_view text, std::string_view active = {}) {
  auto ring = KeyRing::Parse(text, active);
  EXPECT_TRUE(ring.has_value()) << (ring ? "" : ring.error().message);
  return ring ? *ring : KeyRing();
}

TEST(Crypto, RoundTripUnderTheActiveKey) {
  const KeyRing ring = Ring(std::string("k2:") + kKey2 + ", k1:" + kKey1);
  EXPECT_EQ(ring.active_id(), "k2");
  for (std::string plain : {std::string(), std::string("s3cret"), std::string(5000, 'x')}) {
    auto sealed = ring.Seal(plain, "posts\0token\0id1");
    ASSERT_TRUE(sealed.has_value());
    EXPECT_TRUE(sealed->starts_with("bs1.k2."));
    EXPECT_EQ(sealed->find(plain.empty() ? "\x01" : plain), std::string::npos);
    EXPECT_EQ(KeyRing::KeyIdOf(*sealed), "k2");
    auto opened = ring.Open(*sealed, "posts\0token\0id1");
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_EQ(*opened, plain);
  }
}

TEST(Crypto, NoncesAreRandomSoEqualPlaintextsDiffer) {
  const KeyRing ring = Ring(std::string("k1:") + kKey1);
  EXPECT_NE(*ring.Seal("same", "a"), *ring.Seal("same", "a"));
}

TEST(Crypto, TamperingIsDetected) {
  const KeyRing ring = Ring(std::string("k1:") + kKey1);
  const std::string sealed = *ring.Seal("attack at dawn", "aad");
  // Flip one character in every position of the payload: each must fail to open (or be malformed).
  const std::size_t start = std::string("bs1.k1.").size();
  for (std::size_t i = start; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    auto opened = ring.Open(bad, "aad");
    ASSERT_FALSE(opened.has_value()) << "position " << i;
    EXPECT_TRUE(opened.error().code == ErrorCode::kForbidden || opened.error().code == ErrorCode::kValidation);
  }
  EXPECT_EQ(ring.Open(sealed.substr(0, sealed.size() - 2), "aad").error().code, ErrorCode::kForbidden);
}

TEST(Crypto, WrongAssociatedDataFails) {
  const KeyRing ring = Ring(std::string("k1:") + kKey1);
  const std::string sealed = *ring.Seal("v", std::string("posts\0token\0row1", 16));
  auto opened = ring.Open(sealed, std::string("posts\0token\0row2", 16));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kForbidden);
}

TEST(Crypto, UnknownKeyIdFailsAndOldKeysStillOpen) {
  const KeyRing old_ring = Ring(std::string("k1:") + kKey1);
  const std::string sealed = *old_ring.Seal("v", "a");
  const KeyRing rotated = Ring(std::string("k2:") + kKey2 + "\nk1:" + kKey1);
  EXPECT_EQ(*rotated.Open(sealed, "a"), "v");  // readers accept any key of the ring
  const KeyRing only_new = Ring(std::string("k2:") + kKey2);
  auto opened = only_new.Open(sealed, "a");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
  // Same key material under another id is still the wrong key for the id in the value.
  const KeyRing renamed = Ring(std::string("k1:") + kKey2);
  EXPECT_EQ(renamed.Open(sealed, "a").error().code, ErrorCode::kForbidden);
}

TEST(Crypto, MalformedValues) {
  const KeyRing ring = Ring(std::string("k1:") + kKey1);
  for (std::string_view bad : {"", "plain", "bs1.", "bs1.k1", "bs1.k1.", "bs1.k1.AAAA", "bs2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                               "bs1.k!.AAAA", "bs1.k1.$$$$"}) {
    auto opened = ring.Open(bad, "a");
    ASSERT_FALSE(opened.has_value()) << bad;
    EXPECT_EQ(opened.error().code, ErrorCode::kValidation) << bad;
  }
}

TEST(Crypto, EmptyRingRefusesToSeal) {
  const KeyRing ring;
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.Seal("v", "a").error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(ring.BlindIndexes("c", "v").empty());
}

TEST(Crypto, BlindIndexIsDeterministicPerKeyAndContext) {
  const KeyRing ring = Ring(std::string("k2:") + kKey2 + ",k1:" + kKey1);
  const std::string a = ring.BlindIndex("posts.token", "v");
  EXPECT_EQ(a, ring.BlindIndex("posts.token", "v"));
  EXPECT_NE(a, ring.BlindIndex("posts.token", "w"));
  EXPECT_NE(a, ring.BlindIndex("posts.other", "v"));
  const auto all = ring.BlindIndexes("posts.token", "v");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], a);
  EXPECT_NE(all[0], all[1]);
  EXPECT_EQ(all[1], Ring(std::string("k1:") + kKey1).BlindIndex("posts.token", "v"));
  // The index key is derived, not the encryption key itself: HMAC under the raw key differs.
  EXPECT_EQ(a.size(), 43u);  // 32 bytes, base64url without padding
}

TEST(Crypto, ParseRejectsBadKeys) {
  struct Case {
    std::string text;
    std::string active;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"k1", "", "id:base64key"},
      {"k1:AAAA", "", "must be 32 bytes"},
      {std::string("k1:") + kKey1 + "AAAA", "", "'k1'"},
      {"k1:!!!!", "", "not valid base64"},
      {std::string("bad id!:") + kKey1, "", "entry 1"},
      {std::string(":") + kKey1, "", "key id"},
      {std::string("k1:") + kKey1 + ",k1:" + kKey2, "", "listed twice"},
      {std::string("k1:") + kKey1, "k9", "not in the key list"},
  };
  for (const auto& c : cases) {
    auto ring = KeyRing::Parse(c.text, c.active);
    ASSERT_FALSE(ring.has_value()) << c.text;
    EXPECT_EQ(ring.error().code, ErrorCode::kValidation);
    EXPECT_NE(ring.error().message.find(c.needle), std::string::npos) << ring.error().message;
    EXPECT_EQ(ring.error().message.find(kKey1), std::string::npos);  // never echoes key material
  }
}

TEST(Crypto, ParseAcceptsCommentsAndChoosesTheActiveKey) {
  const KeyRing ring = Ring(std::string("# old first\nk1:") + kKey1 + "\n\nk2:" + kKey2 + "\n", "k2");
  EXPECT_EQ(ring.active_id(), "k2");
  EXPECT_EQ(ring.ids(), (std::vector<std::string>{"k2", "k1"}));
  EXPECT_TRUE(Ring("").empty());
}

TEST(Crypto, RandomTokensAreBase64UrlAndDistinct) {
  const std::string a = RandomToken(), b = RandomToken();
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
  EXPECT_EQ(Base64UrlDecode(a).value_or("").size(), 32u);
  EXPECT_EQ(RandomToken(3).size(), 4u);
}

TEST(Crypto, ConstantTimeEqualsComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(Crypto, Sha256HexMatchesTheFips180Vectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, PartsHashPrefixesEachPartWithItsLength) {
  // The audit chain depends on this exact encoding: "<len>:<bytes>" per part.
  EXPECT_EQ(PartsHash().Add("ab").Add("c").HexDigest(), Sha256Hex("2:ab1:c"));
  EXPECT_NE(PartsHash().Add("ab").Add("c").HexDigest(), PartsHash().Add("a").Add("bc").HexDigest());
  EXPECT_EQ(PartsHash().Add(std::int64_t{-42}).HexDigest(), Sha256Hex("3:-42"));
  EXPECT_EQ(PartsHash().HexDigest(), Sha256Hex(""));
}

TEST(Crypto, Base64UrlRoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    const std::string text = Base64UrlEncode(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos);
    auto back = Base64UrlDecode(text);
    ASSERT_TRUE(back) << i;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 250));
  }
  EXPECT_FALSE(Base64UrlDecode("QQ=="));  // padding is not base64url-without-padding
  EXPECT_FALSE(Base64UrlDecode("QR"));    // non-zero trailing bits: not canonical
  EXPECT_FALSE(Base64UrlDecode("Q"));     // a dangling sextet
  EXPECT_FALSE(Base64UrlDecode("a+b/"));  // the standard alphabet
  EXPECT_EQ(Base64Decode("QQ=="), std::optional<std::string>("A"));
  // RFC 4648 §10 test vectors for the standard, padded form.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("\xfb\xff"), "+/8=");
}

}  // namespace
}  // namespace basalt::core
