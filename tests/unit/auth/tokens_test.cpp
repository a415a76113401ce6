// TokenService against a real SQLite file: issue and verify, every attack on verification (alg
// none, HS256 keyed with the public key, unknown kid, tampered payload or signature, wrong
// aud / iss, expired, not yet valid, malformed claims), the clock-skew leeway, rotation keeping old
// tokens valid until they expire, the JWKS, and a second instance on the same database.

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <thread>

#include "auth/jwt.hpp"
#include "auth/migrations.hpp"
#include "auth/tokens.hpp"
#include "core/crypto.hpp"
#include "store/migrations.hpp"
#include "store_test_support.hpp"

namespace basalt::auth {
namespace {

namespace json = boost::json;
using store::testing::RunTask;

std::string Craft(const json::object& header, const json::object& payload, std::string_view signature) {
  return core::Base64UrlEncode(json::serialize(header)) + "." + core::Base64UrlEncode(json::serialize(payload)) + "." +
         core::Base64UrlEncode(signature);
}

std::string SignWith(const SigningKey& key, const json::object& header, const json::object& payload) {
  // Sign an arbitrary header with the real key (SignJwt fixes the header).
  const std::string input = core::Base64UrlEncode(json::serialize(header)) + "." + core::Base64UrlEncode(json::serialize(payload));
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                                reinterpret_cast<const unsigned char*>(key.private_key.data()), 32);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t len = sizeof sig;
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey);
  EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return input + "." + core::Base64UrlEncode(std::string_view(reinterpret_cast<char*>(sig), len));
}

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions options;
    options.path = (dir_.path() / "basalt.db").string();
    auto db = store::OpenSqlite(options);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    store::Migrator migrator(*db_, IdentityMigrations());
    ASSERT_TRUE(RunTask(migrator.Up()));
    tokens_ = std::make_unique<TokenService>(*db_, TokenOptions{});
    auto loaded = RunTask(tokens_->Load(0));
    ASSERT_TRUE(loaded) << loaded.error().message << loaded.error().cause;
  }
  void TearDown() override {
    tokens_.reset();
    if (db_) db_->Close();
  }
  /// The current signing key, read back from the table.
  SigningKey CurrentKey() {
    auto rows = RunTask(db_->Query(0, store::Statement{"SELECT kid, private_key, public_key, created_at FROM "
                                                       "basalt_auth_keys ORDER BY created_at DESC, kid DESC", {}}));
    EXPECT_TRUE(rows && !rows->rows.empty());
    SigningKey k;
    k.kid = std::get<std::string>(rows->rows[0][0]);
    k.private_key = *core::Base64UrlDecode(std::get<std::string>(rows->rows[0][1]));
    k.public_key = *core::Base64UrlDecode(std::get<std::string>(rows->rows[0][2]));
    return k;
  }
  json::object Claims(std::int64_t now) {
    return json::object{{"iss", "basalt"}, {"aud", "basalt"}, {"sub", "user-1"}, {"iat", now},
                        {"exp", now + 900},    {"jti", "j1"},      {"roles", json::array{"user"}}};
  }
  json::object Header(const SigningKey& k) { return json::object{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", k.kid}}; }

  store::testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<TokenService> tokens_;
};

TEST_F(TokensTest, IssuesTokensThatVerify) {
  auto issued = tokens_->Issue("user-1", {"user", "editor"}, "fam-1");
  ASSERT_TRUE(issued);
  EXPECT_EQ(issued->expires_in, 900);
  auto claims = tokens_->VerifyAt(issued->token, UnixNow());
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->subject, "user-1");
  EXPECT_EQ(claims->roles, (std::vector<std::string>{"user", "editor"}));
  EXPECT_EQ(claims->session_id, "fam-1");
  EXPECT_EQ(claims->expires_at - claims->issued_at, 900);
  EXPECT_FALSE(claims->jti.empty());
  auto decoded = DecodeJwt(issued->token);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->header.at("kid").as_string(), CurrentKey().kid);
  for (const char* claim : {"iss", "aud", "sub", "exp", "iat", "jti", "roles"})
    EXPECT_TRUE(decoded->payload.contains(claim)) << claim;
  // Load again (a restart) keeps the key.
  TokenService again(*db_, TokenOptions{});
  ASSERT_TRUE(RunTask(again.Load(0)));
  EXPECT_TRUE(again.VerifyAt(issued->token, UnixNow()));
}

