// Users and sessions against the real binary, on SQLite and (when BASALT_TEST_POSTGRES_URL is set)
// PostgreSQL: register, login, me, refresh rotation, reuse detection, logout, password change,
// lockout and recovery, expiry, JWT attacks (crafted with OpenSSL), JWKS, key rotation, admin
// create, the setup token, invites, mass assignment, and owner rules (user A cannot read, list,
// update or delete B's records, also via filter, expand and batch) with real users and tokens.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <csignal>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/crypto.hpp"
#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kAdminToken = "test-admin-token-0123456789abcdef0123";
constexpr const char* kPassword = "correct horse battery";


std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object() || !v.as_object().contains(key) || !v.as_object().at(key).is_string()) return "";
  return std::string(v.as_object().at(key).as_string());
}

std::string B64Url(std::string_view in) { return core::Base64UrlEncode(in); }
std::string FromB64Url(std::string_view in) { return core::Base64UrlDecode(in).value_or(""); }

/// The parts of a compact JWS.
struct Jws {
  json::object header, payload;
  std::string h64, p64, s64;
};
Jws Split(const std::string& token) {
  Jws j;
  const auto a = token.find('.'), b = token.rfind('.');
  j.h64 = token.substr(0, a);
  j.p64 = token.substr(a + 1, b - a - 1);
  j.s64 = token.substr(b + 1);
  j.header = ParseJson(FromB64Url(j.h64)).as_object();
  j.payload = ParseJson(FromB64Url(j.p64)).as_object();
  return j;
}

struct Client {
  std::uint16_t port;
  HttpResponse Call(std::string_view method, std::string_view target, std::string_view body = {},
                    const std::string& bearer = {}, Headers headers = {}) const {
    if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + bearer);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return Request(port, method, target, headers, body);
  }
  HttpResponse Admin(std::string_view method, std::string_view target, std::string_view body = {}) const {
    return Call(method, target, body, kAdminToken);
  }
  HttpResponse Register(const std::string& email, const std::string& password = kPassword,
                        const std::string& extra = {}) const {
    json::object o{{"email", email}, {"password", password}};
    std::string body = json::serialize(o);
    if (!extra.empty()) body = body.substr(0, body.size() - 1) + "," + extra + "}";
    return Call("POST", "/api/v1/auth/register", body);
  }
  HttpResponse Login(const std::string& email, const std::string& password = kPassword) const {
    return Call("POST", "/api/v1/auth/login", json::serialize(json::object{{"email", email}, {"password", password}}));
  }
  HttpResponse Refresh(const std::string& refresh) const {
    return Call("POST", "/api/v1/auth/refresh", json::serialize(json::object{{"refresh_token", refresh}}));
  }
};

/// A logged-in user.
struct Session {
  std::string id, access, refresh;
};

Session SignUp(const Client& c, const std::string& email) {
  auto r = c.Register(email);
  EXPECT_EQ(r.status, 201) << r.body;
  auto l = c.Login(email);
  EXPECT_EQ(l.status, 200) << l.body;
  auto body = ParseJson(l.body);
  return {Str(ParseJson(r.body), "id"), Str(body, "access_token"), Str(body, "refresh_token")};
}

std::string Code(const HttpResponse& r) { return Str(ParseJson(r.body), "code"); }

std::set<std::string> ErrorFields(const HttpResponse& r) {
  std::set<std::string> out;
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("errors")) return out;
  for (const auto& e : v.as_object().at("errors").as_array()) out.insert(Str(e, "field"));
  return out;
}

class AuthBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_.emplace_back("BASALT_AUTH__ADMIN_TOKEN", kAdminToken);
    // These tests log in and register far more often than the built-in auth rate limits allow;
    // the limits have their own tests (rate_limit_test).
    env_.emplace_back("BASALT_RATE_LIMIT__ENABLED", "false");
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }
  std::string Email(std::string_view who) const { return std::string(who) + "-" + suffix_ + "@example.com"; }
  ProcessOptions Options(Env extra = {}) const {
    ProcessOptions o;
    o.env = env_;
    for (auto& e : extra) o.env.push_back(std::move(e));
    return o;
  }
  Env env_;
  std::string suffix_;
};

