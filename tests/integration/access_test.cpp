// Machines, services and authorization against the real binary, on SQLite and PostgreSQL: API key
// life cycle (shown once, both headers, scopes, expiry, revocation, last_used_at), roles and
// permissions (a custom role grants collection management; users on admin routes get 403 = OWASP
// API5 broken function level authorization), mass assignment of roles and scopes (OWASP API3),
// OAuth2 client management and the gateway verify endpoint. Names carry a per-run suffix because a
// PostgreSQL database outlives the test.

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
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

constexpr const char* kToken = kTestAdminToken;
constexpr const char* kPassword = "correct horse battery staple";

json::value Parse(const std::string& text) { return ParseJson(text); }

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const json::value* m = v.as_object().if_contains(key);
  return m && m->is_string() ? std::string(m->as_string()) : "";
}

/// A client bound to one server with one credential header (or none).
struct Api {
  std::uint16_t port;
  Headers auth;

  HttpResponse Call(std::string_view method, std::string_view target, std::string_view body = {}) const {
    Headers headers = auth;
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return Request(port, method, target, headers, body);
  }
  static Api Admin(std::uint16_t port) { return Api{port, {{"Authorization", std::string("Bearer ") + kToken}}}; }
  static Api Bearer(std::uint16_t port, const std::string& token) { return Api{port, {{"Authorization", "Bearer " + token}}}; }
  static Api Header(std::uint16_t port, const std::string& key) { return Api{port, {{"X-API-Key", key}}}; }
};

Api Anon(std::uint16_t port) { return Api{port, {}}; }

/// Registers a user (open registration); returns its id.
std::string NewUser(std::uint16_t port, const std::string& email) {
  auto r = Anon(port).Call("POST", "/api/v1/auth/register",
                           json::serialize(json::object{{"email", email}, {"password", kPassword}}));
  EXPECT_EQ(r.status, 201) << r.body;
  return Str(Parse(r.body), "id");
}

/// A user's access token from the login endpoint.
std::string Login(std::uint16_t port, const std::string& email) {
  auto r = Anon(port).Call("POST", "/api/v1/auth/login",
                           json::serialize(json::object{{"email", email}, {"password", kPassword}}));
  EXPECT_EQ(r.status, 200) << r.body;
  return Str(Parse(r.body), "access_token");
}

/// An OAuth2 form POST with HTTP Basic client authentication.
HttpResponse FormPost(std::uint16_t port, std::string_view target, const std::string& client_id,
                      const std::string& secret, std::string_view form) {
  Headers headers{{"Content-Type", "application/x-www-form-urlencoded"},
                  {"Authorization", "Basic " + core::Base64Encode(client_id + ":" + secret)}};
  return Request(port, "POST", target, headers, form);
}

class AccessBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_.emplace_back("BASALT_AUTH__ADMIN_TOKEN", kToken);
    // Registration and login run more often here than the built-in auth rate limits allow.
    env_.emplace_back("BASALT_RATE_LIMIT__ENABLED", "false");
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }
  std::string Email(std::string_view who) const { return std::string(who) + "-" + suffix_ + "@example.com"; }

  /// Creates an API key as admin; returns the parsed 201 body.
  json::value CreateKey(const Api& admin, const std::string& user, const std::string& scopes,
                        const std::string& extra = "") {
    auto r = admin.Call("POST", "/api/v1/api-keys",
                        R"({"name": "k", "user_id": ")" + user + R"(", "scopes": )" + scopes + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return Parse(r.body);
  }

  Env env_;
  std::string suffix_;
};