TEST_F(TokensTest, ServiceTokensCarryTheClientAndItsScopesButNoRoles) {
  auto issued = tokens_->IssueService("client-1", {"records:read", "queues:produce"});
  ASSERT_TRUE(issued);
  auto claims = tokens_->VerifyAt(issued->token, UnixNow());
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->client_id, "client-1");
  EXPECT_EQ(claims->subject, "client-1");
  EXPECT_EQ(claims->scopes, (std::vector<std::string>{"records:read", "queues:produce"}));
  EXPECT_TRUE(claims->roles.empty());
  // A user token has no client: it never turns into a service principal.
  auto user = tokens_->VerifyAt(tokens_->Issue("user-1", {"admin"})->token, UnixNow());
  ASSERT_TRUE(user);
  EXPECT_TRUE(user->client_id.empty());
  // A token mixing both (a client with roles, or with a session) is refused, as is a bad scope claim.
  const SigningKey key = CurrentKey();
  const std::int64_t now = UnixNow();
  json::object mixed = Claims(now);
  mixed["client_id"] = "client-1";
  EXPECT_FALSE(tokens_->VerifyAt(SignWith(key, Header(key), mixed), now));
  json::object bad_scope = Claims(now);
  bad_scope.erase("roles");
  bad_scope["client_id"] = "client-1";
  bad_scope["scope"] = json::array{"records:read"};
  EXPECT_FALSE(tokens_->VerifyAt(SignWith(key, Header(key), bad_scope), now));
  bad_scope["scope"] = "records:read";
  EXPECT_TRUE(tokens_->VerifyAt(SignWith(key, Header(key), bad_scope), now));
}

TEST_F(TokensTest, VerifiedTokensAreCachedOnlyUntilTheyExpire) {
  TokenService brief(*db_, TokenOptions{.ttl_s = 1, .leeway_s = 0});
  ASSERT_TRUE(RunTask(brief.Load(0)));
  auto issued = brief.Issue("user-1", {"user"});
  ASSERT_TRUE(issued);
  auto first = RunTask(brief.Verify(0, issued->token));
  ASSERT_TRUE(first) << first.error().message;
  auto second = RunTask(brief.Verify(0, issued->token));  // from the cache
  ASSERT_TRUE(second);
  EXPECT_EQ(second->jti, first->jti);
  EXPECT_EQ(second->roles, first->roles);
  // A changed token is another key: it verifies from scratch and fails.
  std::string tampered = issued->token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(RunTask(brief.Verify(0, tampered)));
  // Expiry applies to cached tokens too.
  // Expiry applies to cached tokens too: poll with a deadline (exp is in whole seconds).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool expired = false;
  while (!expired && std::chrono::steady_clock::now() < deadline) {
    expired = !RunTask(brief.Verify(0, issued->token)).has_value();
    if (!expired) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(expired);
}

TEST_F(TokensTest, RejectsEveryAttack) {
  const SigningKey key = CurrentKey();
  const std::int64_t now = UnixNow();
  auto rejected = [&](const std::string& token, std::string_view reason) {
    auto r = tokens_->VerifyAt(token, now);
    EXPECT_FALSE(r) << reason;
    if (!r) {
      EXPECT_EQ(r.error().code, core::ErrorCode::kUnauthorized) << reason;
      EXPECT_NE(r.error().message.find(reason), std::string::npos) << r.error().message;
    }
  };
  // The genuine article verifies.
  ASSERT_TRUE(tokens_->VerifyAt(SignWith(key, Header(key), Claims(now)), now));
  // alg none, with and without a signature; alg in other case.
  rejected(Craft({{"alg", "none"}, {"kid", key.kid}}, Claims(now), ""), "algorithm");
  rejected(Craft({{"alg", "none"}}, Claims(now), ""), "algorithm");
  rejected(Craft({{"alg", "eddsa"}, {"kid", key.kid}}, Claims(now), "x"), "algorithm");
  rejected(Craft({{"kid", key.kid}}, Claims(now), "x"), "algorithm");
  // HS256 keyed with the public key (the classic key-confusion attack).
  {
    const json::object h{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key.kid}};
    const std::string input = core::Base64UrlEncode(json::serialize(h)) + "." + core::Base64UrlEncode(json::serialize(Claims(now)));
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.public_key.data(), static_cast<int>(key.public_key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    rejected(input + "." + core::Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len)), "algorithm");
    const std::string jwk_x = core::Base64UrlEncode(key.public_key);
    HMAC(EVP_sha256(), jwk_x.data(), static_cast<int>(jwk_x.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    rejected(input + "." + core::Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len)), "algorithm");
  }
  // Unknown kid, missing kid, embedded jwk.
  rejected(SignWith(key, {{"alg", "EdDSA"}, {"kid", "nope"}}, Claims(now)), "unknown key");
  rejected(SignWith(key, {{"alg", "EdDSA"}}, Claims(now)), "unknown key");
  rejected(SignWith(key, {{"alg", "EdDSA"}, {"kid", key.kid}, {"jwk", json::object{}}}, Claims(now)), "header");
  // A key we do not hold, under our kid.
  auto stranger = GenerateSigningKey(key.kid, now);
  ASSERT_TRUE(stranger);
  rejected(SignWith(*stranger, Header(key), Claims(now)), "signature");
  // Tampered payload (roles escalated) with the original signature.
  {
    const std::string good = SignWith(key, Header(key), Claims(now));
    json::object evil = Claims(now);
    evil["roles"] = json::array{"admin"};
    const std::size_t a = good.find('.'), b = good.rfind('.');
    rejected(good.substr(0, a) + "." + core::Base64UrlEncode(json::serialize(evil)) + good.substr(b), "signature");
    std::string flipped = good;
    flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
    rejected(flipped, "signature");
  }
  // Wrong audience, issuer; expired; from the future; not yet valid; bad claim types.
  auto with = [&](const char* name, json::value v) {
    json::object c = Claims(now);
    if (v.is_null()) c.erase(name);
    else c[name] = std::move(v);
    return SignWith(key, Header(key), c);
  };
  rejected(with("aud", "other"), "audience");
  rejected(with("aud", json::array{"x", "y"}), "audience");
  EXPECT_TRUE(tokens_->VerifyAt(with("aud", json::array{"x", "basalt"}), now));
  rejected(with("aud", nullptr), "audience");
  rejected(with("iss", "evil"), "issuer");
  rejected(with("iss", nullptr), "issuer");
  rejected(with("exp", now - 31), "expired");
  EXPECT_TRUE(tokens_->VerifyAt(with("exp", now - 29), now));  // within the 30 s leeway
  rejected(with("exp", "soon"), "claims");
  rejected(with("exp", nullptr), "claims");
  rejected(with("iat", now + 120), "future");
  rejected(with("nbf", now + 120), "not yet valid");
  rejected(with("sub", ""), "claims");
  rejected(with("sub", 5), "claims");
  rejected(with("roles", "admin"), "claims");
  rejected(with("roles", json::array{1}), "claims");
  // Malformed.
  rejected("abc", "malformed");
  rejected("a.b.c", "malformed");
  rejected("", "malformed");
}