TEST_P(AuthBackend, RegisterLoginMeAndBadInputs) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string email = Email("Ann");
  auto reg = c.Register("  " + email.substr(0, 3) + "X" + email.substr(3) + " ", kPassword, R"("name": "Ann")");
  ASSERT_EQ(reg.status, 201) << reg.body;
  auto user = ParseJson(reg.body).as_object();
  const std::string stored_email = "annx" + email.substr(3);  // trimmed and lower-cased
  EXPECT_EQ(Str(user, "email"), stored_email);
  EXPECT_EQ(Str(user, "name"), "Ann");
  EXPECT_EQ(json::serialize(user.at("roles")), R"(["user"])");
  EXPECT_FALSE(user.contains("password"));
  EXPECT_FALSE(user.contains("password_hash"));
  EXPECT_EQ(reg.Header("Location").value_or(""), "/api/v1/collections/users/records/" + Str(user, "id"));
  // The same address in another case is taken.
  auto dup = c.Register(stored_email.substr(0, 1) == "a" ? "A" + stored_email.substr(1) : stored_email);
  EXPECT_EQ(dup.status, 409) << dup.body;
  // Bad inputs.
  EXPECT_EQ(c.Register(Email("short"), "short").status, 422);
  EXPECT_EQ(ErrorFields(c.Register(Email("short"), "short")), std::set<std::string>{"password"});
  EXPECT_EQ(c.Register(Email("long"), std::string(1025, 'x')).status, 422);
  EXPECT_EQ(c.Register("not-an-email").status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/register", R"({"password": "correct horse battery"})").status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/register", R"({"email": 5, "password": "correct horse battery"})").status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/register", "not json").status, 400);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/register", "[]").status, 400);
  EXPECT_EQ(Request(server.port(), "POST", "/api/v1/auth/register", {{"Content-Type", "text/plain"}}, "{}").status, 415);
  // Mass assignment: roles, the hash, system fields, unknown fields.
  for (const char* extra : {R"("roles": ["admin"])", R"("password_hash": "$argon2id$x")", R"("id": "x")",
                            R"("version": 7)", R"("created_at": "2020-01-01T00:00:00Z")", R"("is_admin": true)"}) {
    auto r = c.Register(Email("mass"), kPassword, extra);
    EXPECT_EQ(r.status, 422) << extra << " " << r.body;
  }
  EXPECT_EQ(c.Login(Email("mass")).status, 401);  // none of them was created
  // Login: wrong password and unknown email answer the same.
  auto wrong = c.Login(stored_email, "wrong password!");
  auto unknown = c.Login(Email("nobody"));
  ASSERT_EQ(wrong.status, 401);
  ASSERT_EQ(unknown.status, 401);
  EXPECT_EQ(Str(ParseJson(wrong.body), "detail"), Str(ParseJson(unknown.body), "detail"));
  EXPECT_TRUE(wrong.HasHeader("WWW-Authenticate"));
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/login", R"({"email": "a@b.co"})").status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/login", R"({"email": "a@b.co", "password": "x", "extra": 1})").status, 422);
  // Login in another case works; the pair has the canonical shape.
  auto login = c.Login("  " + std::string(1, static_cast<char>(std::toupper(stored_email[0]))) + stored_email.substr(1));
  ASSERT_EQ(login.status, 200) << login.body;
  auto pair = ParseJson(login.body).as_object();
  EXPECT_EQ(Str(pair, "token_type"), "Bearer");
  EXPECT_EQ(pair.at("expires_in").as_int64(), 900);
  EXPECT_EQ(Str(pair, "refresh_token").size(), 43u);
  EXPECT_EQ(login.Header("Cache-Control").value_or(""), "no-store");
  const std::string access = Str(pair, "access_token");
  const Jws jws = Split(access);
  EXPECT_EQ(Str(jws.header, "alg"), "EdDSA");
  EXPECT_FALSE(Str(jws.header, "kid").empty());
  for (const char* claim : {"iss", "aud", "sub", "exp", "iat", "jti", "roles"}) EXPECT_TRUE(jws.payload.contains(claim)) << claim;
  EXPECT_EQ(Str(jws.payload, "sub"), Str(user, "id"));
  EXPECT_EQ(jws.payload.at("exp").as_int64() - jws.payload.at("iat").as_int64(), 900);
  // me
  auto me = c.Call("GET", "/api/v1/auth/me", {}, access);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(Str(ParseJson(me.body), "email"), stored_email);
  EXPECT_EQ(Str(ParseJson(me.body), "id"), Str(user, "id"));
  auto anon = c.Call("GET", "/api/v1/auth/me");
  EXPECT_EQ(anon.status, 401);
  EXPECT_TRUE(anon.HasHeader("WWW-Authenticate"));
  auto garbage = c.Call("GET", "/api/v1/auth/me", {}, "not-a-token");
  EXPECT_EQ(garbage.status, 401);
  EXPECT_NE(garbage.Header("WWW-Authenticate").value_or("").find(R"(error="invalid_token")"), std::string::npos);
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, kAdminToken).status, 403);  // the admin token is no user
  // The records API on users: own record only, and never the credentials or roles.
  const std::string mine = "/api/v1/collections/users/records/" + Str(user, "id");
  auto rec = c.Call("GET", mine, {}, access);
  ASSERT_EQ(rec.status, 200) << rec.body;
  for (const char* hidden : {"password_hash", "password", "roles"}) EXPECT_EQ(rec.body.find(hidden), std::string::npos) << hidden;
  EXPECT_EQ(c.Call("PATCH", mine, R"({"roles": ["admin"]})", access).status, 422);
  EXPECT_EQ(c.Call("PATCH", mine, R"({"password_hash": "x"})", access).status, 422);
  EXPECT_EQ(c.Call("PATCH", mine, R"({"id": "x"})", access).status, 422);
  auto renamed = c.Call("PATCH", mine, R"({"name": "Annie"})", access);
  EXPECT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(c.Call("POST", "/api/v1/collections/users/records", R"({"name": "x"})", access).status, 403);
  EXPECT_EQ(c.Call("DELETE", mine, {}, access).status, 403);
  auto me2 = ParseJson(c.Call("GET", "/api/v1/auth/me", {}, Str(ParseJson(c.Login(stored_email).body), "access_token")).body);
  EXPECT_EQ(json::serialize(me2.as_object().at("roles")), R"(["user"])");
  EXPECT_EQ(Str(me2, "name"), "Annie");
  // A user is not an admin: collections are closed to it; the built-in users collection stays.
  EXPECT_EQ(c.Call("GET", "/api/v1/collections", {}, access).status, 403);
  EXPECT_EQ(c.Admin("DELETE", "/api/v1/collections/users").status, 409);
}

TEST_P(AuthBackend, RefreshRotatesAndReuseRevokesTheFamily) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  Session s = SignUp(c, Email("rot"));
  auto r1 = c.Refresh(s.refresh);
  ASSERT_EQ(r1.status, 200) << r1.body;
  auto p1 = ParseJson(r1.body);
  const std::string second = Str(p1, "refresh_token");
  EXPECT_NE(second, s.refresh);
  EXPECT_EQ(Str(p1, "token_type"), "Bearer");
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, Str(p1, "access_token")).status, 200);
  // The spent token again: reuse. The whole family dies, including the newest token.
  auto reuse = c.Refresh(s.refresh);
  EXPECT_EQ(reuse.status, 401) << reuse.body;
  EXPECT_EQ(c.Refresh(second).status, 401);
  EXPECT_TRUE(server.WaitForLog("refresh token reuse"));
  // Bad inputs.
  EXPECT_EQ(c.Refresh("x").status, 401);
  EXPECT_EQ(c.Refresh(std::string(43, 'A')).status, 401);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/refresh", "{}").status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/refresh", R"({"refresh_token": 5})").status, 422);
  // Logout revokes one session; another session of the same user lives on.
  auto a = ParseJson(c.Login(Email("rot")).body);
  auto b = ParseJson(c.Login(Email("rot")).body);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/logout", json::serialize(json::object{{"refresh_token", Str(a, "refresh_token")}})).status, 204);
  EXPECT_EQ(c.Refresh(Str(a, "refresh_token")).status, 401);
  EXPECT_EQ(c.Refresh(Str(b, "refresh_token")).status, 200);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/logout", R"({"refresh_token": "nope"})").status, 401);
}

TEST_P(AuthBackend, PasswordChangeRevokesOtherSessions) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string email = Email("pw");
  Session a = SignUp(c, email);
  auto b = ParseJson(c.Login(email).body);
  const std::string change = R"({"current_password": "correct horse battery", "new_password": "new horse battery"})";
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/password", change).status, 401);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/password", R"({"current_password": "wrong one!", "new_password": "new horse battery"})",
                   a.access).status, 422);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/password", R"({"current_password": "correct horse battery", "new_password": "short"})",
                   a.access).status, 422);
  auto changed = c.Call("POST", "/api/v1/auth/password", change, a.access);
  ASSERT_EQ(changed.status, 204) << changed.body;
  EXPECT_EQ(c.Refresh(Str(b, "refresh_token")).status, 401);  // the other session is gone
  EXPECT_EQ(c.Refresh(a.refresh).status, 200);                 // this one stays
  EXPECT_EQ(c.Login(email).status, 401);
  EXPECT_EQ(c.Login(email, "new horse battery").status, 200);
}