TEST_P(AccessBackend, ApiKeyLifeCycle) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string posts = "posts" + suffix_, user = NewUser(port, Email("owner"));
  ASSERT_EQ(admin.Call("POST", "/api/v1/collections",
                       R"({"name": ")" + posts + R"(", "fields": [{"name": "title", "type": "text"}],
                       "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  const std::string records = "/api/v1/collections/" + posts + "/records";

  // Created and shown once.
  auto created = CreateKey(admin, user, R"(["records:read"])");
  const std::string key = Str(created, "key"), id = Str(created, "id");
  ASSERT_TRUE(key.starts_with("bsk_" + id + "_")) << key;
  EXPECT_GE(key.size(), std::string("bsk_").size() + id.size() + 1 + 43);
  EXPECT_TRUE(created.as_object().at("last_used_at").is_null());
  auto shown = admin.Call("GET", "/api/v1/api-keys/" + id);
  ASSERT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.body.find(key.substr(4 + id.size() + 1)), std::string::npos) << "the secret must not come back";
  EXPECT_FALSE(Parse(shown.body).as_object().contains("key"));

  // Used through both headers, within its scope only.
  EXPECT_EQ(Api::Bearer(port, key).Call("GET", records).status, 200);
  EXPECT_EQ(Api::Header(port, key).Call("GET", records).status, 200);
  auto write = Api::Header(port, key).Call("POST", records, R"({"title": "x"})");
  EXPECT_EQ(write.status, 403) << write.body;
  EXPECT_NE(write.body.find("records:write"), std::string::npos);
  EXPECT_EQ(Anon(port).Call("POST", records, R"({"title": "x"})").status, 201) << "the rule itself is public";
  // Admin routes are out of its scope.
  EXPECT_EQ(Api::Bearer(port, key).Call("GET", "/api/v1/collections").status, 403);
  // last_used_at was written on first use.
  EXPECT_FALSE(Parse(admin.Call("GET", "/api/v1/api-keys/" + id).body).as_object().at("last_used_at").is_null());

  // Wrong secret, malformed, both headers at once: 401 with WWW-Authenticate.
  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const Api& bad : {Api::Bearer(port, wrong), Api::Header(port, wrong), Api::Header(port, "bsk_nothing"),
                         Api::Header(port, "not-a-key"),
                         Api{port, {{"X-API-Key", key}, {"Authorization", "Bearer " + key}}}}) {
    auto r = bad.Call("GET", records);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_TRUE(r.Header("WWW-Authenticate").has_value());
  }

  // A per-collection scope covers that collection only.
  auto narrow = CreateKey(admin, user, R"(["records:write:)" + posts + R"("])");
  EXPECT_EQ(Api::Header(port, Str(narrow, "key")).Call("POST", records, R"({"title": "y"})").status, 201);
  EXPECT_EQ(Api::Header(port, Str(narrow, "key")).Call("GET", records).status, 403);

  // Listing: the admin sees them; bad input is 422 and stores nothing.
  auto list = admin.Call("GET", "/api/v1/api-keys?user_id=" + user);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Parse(list.body).as_object().at("items").as_array().size(), 2u);
  for (const char* body : {R"({"name": "k", "scopes": ["nope"]})", R"({"name": "", "scopes": []})",
                           R"({"name": "k", "scopes": "records:read"})", R"({"name": "k", "scopes": [], "roles": ["admin"]})",
                           R"({"name": "k", "scopes": [], "expires_in_s": 0})"}) {
    auto r = admin.Call("POST", "/api/v1/api-keys", body);
    EXPECT_EQ(r.status, 422) << body << " " << r.body;
  }
  EXPECT_EQ(Parse(admin.Call("GET", "/api/v1/api-keys?user_id=" + user).body).as_object().at("items").as_array().size(), 2u);

  // Revocation takes effect at once on this instance.
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/api-keys/" + id).status, 204);
  EXPECT_EQ(Api::Header(port, key).Call("GET", records).status, 401);
  EXPECT_FALSE(Parse(admin.Call("GET", "/api/v1/api-keys/" + id).body).as_object().at("revoked_at").is_null());
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/api-keys/" + id).status, 204) << "revoking twice is harmless";
  EXPECT_EQ(admin.Call("GET", "/api/v1/api-keys/00000000-0000-7000-8000-000000000000").status, 404);

  // Creation and revocation are in the audit log.
  auto audited = admin.Call("GET", "/api/v1/audit-log?target=api_key:" + id);
  ASSERT_EQ(audited.status, 200) << audited.body;
  EXPECT_NE(audited.body.find("\"api_key.created\""), std::string::npos) << audited.body;
  EXPECT_NE(audited.body.find("\"api_key.revoked\""), std::string::npos) << audited.body;

  // Expiry: a key with a one-second lifetime stops working.
  auto brief = CreateKey(admin, user, R"(["records:read"])", R"(, "expires_in_s": 1)");
  const std::string brief_key = Str(brief, "key");
  EXPECT_FALSE(brief.as_object().at("expires_at").is_null());
  EXPECT_TRUE(WaitUntil([&] { return Api::Header(port, brief_key).Call("GET", records).status == 401; }, 10s));
}