TEST_F(TokensTest, RotationKeepsOldTokensValidUntilTheyExpire) {
  auto old_token = tokens_->Issue("user-1", {"user"});
  ASSERT_TRUE(old_token);
  const std::string old_kid = CurrentKey().kid;
  auto kid = RunTask(tokens_->Rotate(0));
  ASSERT_TRUE(kid) << kid.error().message;
  EXPECT_NE(*kid, old_kid);
  EXPECT_EQ(CurrentKey().kid, *kid);
  auto new_token = tokens_->Issue("user-1", {"user"});
  ASSERT_TRUE(new_token);
  EXPECT_EQ(DecodeJwt(new_token->token)->header.at("kid").as_string(), *kid);
  const std::int64_t now = UnixNow();
  EXPECT_TRUE(tokens_->VerifyAt(old_token->token, now));
  EXPECT_TRUE(tokens_->VerifyAt(new_token->token, now));
  auto jwks = json::parse(tokens_->Jwks()).as_object();
  ASSERT_EQ(jwks.at("keys").as_array().size(), 2u);
  for (const auto& k : jwks.at("keys").as_array()) {
    const auto& o = k.as_object();
    EXPECT_EQ(o.at("kty").as_string(), "OKP");
    EXPECT_EQ(o.at("crv").as_string(), "Ed25519");
    EXPECT_EQ(o.at("use").as_string(), "sig");
    EXPECT_EQ(o.at("alg").as_string(), "EdDSA");
    EXPECT_EQ(core::Base64UrlDecode(o.at("x").as_string())->size(), 32u);
    EXPECT_FALSE(o.contains("d"));  // never the private part
  }
  // Once every token of the old key has expired, the old key is gone from verification.
  const std::int64_t later = now + 900 + 30 + 5;
  auto r = tokens_->VerifyAt(old_token->token, later);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unknown key"), std::string::npos);
}

TEST_F(TokensTest, AnotherInstanceSeesARotationOnAnUnknownKid) {
  TokenService other(*db_, TokenOptions{});
  ASSERT_TRUE(RunTask(other.Load(0)));
  ASSERT_TRUE(RunTask(tokens_->Rotate(0)));
  auto token = tokens_->Issue("user-1", {"user"});
  ASSERT_TRUE(token);
  // `other` reloads at most once a second on an unknown kid: poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool ok = false;
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    ok = RunTask(other.Verify(0, token->token)).has_value();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace basalt::auth