TEST_P(AuthBackend, LockoutAndRecovery) {
  BasaltProcess server(Options({{"BASALT_AUTH__LOCKOUT_THRESHOLD", "3"}, {"BASALT_AUTH__LOCKOUT_BASE_S", "1"}}));
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string email = Email("lock");
  ASSERT_EQ(c.Register(email).status, 201);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.Login(email, "wrong password!").status, 401) << i;
  auto locked = c.Login(email);  // even the right password waits
  ASSERT_EQ(locked.status, 429) << locked.body;
  EXPECT_EQ(Code(locked), "rate_limited");
  EXPECT_EQ(locked.Header("Retry-After").value_or(""), "1");
  EXPECT_TRUE(server.WaitForLog("login lockout"));
  // Recovery: the lock lapses (poll with a deadline, no fixed sleep).
  EXPECT_TRUE(WaitUntil([&] { return c.Login(email).status == 200; }, 10s));
  // A success reset the counter: two failures do not lock again.
  EXPECT_EQ(c.Login(email, "wrong password!").status, 401);
  EXPECT_EQ(c.Login(email, "wrong password!").status, 401);
  EXPECT_EQ(c.Login(email).status, 200);
}

TEST_P(AuthBackend, ExpiredAccessTokenIsRejected) {
  BasaltProcess server(Options({{"BASALT_AUTH__ACCESS_TOKEN_TTL_S", "5"}, {"BASALT_AUTH__CLOCK_SKEW_S", "0"}}));
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  Session s = SignUp(c, Email("exp"));
  EXPECT_EQ(Split(s.access).payload.at("exp").as_int64() - Split(s.access).payload.at("iat").as_int64(), 5);
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, s.access).status, 200);
  HttpResponse last;
  EXPECT_TRUE(WaitUntil([&] { return (last = c.Call("GET", "/api/v1/auth/me", {}, s.access)).status == 401; }, 20s));
  EXPECT_NE(last.Header("WWW-Authenticate").value_or("").find("invalid_token"), std::string::npos);
  EXPECT_NE(Str(ParseJson(last.body), "detail").find("expired"), std::string::npos) << last.body;
  // The refresh token still gets a fresh access token.
  auto r = c.Refresh(s.refresh);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, Str(ParseJson(r.body), "access_token")).status, 200);
}

TEST_P(AuthBackend, CraftedTokensAreRejectedAndJwksVerifiesRealOnes) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  Session s = SignUp(c, Email("jwt"));
  const Jws real = Split(s.access);
  // JWKS: the real token verifies offline with the published key.
  auto jwks = c.Call("GET", "/.well-known/jwks.json");
  ASSERT_EQ(jwks.status, 200);
  auto keys = ParseJson(jwks.body).as_object().at("keys").as_array();
  ASSERT_GE(keys.size(), 1u);
  std::string x;
  for (const auto& k : keys) {
    EXPECT_EQ(Str(k, "kty"), "OKP");
    EXPECT_EQ(Str(k, "crv"), "Ed25519");
    EXPECT_EQ(Str(k, "use"), "sig");
    EXPECT_EQ(Str(k, "alg"), "EdDSA");
    EXPECT_FALSE(k.as_object().contains("d"));
    if (Str(k, "kid") == Str(real.header, "kid")) x = FromB64Url(Str(k, "x"));
  }
  ASSERT_EQ(x.size(), 32u);
  {
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), 32);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const std::string input = real.h64 + "." + real.p64;
    const std::string sig = FromB64Url(real.s64);
    ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey), 1);
    EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
  }
  auto rejected = [&](const std::string& token, const char* what) {
    auto r = c.Call("GET", "/api/v1/auth/me", {}, token);
    EXPECT_EQ(r.status, 401) << what << ": " << r.body;
    EXPECT_NE(r.Header("WWW-Authenticate").value_or("").find(R"(error="invalid_token")"), std::string::npos) << what;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << what;
    // An escalated token must not open admin routes either.
    EXPECT_EQ(c.Call("GET", "/api/v1/collections", {}, token).status, 401) << what;
  };
  json::object admin_payload = real.payload;
  admin_payload["roles"] = json::array{"admin"};
  const std::string evil = B64Url(json::serialize(admin_payload));
  auto header = [&](json::object h) { return B64Url(json::serialize(h)); };
  const std::string kid = Str(real.header, "kid");
  // alg none (empty signature, and the original one).
  rejected(header({{"alg", "none"}, {"typ", "JWT"}}) + "." + evil + ".", "alg none");
  rejected(header({{"alg", "none"}, {"kid", kid}}) + "." + evil + "." + real.s64, "alg none with kid");
  // HS256 keyed with the public key (raw and as its base64url text).
  for (const std::string& secret : {x, B64Url(x)}) {
    const std::string input = header({{"alg", "HS256"}, {"typ", "JWT"}, {"kid", kid}}) + "." + evil;
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    rejected(input + "." + B64Url(std::string_view(reinterpret_cast<char*>(mac), len)), "HS256 with the public key");
  }
  // Unknown kid; tampered payload under the real signature; a signature from another key.
  rejected(header({{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", "unknown-kid"}}) + "." + real.p64 + "." + real.s64, "unknown kid");
  rejected(real.h64 + "." + evil + "." + real.s64, "tampered payload");
  {
    unsigned char seed[32] = {7};
    EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const std::string input = real.h64 + "." + evil;
    unsigned char sig[64];
    size_t len = sizeof sig;
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey);
    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    rejected(input + "." + B64Url(std::string_view(reinterpret_cast<char*>(sig), len)), "foreign key");
  }
  rejected(real.h64 + "." + real.p64, "two parts");
  rejected(s.access + "x", "bad signature encoding");
  // The real one still works.
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, s.access).status, 200);
}