TEST_P(AccessBackend, CustomRoleGrantsCollectionManagementAndPlainUsersGet403) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string editor = "editor" + suffix_, user = NewUser(port, Email("editor"));

  // The user acts through an API key scoped to collection management; its roles decide.
  const std::string key = Str(CreateKey(admin, user, R"(["collections:manage", "records:write"])"), "key");
  const Api as_user = Api::Header(port, key);
  const std::string body = R"({"name": "c)" + suffix_ + R"(", "fields": [{"name": "t", "type": "text"}]})";
  EXPECT_EQ(as_user.Call("POST", "/api/v1/collections", body).status, 403) << "no role grants it yet";
  // OWASP API5: every admin route refuses a plain principal with 403, an anonymous one with 401.
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/collections"}, {"GET", "/api/v1/roles"}, {"POST", "/api/v1/roles"},
           {"GET", "/api/v1/oauth2/clients"}, {"POST", "/api/v1/oauth2/clients"},
           {"PUT", "/api/v1/users/" + user + "/roles/admin"}, {"DELETE", "/api/v1/collections/x"}}) {
    auto r = as_user.Call(method, path, method == "GET" || method == "DELETE" ? "" : "{}");
    EXPECT_EQ(r.status, 403) << method << " " << path << " " << r.body;
    EXPECT_EQ(Anon(port).Call(method, path).status, 401) << method << " " << path;
  }

  // A custom role with collections:manage.
  auto role = admin.Call("POST", "/api/v1/roles",
                         R"({"name": ")" + editor + R"(", "permissions": ["collections:manage", "records:write"]})");
  ASSERT_EQ(role.status, 201) << role.body;
  EXPECT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + editor + R"(", "permissions": []})").status, 409);
  EXPECT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": "admin", "permissions": []})").status, 409);
  EXPECT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": "x", "permissions": ["everything"]})").status, 422);
  EXPECT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": "Bad Name", "permissions": []})").status, 422);
  EXPECT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/nosuchrole").status, 404);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  auto assigned = admin.Call("GET", "/api/v1/users/" + user + "/roles");
  EXPECT_NE(assigned.body.find(editor), std::string::npos) << assigned.body;

  auto assignment = admin.Call("GET", "/api/v1/audit-log?action=role.assigned&target=user:" + user);
  EXPECT_NE(assignment.body.find("roles." + editor), std::string::npos) << assignment.body;
  auto made = as_user.Call("POST", "/api/v1/collections", body);
  EXPECT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 200);
  // The role does not grant role management.
  EXPECT_EQ(as_user.Call("GET", "/api/v1/roles").status, 403);

  // The verify endpoint reports the identity.
  auto v = as_user.Call("GET", "/api/v1/auth/verify?scope=collections:manage");
  EXPECT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(v.Header("X-Basalt-Principal-Kind").value_or(""), "api_key");
  EXPECT_EQ(v.Header("X-Basalt-User-Id").value_or(""), user);
  EXPECT_NE(v.Header("X-Basalt-Roles").value_or("").find(editor), std::string::npos);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/auth/verify?scope=records:read").status, 403) << "outside the key's scopes";
  EXPECT_EQ(as_user.Call("GET", "/api/v1/auth/verify?role=admin").status, 403);
  EXPECT_EQ(Anon(port).Call("GET", "/api/v1/auth/verify").status, 401);

  // Unassigning (or changing the role) takes the right away.
  ASSERT_EQ(admin.Call("DELETE", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 403);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/roles/" + editor, R"({"permissions": ["records:write"]})").status, 200);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 403);
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/roles/" + editor).status, 204);
  EXPECT_EQ(admin.Call("GET", "/api/v1/roles/" + editor).status, 404);
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/roles/admin").status, 409);
}