TEST_P(AuthBackend, OwnerRulesKeepUsersApart) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string notes = "notes" + suffix_, links = "links" + suffix_;
  const std::string owner_rule = "owner = @request.auth.id";
  auto made = c.Admin("POST", "/api/v1/collections", R"({"name": ")" + notes + R"(", "fields": [
      {"name": "text", "type": "text"}, {"name": "owner", "type": "relation", "collection": "users", "on_delete": "cascade"}],
      "rules": {"list": ")" + owner_rule + R"(", "view": ")" + owner_rule + R"(", "create": ")" + owner_rule +
                                                   R"(", "update": ")" + owner_rule + R"(", "delete": ")" + owner_rule + R"("}})");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_EQ(c.Admin("POST", "/api/v1/collections", R"({"name": ")" + links + R"(", "fields": [
      {"name": "note", "type": "relation", "collection": ")" + notes + R"("}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  Session a = SignUp(c, Email("ownera"));
  Session b = SignUp(c, Email("ownerb"));
  const std::string base = "/api/v1/collections/" + notes + "/records";
  auto na = c.Call("POST", base, R"({"text": "A's secret", "owner": ")" + a.id + "\"}", a.access);
  ASSERT_EQ(na.status, 201) << na.body;
  const std::string a_note = Str(ParseJson(na.body), "id");
  // B cannot create a record owned by A (create rule checked against the new record).
  EXPECT_EQ(c.Call("POST", base, R"({"text": "forged", "owner": ")" + a.id + "\"}", b.access).status, 403);
  auto nb = c.Call("POST", base, R"({"text": "B's", "owner": ")" + b.id + "\"}", b.access);
  ASSERT_EQ(nb.status, 201) << nb.body;
  const std::string b_note = Str(ParseJson(nb.body), "id");
  // Read, update, delete A's record as B: 404 (not 403), and nothing changes.
  EXPECT_EQ(c.Call("GET", base + "/" + a_note, {}, b.access).status, 404);
  EXPECT_EQ(c.Call("PATCH", base + "/" + a_note, R"({"text": "pwned"})", b.access).status, 404);
  EXPECT_EQ(c.Call("PUT", base + "/" + a_note, R"({"text": "pwned", "owner": ")" + b.id + "\"}", b.access).status, 404);
  EXPECT_EQ(c.Call("DELETE", base + "/" + a_note, {}, b.access).status, 404);
  // Lists and filters only ever show B's own.
  auto list = ParseJson(c.Call("GET", base, {}, b.access).body).as_object().at("items").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(Str(list[0], "id"), b_note);
  auto filtered = c.Call("GET", base + "?filter=owner%20%3D%20%22" + a.id + "%22", {}, b.access);
  ASSERT_EQ(filtered.status, 200) << filtered.body;
  EXPECT_TRUE(ParseJson(filtered.body).as_object().at("items").as_array().empty());
  auto by_id = c.Call("GET", base + "?filter=id%20%3D%20%22" + a_note + "%22&count=true", {}, b.access);
  EXPECT_EQ(ParseJson(by_id.body).as_object().at("total").as_int64(), 0);
  // Batch: updating or deleting A's record fails as a whole with 404 on that operation.
  const std::string batch = R"({"operations": [
      {"method": "PATCH", "path": ")" + base + "/" + b_note + R"(", "body": {"text": "mine"}},
      {"method": "DELETE", "path": ")" + base + "/" + a_note + R"("}]})";
  auto br = c.Call("POST", "/api/v1/batch", batch, b.access);
  EXPECT_EQ(br.status, 404) << br.body;
  EXPECT_EQ(ParseJson(br.body).as_object().at("operation").as_int64(), 1);
  // Expand: B links to A's note; the expansion stays empty for B, full for A.
  auto link = c.Call("POST", "/api/v1/collections/" + links + "/records", R"({"note": ")" + a_note + "\"}", b.access);
  ASSERT_EQ(link.status, 201) << link.body;
  const std::string link_path = "/api/v1/collections/" + links + "/records/" + Str(ParseJson(link.body), "id") + "?expand=note";
  auto eb = ParseJson(c.Call("GET", link_path, {}, b.access).body).as_object();
  EXPECT_FALSE(eb.at("expand").as_object().contains("note")) << json::serialize(eb);
  auto ea = ParseJson(c.Call("GET", link_path, {}, a.access).body).as_object();
  ASSERT_TRUE(ea.at("expand").as_object().contains("note")) << json::serialize(ea);
  EXPECT_EQ(Str(ea.at("expand").as_object().at("note"), "text"), "A's secret");
  // A still sees its record unchanged; anonymous sees nothing.
  auto mine = c.Call("GET", base + "/" + a_note, {}, a.access);
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(Str(ParseJson(mine.body), "text"), "A's secret");
  EXPECT_EQ(c.Call("GET", base + "/" + a_note).status, 404);
  EXPECT_TRUE(ParseJson(c.Call("GET", base).body).as_object().at("items").as_array().empty());
  // Users see only their own user record.
  EXPECT_EQ(c.Call("GET", "/api/v1/collections/users/records/" + a.id, {}, b.access).status, 404);
  auto users = ParseJson(c.Call("GET", "/api/v1/collections/users/records", {}, b.access).body).as_object().at("items").as_array();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(Str(users[0], "id"), b.id);
  EXPECT_EQ(c.Call("PATCH", "/api/v1/collections/users/records/" + a.id, R"({"name": "x"})", b.access).status, 404);
}

// OWASP API4 (unrestricted resource consumption), as a signed-in user would try it: every request
// that asks for too much is refused with a 4xx problem before it costs the server, and nothing
// stored is lost. The auth routes' own limits are checked with the rate limiter on.
TEST_P(AuthBackend, ResourceConsumptionIsBounded) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string items = "api4" + suffix_;
  ASSERT_EQ(c.Admin("POST", "/api/v1/collections", R"({"name": ")" + items + R"(", "fields": [{"name": "n", "type": "integer"}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  const std::string base = "/api/v1/collections/" + items + "/records";
  Session u = SignUp(c, Email("api4"));
  ASSERT_EQ(c.Call("POST", base, R"({"n": 1})", u.access).status, 201);
  auto problem = [](const HttpResponse& r) {
    return r.Header("Content-Type").value_or("").starts_with("application/problem+json");
  };
  // Page size beyond the maximum (500).
  auto big_page = c.Call("GET", base + "?limit=100000", {}, u.access);
  EXPECT_EQ(big_page.status, 400) << big_page.body;
  EXPECT_TRUE(problem(big_page));
  // A filter nested past the parser's depth limit, and one longer than its length limit.
  std::string deep(40, '(');
  deep += "n = 1" + std::string(40, ')');
  auto nested = c.Call("GET", base + "?filter=" + UrlEncode(deep), {}, u.access);
  EXPECT_EQ(nested.status, 400) << nested.body;
  EXPECT_TRUE(problem(nested));
  std::string long_filter = "n = 1";
  while (long_filter.size() < 5000) long_filter += " || n = 1";
  auto lengthy = c.Call("GET", base + "?filter=" + UrlEncode(long_filter), {}, u.access);
  EXPECT_GE(lengthy.status, 400);
  EXPECT_LT(lengthy.status, 500) << lengthy.body;
  // A body over the 1 MiB default, JSON nested past max_json_depth, a batch over 100 operations.
  auto huge = c.Call("POST", base, R"({"n": 1, "pad": ")" + std::string(2 << 20, 'x') + "\"}", u.access);
  EXPECT_EQ(huge.status, 413);
  std::string deep_json = R"({"n": )" + std::string(200, '[') + std::string(200, ']') + "}";
  auto deep_body = c.Call("POST", base, deep_json, u.access);
  EXPECT_EQ(deep_body.status, 400) << deep_body.body;
  std::string ops = R"({"operations": [)";
  for (int i = 0; i < 101; ++i) ops += std::string(i ? "," : "") + R"({"method": "POST", "path": ")" + base + R"(", "body": {"n": 2}})";
  ops += "]}";
  auto batch = c.Call("POST", "/api/v1/batch", ops, u.access);
  EXPECT_GE(batch.status, 400);
  EXPECT_LT(batch.status, 500) << batch.body;
  // Nothing refused was stored; the one record is intact.
  auto all = ParseJson(c.Call("GET", base + "?count=true", {}, u.access).body);
  EXPECT_EQ(all.at("items").as_array().size(), 1u) << json::serialize(all);
}