// OWASP API3 (broken object property level authorization): nobody grants itself, or anyone, roles
// or scopes beyond its own.
TEST_P(AccessBackend, NoOneGrantsMoreThanItHolds) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string managers = "mgr" + suffix_, user = NewUser(port, Email("mgr")), other = NewUser(port, Email("other"));
  ASSERT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + managers +
                                                     R"(", "permissions": ["roles:manage", "api_keys:manage", "clients:manage", "records:read"]})")
                .status, 201);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + managers).status, 204);
  const Api mgr = Api::Header(
      port, Str(CreateKey(admin, user, R"(["roles:manage", "api_keys:manage", "clients:manage", "records:read"])"), "key"));

  // It may hand out what it holds...
  EXPECT_EQ(mgr.Call("POST", "/api/v1/api-keys", R"({"name": "k", "user_id": ")" + other + R"(", "scopes": ["records:read"]})").status, 201);
  EXPECT_EQ(mgr.Call("POST", "/api/v1/oauth2/clients", R"({"name": "c", "scopes": ["records:read"]})").status, 201);
  // ...and nothing more: scopes, roles, role contents, the admin role for itself.
  EXPECT_EQ(mgr.Call("POST", "/api/v1/api-keys", R"({"name": "k", "user_id": ")" + user + R"(", "scopes": ["admin"]})").status, 403);
  EXPECT_EQ(mgr.Call("POST", "/api/v1/api-keys", R"({"name": "k", "scopes": ["collections:manage"]})").status, 403);
  EXPECT_EQ(mgr.Call("POST", "/api/v1/oauth2/clients", R"({"name": "c", "scopes": ["records:write"]})").status, 403);
  EXPECT_EQ(mgr.Call("POST", "/api/v1/roles", R"({"name": "x)" + suffix_ + R"(", "permissions": ["admin"]})").status, 403);
  EXPECT_EQ(mgr.Call("PUT", "/api/v1/users/" + user + "/roles/admin").status, 403);
  EXPECT_EQ(mgr.Call("PUT", "/api/v1/roles/" + managers, R"({"permissions": ["admin"]})").status, 403);
  auto v = mgr.Call("GET", "/api/v1/auth/verify");
  EXPECT_EQ(v.Header("X-Basalt-Roles").value_or(""), managers + ",user") << "nothing was granted beyond registration's user role";

  // An admin's API key acts within its scopes: not a superuser without the admin scope.
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/admin").status, 204);
  const Api scoped = Api::Header(port, Str(CreateKey(admin, user, R"(["records:read"])"), "key"));
  EXPECT_EQ(scoped.Call("GET", "/api/v1/roles").status, 403);
  const Api full = Api::Header(port, Str(CreateKey(admin, user, R"(["admin"])"), "key"));
  EXPECT_EQ(full.Call("GET", "/api/v1/roles").status, 200);
}

TEST_P(AccessBackend, OAuth2ClientsAreManagedByAdmins) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api admin = Api::Admin(server.port());
  auto created = admin.Call("POST", "/api/v1/oauth2/clients", R"({"name": "billing", "scopes": ["records:read", "queues:produce"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto v = Parse(created.body);
  const std::string id = Str(v, "client_id"), secret = Str(v, "client_secret");
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(secret.size(), 43u);
  EXPECT_EQ(created.Header("Cache-Control").value_or(""), "no-store");
  auto shown = admin.Call("GET", "/api/v1/oauth2/clients/" + id);
  ASSERT_EQ(shown.status, 200);
  EXPECT_EQ(shown.body.find(secret), std::string::npos);
  EXPECT_NE(admin.Call("GET", "/api/v1/oauth2/clients").body.find(id), std::string::npos);
  EXPECT_EQ(admin.Call("POST", "/api/v1/oauth2/clients", R"({"name": "x", "scopes": ["bogus"]})").status, 422);
  EXPECT_EQ(admin.Call("POST", "/api/v1/oauth2/clients", R"({"scopes": []})").status, 422);
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/oauth2/clients/" + id).status, 204);
  EXPECT_FALSE(Parse(admin.Call("GET", "/api/v1/oauth2/clients/" + id).body).as_object().at("revoked_at").is_null());
  EXPECT_EQ(admin.Call("DELETE", "/api/v1/oauth2/clients/nope").status, 404);
}