// The built-in per-route limit on login (30/min, burst 10) holds with the rate limiter at its
// defaults: a burst of logins, each for another email (so no account lockout) and fewer than the
// per-IP lockout threshold (20), ends in the limiter's 429 with Retry-After.
TEST_P(AuthBackend, LoginFloodsAreRateLimited) {
  Env env;
  for (const auto& e : env_) {
    if (e.first != "BASALT_RATE_LIMIT__ENABLED") env.push_back(e);
  }
  BasaltProcess server(ProcessOptions{{}, env});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  std::optional<HttpResponse> limited;
  for (int i = 0; i < 15 && !limited; ++i) {
    auto r = c.Login(Email("flood" + std::to_string(i)), "wrong password!");
    if (r.status == 429) {
      limited = r;
    } else {
      EXPECT_EQ(r.status, 401) << r.body;
    }
  }
  ASSERT_TRUE(limited.has_value()) << "15 logins at once must hit the login route's limit (burst 10)";
  EXPECT_TRUE(limited->Header("Content-Type").value_or("").starts_with("application/problem+json"));
  EXPECT_GT(std::stoi(limited->Header("Retry-After").value_or("0")), 0);
  EXPECT_EQ(limited->Header("RateLimit-Remaining").value_or(""), "0") << "the limiter answered, not the lockout";
}

// "Admin actions on other users' data": an admin user's record writes bypass the rules, so each is
// audited (admin.data_write, actor = that user); a plain user's writes are not.
TEST_P(AuthBackend, AdminUsersWritesOnRecordsAreAudited) {
  BasaltProcess server(Options());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  const std::string notes = "adm" + suffix_;
  const std::string rule = "owner = @request.auth.id";
  ASSERT_EQ(c.Admin("POST", "/api/v1/collections", R"({"name": ")" + notes + R"(", "fields": [
      {"name": "text", "type": "text"}, {"name": "owner", "type": "text"}],
      "rules": {"list": ")" + rule + R"(", "view": ")" + rule + R"(", "create": ")" + rule + R"(", "update": ")" + rule +
                                  R"(", "delete": ")" + rule + R"("}})").status, 201);
  Session owner = SignUp(c, Email("admowner"));
  Session admin_email_holder = SignUp(c, Email("admuser"));
  ASSERT_EQ(c.Admin("PUT", "/api/v1/users/" + admin_email_holder.id + "/roles/admin").status, 204);
  const std::string base = "/api/v1/collections/" + notes + "/records";
  auto made = c.Call("POST", base, R"({"text": "mine", "owner": ")" + owner.id + "\"}", owner.access);
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string path = base + "/" + Str(ParseJson(made.body), "id");
  auto audited = [&](const std::string& actor) {
    auto r = c.Admin("GET", "/api/v1/audit-log?action=admin.data_write&actor_id=" + actor);
    EXPECT_EQ(r.status, 200) << r.body;
    return ParseJson(r.body).at("items").as_array();
  };
  EXPECT_TRUE(audited(owner.id).empty()) << "a user's own writes under the rules are not admin actions";
  // The admin user (its token was issued before the role: stored roles apply) edits the owner's record.
  auto edited = c.Call("PATCH", path, R"({"text": "edited by an admin"})", admin_email_holder.access);
  ASSERT_EQ(edited.status, 200) << edited.body;
  auto items = audited(admin_email_holder.id);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(Str(items[0], "target"), "PATCH " + path);
  EXPECT_EQ(Str(items[0], "outcome"), "success");
  // Reads are not recorded.
  EXPECT_EQ(c.Call("GET", path, {}, admin_email_holder.access).status, 200);
  EXPECT_EQ(audited(admin_email_holder.id).size(), 1u);
}

TEST_P(AuthBackend, AdminCreateCliInvitesAndRegistrationModes) {
  TempDir data;
  const std::string email = Email("boss");
  const std::string pwfile = data.path() + "/pw.txt";
  std::ofstream(pwfile) << "boss password 123\n";
  Env env = env_;
  env.emplace_back("BASALT_AUTH__REGISTRATION", "invite");
  auto created = RunBasalt({"admin", "create", "--email", email, "--password-file", pwfile, "--data-dir", data.path()}, env);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  auto again = RunBasalt({"admin", "create", "--email", email, "--password-file", pwfile, "--data-dir", data.path()}, env);
  EXPECT_EQ(again.exit_code, 1) << again.output;
  std::ofstream(data.path() + "/short.txt") << "short\n";
  EXPECT_EQ(RunBasalt({"admin", "create", "--email", Email("x"), "--password-file", data.path() + "/short.txt",
                       "--data-dir", data.path()}, env).exit_code, 2);
  EXPECT_EQ(RunBasalt({"admin", "create", "--email", Email("x"), "--password-file", data.path() + "/none.txt",
                       "--data-dir", data.path()}, env).exit_code, 2);
  EXPECT_EQ(RunBasalt({"admin", "create", "--email", "bad", "--password-file", pwfile, "--data-dir", data.path()}, env).exit_code, 2);

  ProcessOptions o;
  o.env = env;
  o.data_dir = data.path();
  BasaltProcess server(o);
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  auto login = c.Login(email, "boss password 123");
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string boss = Str(ParseJson(login.body), "access_token");
  EXPECT_EQ(json::serialize(Split(boss).payload.at("roles")), R"(["admin"])");
  // An admin user is a superuser: collections open up.
  EXPECT_EQ(c.Call("GET", "/api/v1/collections", {}, boss).status, 200);
  // Invite-only registration.
  EXPECT_EQ(c.Register(Email("inv")).status, 422);  // no invite
  EXPECT_EQ(c.Register(Email("inv"), kPassword, R"("invite": "inv_forged")").status, 403);
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/invites").status, 401);
  auto invite = c.Call("POST", "/api/v1/auth/invites", "{}", boss);
  ASSERT_EQ(invite.status, 201) << invite.body;
  const std::string token = Str(ParseJson(invite.body), "token");
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/invites", R"({"ttl_s": 1})", boss).status, 422);
  auto joined = c.Register(Email("inv"), kPassword, R"("invite": ")" + token + "\"");
  ASSERT_EQ(joined.status, 201) << joined.body;
  EXPECT_EQ(c.Register(Email("inv2"), kPassword, R"("invite": ")" + token + "\"").status, 403);  // single use
  // A plain user may not create invites.
  auto user_access = Str(ParseJson(c.Login(Email("inv")).body), "access_token");
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/invites", "{}", user_access).status, 403);
  EXPECT_EQ(c.Admin("POST", "/api/v1/auth/invites").status, 201);  // the admin token may
}

TEST_P(AuthBackend, ClosedRegistration) {
  BasaltProcess server(Options({{"BASALT_AUTH__REGISTRATION", "closed"}}));
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  auto r = c.Register(Email("closed"));
  EXPECT_EQ(r.status, 403) << r.body;
}

std::vector<std::string> Changes(const json::value& item) {
  std::vector<std::string> out;
  for (const auto& c : item.as_object().at("changes").as_array()) out.emplace_back(c.as_string());
  return out;
}