// OAuth2 client credentials end to end: the token endpoint (RFC 6749 §4.4, errors per §5.2), the
// token used within its scopes, introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414).
TEST_P(AccessBackend, ClientCredentialsTokensActWithinTheirScopes) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string posts = "svc" + suffix_;
  ASSERT_EQ(admin.Call("POST", "/api/v1/collections",
                       R"({"name": ")" + posts + R"(", "fields": [{"name": "title", "type": "text"}],
                       "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  const std::string records = "/api/v1/collections/" + posts + "/records";
  auto created = Parse(admin.Call("POST", "/api/v1/oauth2/clients", R"({"name": "reporting", "scopes": ["records:read"]})").body);
  const std::string id = Str(created, "client_id"), secret = Str(created, "client_secret");
  ASSERT_FALSE(id.empty());

  // Bad requests get the RFC's error codes and store nothing.
  auto wrong = FormPost(port, "/api/v1/oauth2/token", id, secret + "x", "grant_type=client_credentials");
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_EQ(Str(Parse(wrong.body), "error"), "invalid_client");
  EXPECT_TRUE(wrong.Header("WWW-Authenticate").has_value());
  auto grant = FormPost(port, "/api/v1/oauth2/token", id, secret, "grant_type=password");
  EXPECT_EQ(grant.status, 400);
  EXPECT_EQ(Str(Parse(grant.body), "error"), "unsupported_grant_type");
  auto scope = FormPost(port, "/api/v1/oauth2/token", id, secret, "grant_type=client_credentials&scope=records:write");
  EXPECT_EQ(scope.status, 400);
  EXPECT_EQ(Str(Parse(scope.body), "error"), "invalid_scope");
  EXPECT_EQ(Str(Parse(FormPost(port, "/api/v1/oauth2/token", id, secret, "").body), "error"), "invalid_request");

  auto issued = FormPost(port, "/api/v1/oauth2/token", id, secret, "grant_type=client_credentials");
  ASSERT_EQ(issued.status, 200) << issued.body;
  EXPECT_EQ(issued.Header("Cache-Control").value_or(""), "no-store");
  const auto body = Parse(issued.body);
  const std::string token = Str(body, "access_token");
  EXPECT_EQ(Str(body, "token_type"), "Bearer");
  EXPECT_EQ(Str(body, "scope"), "records:read");
  EXPECT_GT(body.as_object().at("expires_in").as_int64(), 0);

  // Within its scopes only; a service has no user, so no admin route opens.
  const Api service = Api::Bearer(port, token);
  EXPECT_EQ(service.Call("GET", records).status, 200);
  auto write = service.Call("POST", records, R"({"title": "x"})");
  EXPECT_EQ(write.status, 403) << write.body;
  EXPECT_EQ(service.Call("GET", "/api/v1/collections").status, 403);
  auto verify = service.Call("GET", "/api/v1/auth/verify");
  EXPECT_EQ(verify.Header("X-Basalt-Principal-Kind").value_or(""), "service");

  // Introspection: this token, a user's token, and garbage.
  auto active = Parse(FormPost(port, "/api/v1/oauth2/introspect", id, secret, "token=" + token).body);
  EXPECT_TRUE(active.as_object().at("active").as_bool());
  EXPECT_EQ(Str(active, "client_id"), id);
  EXPECT_EQ(Str(active, "scope"), "records:read");
  const std::string user = NewUser(port, Email("intro"));
  auto as_user = Parse(FormPost(port, "/api/v1/oauth2/introspect", id, secret, "token=" + Login(port, Email("intro"))).body);
  EXPECT_TRUE(as_user.as_object().at("active").as_bool());
  EXPECT_EQ(Str(as_user, "sub"), user);
  EXPECT_FALSE(as_user.as_object().contains("client_id"));
  EXPECT_FALSE(Parse(FormPost(port, "/api/v1/oauth2/introspect", id, secret, "token=nonsense").body).as_object().at("active").as_bool());

  // Revocation: the token stops working at once; revoking again is not an error.
  EXPECT_EQ(FormPost(port, "/api/v1/oauth2/revoke", id, secret, "token=" + token).status, 200);
  EXPECT_EQ(service.Call("GET", records).status, 401);
  EXPECT_FALSE(Parse(FormPost(port, "/api/v1/oauth2/introspect", id, secret, "token=" + token).body).as_object().at("active").as_bool());
  EXPECT_EQ(FormPost(port, "/api/v1/oauth2/revoke", id, secret, "token=" + token).status, 200);

  // Revoking the client ends its other tokens too.
  auto second = Str(Parse(FormPost(port, "/api/v1/oauth2/token", id, secret, "grant_type=client_credentials").body), "access_token");
  EXPECT_EQ(Api::Bearer(port, second).Call("GET", records).status, 200);
  ASSERT_EQ(admin.Call("DELETE", "/api/v1/oauth2/clients/" + id).status, 204);
  EXPECT_EQ(Api::Bearer(port, second).Call("GET", records).status, 401);
  EXPECT_EQ(FormPost(port, "/api/v1/oauth2/token", id, secret, "grant_type=client_credentials").status, 401);

  auto meta = Request(port, "GET", "/.well-known/oauth-authorization-server");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_TRUE(Str(Parse(meta.body), "token_endpoint").ends_with("/api/v1/oauth2/token")) << meta.body;
}

// A user's roles are read from the store on each request (cached briefly), not trusted from the
// token: a role assigned or taken away applies to a token issued before the change.
TEST_P(AccessBackend, UserRolesComeFromTheStoreNotTheToken) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string editor = "ed" + suffix_;
  const std::string user = NewUser(port, Email("roles"));
  const Api as_user = Api::Bearer(port, Login(port, Email("roles")));
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 403);
  ASSERT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + editor + R"(", "permissions": ["collections:manage"]})").status, 201);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 200);
  auto me = as_user.Call("GET", "/api/v1/auth/me");
  EXPECT_NE(me.body.find(editor), std::string::npos) << me.body;
  ASSERT_EQ(admin.Call("DELETE", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/collections").status, 403);
  // Assigning to a user that does not exist, or listing its roles, is a 404.
  EXPECT_EQ(admin.Call("PUT", "/api/v1/users/00000000-0000-7000-8000-000000000000/roles/" + editor).status, 404);
  EXPECT_EQ(admin.Call("GET", "/api/v1/users/00000000-0000-7000-8000-000000000000/roles").status, 404);
  // Deleting a role takes it off its holders.
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + editor).status, 204);
  ASSERT_EQ(admin.Call("DELETE", "/api/v1/roles/" + editor).status, 204);
  EXPECT_EQ(admin.Call("GET", "/api/v1/users/" + user + "/roles").body.find(editor), std::string::npos);
  EXPECT_EQ(admin.Call("POST", "/api/v1/api-keys", R"({"name": "k", "user_id": "nobody", "scopes": []})").status, 422);
}

// Queues, webhooks, the audit log, invites and realtime take permissions and scopes, not "is a
// superuser": a custom role or a key/service scope gets in, others get 403, anonymous 401.
TEST_P(AccessBackend, QueuesWebhooksAuditAndRealtimeTakePermissions) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::uint16_t port = server.port();
  const Api admin = Api::Admin(port);
  const std::string q = "jobs" + suffix_, other = "other" + suffix_;
  const std::string produce = R"({"messages": [{"payload": "hi"}]})";
  auto path = [](const std::string& queue, const std::string& rest = "") { return "/api/v1/queues/" + queue + rest; };
  ASSERT_EQ(admin.Call("POST", path(other, "/messages"), produce).status, 201);

  const std::string user = NewUser(port, Email("q"));
  const Api as_user = Api::Bearer(port, Login(port, Email("q")));
  // A plain user: 403 everywhere here; anonymous: 401.
  const std::vector<std::pair<std::string, std::string>> routes{
      {"POST", path(q, "/messages")},       {"POST", path(q, "/claims")},   {"PUT", path(q)},
      {"GET", path(q)},                     {"GET", "/api/v1/queues"},      {"GET", path(q, "/dead-letters")},
      {"GET", "/api/v1/webhooks"},          {"POST", "/api/v1/webhooks"},   {"GET", "/api/v1/audit-log"},
      {"POST", "/api/v1/auth/invites"}};
  for (const auto& [method, target] : routes) {
    const std::string body = method == "GET" ? "" : target.ends_with("/messages") ? produce : "{}";
    auto r = as_user.Call(method, target, body);
    EXPECT_EQ(r.status, 403) << method << " " << target << " " << r.body;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << method << " " << target;
    EXPECT_EQ(Anon(port).Call(method, target, body).status, 401) << method << " " << target;
  }

  // Bad permission names are refused (422) and change nothing.
  for (const char* bad : {"queues:produce:", "queues:produce:a b", "queues:produce:.x", "queues:purge", "queues:admin:x:y",
                          "webhooks:manage:x", "audit:write"}) {
    auto r = admin.Call("POST", "/api/v1/roles", R"({"name": "bad)" + suffix_ + R"(", "permissions": [")" + bad + R"("]})");
    EXPECT_EQ(r.status, 422) << bad << " " << r.body;
  }
  EXPECT_EQ(admin.Call("GET", "/api/v1/roles/bad" + suffix_).status, 404);

  // A role that produces to and consumes from one queue.
  const std::string worker = "worker" + suffix_;
  ASSERT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + worker + R"(", "permissions": ["queues:produce:)" + q +
                                                   R"(", "queues:consume:)" + q + R"("]})").status, 201);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + worker).status, 204);
  auto produced = as_user.Call("POST", path(q, "/messages"), produce);
  EXPECT_EQ(produced.status, 201) << produced.body;
  auto claimed = as_user.Call("POST", path(q, "/claims"), R"({"max": 1})");
  EXPECT_EQ(claimed.status, 200) << claimed.body;
  EXPECT_NE(claimed.body.find("\"hi\""), std::string::npos) << claimed.body;
  EXPECT_EQ(as_user.Call("POST", path(other, "/messages"), produce).status, 403);  // another queue
  EXPECT_EQ(as_user.Call("POST", path(other, "/claims"), R"({"max": 1})").status, 403);
  EXPECT_EQ(as_user.Call("GET", path(q)).status, 403);  // producing is not administering
  EXPECT_EQ(as_user.Call("PUT", path(q), "{}").status, 403);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/queues").status, 403);

  // Administering one queue: its settings and stats, not the list of all queues, not others.
  const std::string keeper = "keeper" + suffix_;
  ASSERT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + keeper + R"(", "permissions": ["queues:admin:)" + q +
                                                   R"("]})").status, 201);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + user + "/roles/" + keeper).status, 204);
  EXPECT_EQ(as_user.Call("GET", path(q)).status, 200);
  EXPECT_EQ(as_user.Call("GET", path(q, "/dead-letters")).status, 200);
  EXPECT_EQ(as_user.Call("GET", path(other)).status, 403);
  EXPECT_EQ(as_user.Call("GET", "/api/v1/queues").status, 403);

  // An API key acts within its owner's roles AND its scopes: producing only, even though the
  // owner may consume; a scope the owner's roles lack gives nothing.
  const std::string key = Str(CreateKey(admin, user, R"(["queues:produce:)" + q + R"(", "queues:admin"])"), "key");
  const Api as_key = Api::Header(port, key);
  EXPECT_EQ(as_key.Call("POST", path(q, "/messages"), produce).status, 201);
  EXPECT_EQ(as_key.Call("POST", path(q, "/claims"), R"({"max": 1})").status, 403);
  EXPECT_EQ(as_key.Call("GET", "/api/v1/queues").status, 403);  // the owner cannot list all queues
  EXPECT_EQ(admin.Call("POST", "/api/v1/api-keys", R"({"name": "k", "user_id": ")" + user +
                                                       R"(", "scopes": ["queues:produce:no/such"]})").status, 422);
  // Basalt's own queues stay reserved, whatever the permission.
  EXPECT_EQ(admin.Call("POST", path("basalt.webhooks", "/messages"), produce).status, 403);

  // A service with webhooks:manage and audit:read, and the unrestricted queues:admin.
  auto client = Parse(admin.Call("POST", "/api/v1/oauth2/clients",
                                 R"({"name": "ops", "scopes": ["webhooks:manage", "audit:read", "queues:admin"]})").body);
  auto issued = FormPost(port, "/api/v1/oauth2/token", Str(client, "client_id"), Str(client, "client_secret"),
                         "grant_type=client_credentials");
  ASSERT_EQ(issued.status, 200) << issued.body;
  const Api ops = Api::Bearer(port, Str(Parse(issued.body), "access_token"));
  EXPECT_EQ(ops.Call("GET", "/api/v1/webhooks").status, 200);
  auto audit = ops.Call("GET", "/api/v1/audit-log?action=role.*&limit=5");
  EXPECT_EQ(audit.status, 200) << audit.body;
  EXPECT_EQ(ops.Call("GET", "/api/v1/audit-log?limit=0").status, 400);  // still validated
  auto listed = ops.Call("GET", "/api/v1/queues");
  EXPECT_EQ(listed.status, 200) << listed.body;
  EXPECT_NE(listed.body.find(q), std::string::npos);
  EXPECT_EQ(ops.Call("POST", path(q, "/messages"), produce).status, 403);  // administering is not producing
  EXPECT_EQ(ops.Call("POST", "/api/v1/auth/invites").status, 403);
  EXPECT_EQ(ops.Call("GET", "/api/v1/collections").status, 403);

  // A role with audit:read and users:manage (invites); webhooks stay closed to it.
  const std::string auditor = "auditor" + suffix_;
  ASSERT_EQ(admin.Call("POST", "/api/v1/roles", R"({"name": ")" + auditor + R"(", "permissions": ["audit:read", "users:manage"]})").status, 201);
  const std::string second = NewUser(port, Email("aud"));
  const Api as_auditor = Api::Bearer(port, Login(port, Email("aud")));
  EXPECT_EQ(as_auditor.Call("GET", "/api/v1/audit-log").status, 403);
  ASSERT_EQ(admin.Call("PUT", "/api/v1/users/" + second + "/roles/" + auditor).status, 204);
  auto read = as_auditor.Call("GET", "/api/v1/audit-log?target=user:" + second);
  EXPECT_EQ(read.status, 200) << read.body;
  EXPECT_NE(read.body.find("role.assigned"), std::string::npos) << read.body;
  EXPECT_EQ(as_auditor.Call("POST", "/api/v1/auth/invites").status, 201);
  EXPECT_EQ(as_auditor.Call("GET", "/api/v1/webhooks").status, 403);
  EXPECT_EQ(as_auditor.Call("GET", path(q)).status, 403);

  // Realtime: a key or service needs records:read (or the collection's form); past the scope the
  // request goes on (an unknown collection: 404), without it 403 before anything else.
  const std::string c = "rt" + suffix_;
  ASSERT_EQ(admin.Call("POST", "/api/v1/collections", R"({"name": ")" + c + R"(", "fields": [{"name": "t", "type": "text"}]})").status, 201);
  const std::string writer = Str(CreateKey(admin, user, R"(["records:write"])"), "key");
  const std::string reader = Str(CreateKey(admin, user, R"(["records:read:)" + c + R"("])"), "key");
  EXPECT_EQ(Api::Header(port, writer).Call("GET", "/api/v1/realtime?collection=" + c).status, 403);
  EXPECT_EQ(Api::Header(port, reader).Call("GET", "/api/v1/realtime?collection=other" + suffix_).status, 403);
  const std::string gone = "gone" + suffix_;
  const std::string gone_reader = Str(CreateKey(admin, user, R"(["records:read:)" + gone + R"("])"), "key");
  EXPECT_EQ(Api::Header(port, gone_reader).Call("GET", "/api/v1/realtime?collection=" + gone).status, 404);
  EXPECT_EQ(Api::Header(port, writer).Call("GET", "/api/v1/realtime?collection=" + gone).status, 403);
  EXPECT_EQ(ops.Call("GET", "/api/v1/realtime?collection=" + c).status, 403);
}

INSTANTIATE_TEST_SUITE_P(Backends, AccessBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace basalt::testing