// Identity events in the audit log, read back through GET /api/v1/audit-log with filters (exact
// targets and request ids: on PostgreSQL other tests share the log); the chain verifies after.
TEST_P(AuthBackend, IdentityEventsGoToTheAuditLog) {
  TempDir data;
  ProcessOptions o = Options({{"BASALT_AUTH__LOCKOUT_THRESHOLD", "3"},
                              {"BASALT_AUTH__LOCKOUT_BASE_S", "600"},
                              {"BASALT_AUTH__IP_LOCKOUT_THRESHOLD", "12"}});
  o.data_dir = data.path();
  {
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    const Client c{server.port()};
    auto events = [&](const std::string& query) {
      auto r = c.Admin("GET", "/api/v1/audit-log?" + query);
      EXPECT_EQ(r.status, 200) << query << " " << r.body;
      auto v = ParseJson(r.body);
      return v.is_object() && v.as_object().contains("items") ? v.as_object().at("items").as_array() : json::array();
    };
    auto request_id = [](const HttpResponse& r) { return r.Header("X-Request-Id").value_or("?"); };

    // Registration: the new user is the actor.
    const std::string email = Email("aud");
    auto reg = c.Register(email);
    ASSERT_EQ(reg.status, 201) << reg.body;
    const std::string id = Str(ParseJson(reg.body), "id");
    const std::string target = "user:" + id;
    auto registered = events("action=auth.registered&target=" + target);
    ASSERT_EQ(registered.size(), 1u);
    EXPECT_EQ(Str(registered[0], "actor_kind"), "user");
    EXPECT_EQ(Str(registered[0], "actor_id"), id);
    EXPECT_EQ(Str(registered[0], "outcome"), "success");
    EXPECT_EQ(Str(registered[0], "request_id"), request_id(reg));

    // Logins: a failure (anonymous actor, the account as target), then a success (the user acts).
    auto bad = c.Login(email, "wrong password!");
    ASSERT_EQ(bad.status, 401);
    auto good = c.Login(email);
    ASSERT_EQ(good.status, 200);
    auto logins = events("action=auth.login&target=" + target);
    ASSERT_EQ(logins.size(), 2u);
    EXPECT_EQ(Str(logins[0], "outcome"), "success");
    EXPECT_EQ(Str(logins[0], "actor_kind"), "user");
    EXPECT_EQ(Str(logins[0], "actor_id"), id);
    EXPECT_EQ(Str(logins[0], "request_id"), request_id(good));
    EXPECT_EQ(Str(logins[1], "outcome"), "failure");
    EXPECT_EQ(Str(logins[1], "actor_kind"), "anonymous");
    EXPECT_EQ(Str(logins[1], "actor_id"), "");
    EXPECT_EQ(Str(logins[1], "ip"), "127.0.0.1");
    EXPECT_EQ(Str(logins[1], "request_id"), request_id(bad));
    EXPECT_EQ(events("action=auth.*&outcome=failure&target=" + target).size(), 1u);
    EXPECT_EQ(events("action=auth.login&actor_kind=user&actor_id=" + id).size(), 1u);

    // An address nobody has: its SHA-256, never the address; input that is not an address at
    // all (maybe a password typed in the wrong box): nothing derived from it.
    const std::string ghost = Email("ghost");
    ASSERT_EQ(c.Login(ghost, "ghost password 1").status, 401);
    auto ghosts = events("action=auth.login&target=email_sha256:" + core::Sha256Hex(ghost));
    ASSERT_EQ(ghosts.size(), 1u);
    EXPECT_EQ(Str(ghosts[0], "outcome"), "failure");
    EXPECT_EQ(Str(ghosts[0], "actor_kind"), "anonymous");
    const std::string secretish = "hunter2-" + suffix_;
    auto typo = c.Login(secretish, "ghost password 1");
    ASSERT_EQ(typo.status, 401);
    bool found = false;
    for (const auto& item : events("action=auth.login&target=email:invalid&limit=500"))
      found = found || Str(item, "request_id") == request_id(typo);
    EXPECT_TRUE(found);
    auto all = c.Admin("GET", "/api/v1/audit-log?limit=500");
    EXPECT_EQ(all.body.find(ghost), std::string::npos);
    EXPECT_EQ(all.body.find(secretish), std::string::npos);
    EXPECT_EQ(all.body.find("password!"), std::string::npos);
    EXPECT_EQ(all.body.find("ghost password"), std::string::npos);

    // Refresh token reuse: the family dies, recorded as denied against the user.
    const std::string refresh = Str(ParseJson(good.body), "refresh_token");
    ASSERT_EQ(c.Refresh(refresh).status, 200);
    auto reuse = c.Refresh(refresh);
    ASSERT_EQ(reuse.status, 401);
    auto reused = events("action=auth.refresh_reuse&target=" + target);
    ASSERT_EQ(reused.size(), 1u);
    EXPECT_EQ(Str(reused[0], "outcome"), "denied");
    EXPECT_EQ(Str(reused[0], "actor_kind"), "anonymous");
    EXPECT_EQ(Str(reused[0], "request_id"), request_id(reuse));
    EXPECT_EQ(c.Refresh("not-a-token").status, 401);  // an unknown token is no reuse
    EXPECT_EQ(events("action=auth.refresh_reuse&target=" + target).size(), 1u);

    // Logout (the refresh token names the user), and an unknown token (nothing recorded).
    auto session = ParseJson(c.Login(email).body);
    const std::string access = Str(session, "access_token");
    ASSERT_EQ(c.Call("POST", "/api/v1/auth/logout",
                     json::serialize(json::object{{"refresh_token", Str(session, "refresh_token")}})).status, 204);
    EXPECT_EQ(c.Call("POST", "/api/v1/auth/logout", R"({"refresh_token": "nope"})").status, 401);
    auto logouts = events("action=auth.logout&target=" + target);
    ASSERT_EQ(logouts.size(), 1u);
    EXPECT_EQ(Str(logouts[0], "actor_id"), id);

    // Password changes: a wrong current password, a policy failure (not recorded: nothing was
    // checked), a success. `changes` names the field, never a value.
    ASSERT_EQ(c.Call("POST", "/api/v1/auth/password", R"({"current_password": "wrong one!", "new_password": "new horse battery"})",
                     access).status, 422);
    ASSERT_EQ(c.Call("POST", "/api/v1/auth/password", R"({"current_password": "correct horse battery", "new_password": "short"})",
                     access).status, 422);
    ASSERT_EQ(c.Call("POST", "/api/v1/auth/password",
                     R"({"current_password": "correct horse battery", "new_password": "new horse battery"})", access).status,
              204);
    auto changes = events("action=auth.password_changed&target=" + target);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(Str(changes[0], "outcome"), "success");
    EXPECT_EQ(Str(changes[1], "outcome"), "failure");
    for (const auto& item : changes) {
      EXPECT_EQ(Str(item, "actor_kind"), "user");
      EXPECT_EQ(Str(item, "actor_id"), id);
      EXPECT_EQ(Changes(item), std::vector<std::string>{"password"});
    }

    // An account lockout, then a refused attempt (even with the right password).
    const std::string locked_email = Email("aud-lock");
    auto locked_reg = c.Register(locked_email);
    ASSERT_EQ(locked_reg.status, 201);
    const std::string locked_target = "user:" + Str(ParseJson(locked_reg.body), "id");
    for (int i = 0; i < 3; ++i) ASSERT_EQ(c.Login(locked_email, "wrong password!").status, 401) << i;
    EXPECT_EQ(c.Login(locked_email).status, 429);
    auto lockouts = events("action=auth.lockout&target=" + locked_target);
    ASSERT_EQ(lockouts.size(), 1u);
    EXPECT_EQ(Str(lockouts[0], "outcome"), "denied");
    EXPECT_EQ(events("action=auth.login&outcome=denied&target=" + locked_target).size(), 1u);
    EXPECT_EQ(events("action=auth.login&outcome=failure&target=" + locked_target).size(), 3u);

    // An invite, by the admin token: the target is the stored hash of the invite, not the invite.
    auto invite = c.Admin("POST", "/api/v1/auth/invites");
    ASSERT_EQ(invite.status, 201) << invite.body;
    const std::string invite_token = Str(ParseJson(invite.body), "token");
    auto invites = events("action=auth.invite_created&target=invite:" + core::Sha256Hex(invite_token));
    ASSERT_EQ(invites.size(), 1u);
    EXPECT_EQ(Str(invites[0], "actor_kind"), "admin_token");
    EXPECT_EQ(c.Admin("GET", "/api/v1/audit-log?limit=500").body.find(invite_token), std::string::npos);
    // A plain user cannot create one: nothing recorded.
    const std::string user_access = Str(ParseJson(c.Login(email, "new horse battery").body), "access_token");
    auto refused = c.Call("POST", "/api/v1/auth/invites", "{}", user_access);
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(events("action=auth.invite_created&actor_id=" + id).size(), 0u);

    // The IP locks after 12 failures from it (this test has made 7 so far): the failure that
    // locks it records auth.lockout on ip:127.0.0.1.
    std::set<std::string> failing;
    int refusals = 0;
    for (int i = 0; i < 20 && refusals == 0; ++i) {
      auto r = c.Login(Email("nobody" + std::to_string(i)), "wrong password!");
      if (r.status == 401) failing.insert(request_id(r));
      if (r.status == 429) ++refusals;
    }
    EXPECT_EQ(refusals, 1);
    int ip_locks = 0;
    for (const auto& item : events("action=auth.lockout&target=ip:127.0.0.1&limit=500"))
      ip_locks += failing.contains(Str(item, "request_id")) ? 1 : 0;
    EXPECT_EQ(ip_locks, 1);
  }
  // The chain still verifies.
  auto verified = RunBasalt({"audit", "verify", "--data-dir", data.path()}, o.env);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
}

// A hash made with weaker argon2 parameters is replaced at the next successful login, once: the
// instance restarts with more iterations; a failed login does not rehash; going back to fewer
// iterations does not rehash either (the stored hash is stronger, not weaker).
TEST_P(AuthBackend, LoginRehashesOutdatedPasswordHashes) {
  TempDir data;
  const std::string email = Email("rehash");
  auto rehashes = [&](const Client& c, const std::string& id) {
    auto r = c.Admin("GET", "/api/v1/audit-log?action=auth.password_rehashed&target=user:" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return ParseJson(r.body).as_object().at("items").as_array().size();
  };
  std::string id;
  {
    ProcessOptions o = Options();
    o.data_dir = data.path();
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    const Client c{server.port()};
    auto reg = c.Register(email);
    ASSERT_EQ(reg.status, 201) << reg.body;
    id = Str(ParseJson(reg.body), "id");
    ASSERT_EQ(c.Login(email).status, 200);
    EXPECT_EQ(rehashes(c, id), 0u);  // current parameters: nothing to do
  }
  {
    ProcessOptions o = Options({{"BASALT_AUTH__ARGON2_ITERATIONS", "3"}});
    o.data_dir = data.path();
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    const Client c{server.port()};
    EXPECT_EQ(c.Login(email, "wrong password!").status, 401);
    EXPECT_EQ(rehashes(c, id), 0u);  // the password is not known: no rehash
    ASSERT_EQ(c.Login(email).status, 200);
    auto items = ParseJson(c.Admin("GET", "/api/v1/audit-log?action=auth.password_rehashed&target=user:" + id).body)
                     .as_object().at("items").as_array();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(Str(items[0], "actor_id"), id);
    EXPECT_EQ(json::serialize(items[0].as_object().at("changes")), R"(["password_hash"])");
    ASSERT_EQ(c.Login(email).status, 200);  // the stored hash is current now
    EXPECT_EQ(rehashes(c, id), 1u);
    EXPECT_EQ(c.Login(email, "wrong password!").status, 401);
  }
  {
    ProcessOptions o = Options();
    o.data_dir = data.path();
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    const Client c{server.port()};
    ASSERT_EQ(c.Login(email).status, 200);  // the rehashed password still works
    EXPECT_EQ(rehashes(c, id), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AuthBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// SQLite only: needs an instance with no users at all.
TEST(AuthSetup, SetupTokenCreatesTheFirstAdminOnce) {
  TempDir data;
  ProcessOptions o;
  o.data_dir = data.path();
  o.env.emplace_back("BASALT_RATE_LIMIT__ENABLED", "false");
  std::string token;
  {
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    ASSERT_TRUE(server.WaitForLog("setup_token"));
    std::smatch m;
    const std::string log = server.LogText();
    ASSERT_TRUE(std::regex_search(log, m, std::regex(R"re("setup_token":"(setup_[A-Za-z0-9_-]+)")re"))) << log;
    token = m[1];
    const Client c{server.port()};
    const std::string body = R"({"email": "root@example.com", "password": "root password 1", "token": ")";
    EXPECT_EQ(c.Call("POST", "/api/v1/auth/setup", body + "setup_wrong\"}").status, 403);
    EXPECT_EQ(c.Call("POST", "/api/v1/auth/setup", R"({"email": "root@example.com", "password": "short", "token": ")" + token + "\"}").status, 422);
    auto made = c.Call("POST", "/api/v1/auth/setup", body + token + "\"}");
    ASSERT_EQ(made.status, 201) << made.body;
    EXPECT_EQ(json::serialize(ParseJson(made.body).as_object().at("roles")), R"(["admin"])");
    EXPECT_EQ(c.Call("POST", "/api/v1/auth/setup", R"({"email": "two@example.com", "password": "root password 1", "token": ")" + token + "\"}").status, 403);
    auto login = c.Login("root@example.com", "root password 1");
    ASSERT_EQ(login.status, 200);
    const std::string root = Str(ParseJson(login.body), "access_token");
    EXPECT_EQ(c.Call("GET", "/api/v1/collections", {}, root).status, 200);
    // The audit log (read by the new admin): denied (wrong token), failure (short password),
    // success (the new admin is the actor), denied (the token is spent).
    auto audit = c.Call("GET", "/api/v1/audit-log?action=auth.setup", {}, root);
    ASSERT_EQ(audit.status, 200) << audit.body;
    const auto items = ParseJson(audit.body).as_object().at("items").as_array();
    ASSERT_EQ(items.size(), 4u) << audit.body;
    EXPECT_EQ(Str(items[0], "outcome"), "denied");
    EXPECT_EQ(Str(items[1], "outcome"), "success");
    EXPECT_EQ(Str(items[1], "actor_kind"), "user");
    EXPECT_EQ(Str(items[1], "actor_id"), Str(ParseJson(made.body), "id"));
    EXPECT_EQ(Str(items[1], "target"), "user:" + Str(ParseJson(made.body), "id"));
    EXPECT_EQ(Str(items[2], "outcome"), "failure");
    EXPECT_EQ(Str(items[2], "target"), "setup");
    EXPECT_EQ(Str(items[3], "outcome"), "denied");
    EXPECT_EQ(Str(items[3], "actor_kind"), "anonymous");
    EXPECT_EQ(audit.body.find(token), std::string::npos);
    server.Signal(SIGTERM);
    EXPECT_EQ(server.WaitExit(20s), 0);
  }
  // A restart with users: no setup token.
  BasaltProcess again(o);
  ASSERT_TRUE(again.started()) << again.start_error();
  EXPECT_EQ(again.LogText().find("setup_token"), std::string::npos);
  const Client c{again.port()};
  EXPECT_EQ(c.Call("POST", "/api/v1/auth/setup", R"({"email": "x@example.com", "password": "root password 1", "token": ")" + token + "\"}").status, 403);
}

// SQLite only: restart the same data directory with another audience / issuer, and rotate keys.
TEST(AuthKeys, AudienceIssuerAndRotationAcrossRestarts) {
  TempDir data;
  ProcessOptions o;
  o.data_dir = data.path();
  o.env.emplace_back("BASALT_RATE_LIMIT__ENABLED", "false");
  Session s;
  {
    BasaltProcess server(o);
    ASSERT_TRUE(server.started()) << server.start_error();
    s = SignUp(Client{server.port()}, "keys@example.com");
    server.Signal(SIGTERM);
    ASSERT_EQ(server.WaitExit(20s), 0);
  }
  for (const auto& [key, value] : {std::pair{"BASALT_AUTH__AUDIENCE", "other"}, std::pair{"BASALT_AUTH__ISSUER", "other"}}) {
    ProcessOptions other = o;
    other.env.emplace_back(key, value);
    BasaltProcess server(other);
    ASSERT_TRUE(server.started()) << server.start_error();
    auto r = Client{server.port()}.Call("GET", "/api/v1/auth/me", {}, s.access);
    EXPECT_EQ(r.status, 401) << key;
    server.Signal(SIGTERM);
    ASSERT_EQ(server.WaitExit(20s), 0);
  }
  auto rotated = RunBasalt({"auth", "rotate-keys", "--data-dir", data.path()});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
  BasaltProcess server(o);
  ASSERT_TRUE(server.started()) << server.start_error();
  const Client c{server.port()};
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, s.access).status, 200);  // the old key still verifies
  auto keys = ParseJson(c.Call("GET", "/.well-known/jwks.json").body).as_object().at("keys").as_array();
  EXPECT_EQ(keys.size(), 2u);
  auto fresh = Str(ParseJson(c.Login("keys@example.com").body), "access_token");
  EXPECT_NE(Str(Split(fresh).header, "kid"), Str(Split(s.access).header, "kid"));
  EXPECT_EQ(c.Call("GET", "/api/v1/auth/me", {}, fresh).status, 200);
}

}  // namespace
}  // namespace basalt::testing
