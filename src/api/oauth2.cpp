// The OAuth2 authorization server for service accounts:
//   POST /api/v1/oauth2/token       client credentials grant (RFC 6749 §4.4)
//   POST /api/v1/oauth2/introspect  token introspection (RFC 7662)
//   POST /api/v1/oauth2/revoke      token revocation (RFC 7009)
//   GET  /.well-known/oauth-authorization-server  metadata (RFC 8414)
// Requests are application/x-www-form-urlencoded; clients authenticate with HTTP Basic
// (client_secret_basic) or in the body (client_secret_post), never both (RFC 6749 §2.3). Errors are
// the RFCs' own `application/json` shape (RFC 6749 §5.2), not problem+json.

#include <boost/json.hpp>

#include "api/access_cache.hpp"
#include "api/access_routes.hpp"
#include "api/access_support.hpp"
#include "api/data_support.hpp"
#include "auth/access_store.hpp"
#include "auth/scopes.hpp"
#include "auth/tokens.hpp"
#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "obs/log.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;

/// An RFC 6749 §5.2 error. `basic` adds 401 + WWW-Authenticate for invalid_client.
http::Response OAuthError(int status, std::string_view error, std::string description, bool basic = false) {
  http::Response res = http::Response::Json(
      status, json::serialize(json::object{{"error", error}, {"error_description", std::move(description)}}));
  res.Set("Cache-Control", "no-store");
  res.Set("Pragma", "no-cache");
  if (basic) res.Set("WWW-Authenticate", R"(Basic realm="basalt", charset="UTF-8")");
  return res;
}

http::Response NoStoreJson(json::object body) {
  http::Response res = http::Response::Json(200, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  res.Set("Pragma", "no-cache");
  return res;
}

http::Response ServerError(const http::Request& req, const core::Error& e) {
  obs::Log(obs::LogLevel::kError, "oauth2: storage failed",
           {{"request_id", req.request_id()}, {"error", e.message}, {"cause", e.cause}});
  return OAuthError(500, "server_error", "Internal error.");
}

using Form = std::vector<std::pair<std::string, std::string>>;

/// Parses an application/x-www-form-urlencoded body; an error description when it is not one, or
/// a parameter repeats (RFC 6749 §3.1: "MUST NOT be included more than once").
std::expected<Form, std::string> ParseForm(const http::Request& req) {
  std::string_view type = req.Header("Content-Type").value_or("");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower(type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "application/x-www-form-urlencoded") return std::unexpected("Send application/x-www-form-urlencoded.");
  Form form;
  for (std::string_view q = req.body(); !q.empty();) {
    const std::size_t amp = std::min(q.find('&'), q.size());
    const std::string_view pair = q.substr(0, amp);
    q.remove_prefix(std::min(amp + 1, q.size()));
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto name = detail::DecodeComponent(pair.substr(0, eq));
    auto value = detail::DecodeComponent(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!name || !value) return std::unexpected("The body is not valid form encoding.");
    for (const auto& [n, _] : form) {
      if (n == *name) return std::unexpected("The parameter '" + name->substr(0, 40) + "' is repeated.");
    }
    form.emplace_back(std::move(*name), std::move(*value));
  }
  return form;
}

const std::string* Param(const Form& form, std::string_view name) {
  for (const auto& [n, v] : form) {
    if (n == name) return &v;
  }
  return nullptr;
}

/// The client's credentials from HTTP Basic or the body.
struct ClientCredentials {
  bool basic = false;
  std::string id;
  std::string secret;
};

/// nullopt with `error` set when the request authenticates its client wrongly (both methods,
/// malformed Basic) or not at all.
std::expected<ClientCredentials, http::Response> ClientAuth(const http::Request& req, const Form& form) {
  const auto authorization = req.Header("Authorization");
  const std::string* post_id = Param(form, "client_id");
  const std::string* post_secret = Param(form, "client_secret");
  if (authorization) {
    std::string_view value = *authorization;
    if (value.size() < 6 || !(value.substr(0, 6) == "Basic " || value.substr(0, 6) == "basic ")) {
      return std::unexpected(OAuthError(401, "invalid_client", "Use HTTP Basic or client_secret_post.", true));
    }
    if (post_secret) {
      return std::unexpected(OAuthError(400, "invalid_request", "Use one client authentication method, not two."));
    }
    const std::string_view encoded = value.substr(6);
    auto decoded = encoded.size() <= 2048 ? core::Base64Decode(encoded) : std::nullopt;
    const std::size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return std::unexpected(OAuthError(401, "invalid_client", "Malformed Basic credentials.", true));
    }
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    auto id = detail::DecodeComponent(std::string_view(*decoded).substr(0, colon));
    auto secret = detail::DecodeComponent(std::string_view(*decoded).substr(colon + 1));
    if (!id || !secret) return std::unexpected(OAuthError(401, "invalid_client", "Malformed Basic credentials.", true));
    if (post_id && *post_id != *id) {
      return std::unexpected(OAuthError(400, "invalid_request", "client_id differs from the authenticated client."));
    }
    return ClientCredentials{true, std::move(*id), std::move(*secret)};
  }
  if (post_id && post_secret) return ClientCredentials{false, *post_id, *post_secret};
  return std::unexpected(OAuthError(401, "invalid_client", "Client authentication is required.", true));
}

/// Authenticates the client; the error response when it fails.
http::Task<std::expected<auth::Client, http::Response>> Authenticate(const AccessServices& s, const http::Request& req,
                                                                     const Form& form) {
  auto creds = ClientAuth(req, form);
  if (!creds) co_return std::unexpected(std::move(creds.error()));
  const bool basic = creds->basic;
  auto client = co_await s.store.AuthenticateClient(req.shard(), std::move(creds->id), std::move(creds->secret));
  if (!client) co_return std::unexpected(ServerError(req, client.error()));
  if (!*client) {
    co_return std::unexpected(basic ? OAuthError(401, "invalid_client", "Client authentication failed.", true)
                                    : OAuthError(400, "invalid_client", "Client authentication failed."));
  }
  co_return std::move(**client);
}

http::Task<http::Response> Token(const AccessServices& s, http::Request& req) {
  auto form = ParseForm(req);
  if (!form) co_return OAuthError(400, "invalid_request", form.error());
  auto client = co_await Authenticate(s, req, *form);
  if (!client) co_return std::move(client.error());
  const std::string* grant = Param(*form, "grant_type");
  if (!grant || grant->empty()) co_return OAuthError(400, "invalid_request", "grant_type is required.");
  if (*grant != "client_credentials") {
    co_return OAuthError(400, "unsupported_grant_type", "Only client_credentials is supported.");
  }
  std::vector<std::string> scopes = client->scopes;
  if (const std::string* scope = Param(*form, "scope"); scope && !scope->empty()) {
    scopes = auth::SplitScopes(*scope);
    for (const auto& sc : scopes) {
      if (!auth::IsValidScope(sc) || !auth::CoversAll(client->scopes, {sc})) {
        co_return OAuthError(400, "invalid_scope", "The scope '" + sc.substr(0, 80) + "' is not granted to this client.");
      }
    }
  }
  auto token = s.tokens.IssueService(client->id, scopes);
  if (!token) co_return ServerError(req, token.error());
  obs::Log(obs::LogLevel::kInfo, "oauth2 token issued", {{"request_id", req.request_id()}, {"client_id", client->id}});
  co_return NoStoreJson(json::object{{"access_token", std::move(token->token)},
                                     {"token_type", "Bearer"},
                                     {"expires_in", token->expires_in},
                                     {"scope", auth::JoinScopes(scopes)}});
}

/// Claims of a token we issued and still honour: signature, time; for a service token also not
/// revoked and its client not revoked. `services_only`: a valid user token counts as inactive.
http::Task<core::Result<std::optional<auth::AccessClaims>>> ActiveToken(const AccessServices& s, unsigned shard,
                                                                         std::string token, bool services_only) {
  auto claims = co_await s.tokens.Verify(shard, std::move(token));
  if (!claims) co_return std::optional<auth::AccessClaims>{};
  if (claims->client_id.empty()) {
    if (services_only) co_return std::optional<auth::AccessClaims>{};
    co_return std::optional<auth::AccessClaims>{std::move(*claims)};
  }
  auto active = co_await s.cache.ServiceTokenActive(shard, claims->jti, claims->client_id);
  if (!active) co_return std::unexpected(std::move(active.error()));
  if (!*active) co_return std::optional<auth::AccessClaims>{};
  co_return std::optional<auth::AccessClaims>{std::move(*claims)};
}

http::Task<http::Response> Introspect(const AccessServices& s, http::Request& req) {
  auto form = ParseForm(req);
  if (!form) co_return OAuthError(400, "invalid_request", form.error());
  auto client = co_await Authenticate(s, req, *form);
  if (!client) co_return std::move(client.error());
  const std::string* token = Param(*form, "token");
  if (!token) co_return OAuthError(400, "invalid_request", "token is required.");
  if (token->starts_with("bsk_")) {
    auto key = co_await s.cache.ApiKeyPrincipal(req.shard(), *token);
    if (!key) co_return ServerError(req, key.error());
    if (!*key) co_return NoStoreJson(json::object{{"active", false}});
    co_return NoStoreJson(json::object{{"active", true},
                                       {"scope", auth::JoinScopes((*key)->scopes)},
                                       {"sub", (*key)->user_id},
                                       {"token_type", "api_key"}});
  }
  auto claims = co_await ActiveToken(s, req.shard(), *token, false);
  if (!claims) co_return ServerError(req, claims.error());
  if (!*claims) co_return NoStoreJson(json::object{{"active", false}});
  const auth::AccessClaims& c = **claims;
  json::object out{{"active", true},
                   {"sub", c.subject},
                   {"iss", s.tokens.options().issuer},
                   {"aud", s.tokens.options().audience},
                   {"exp", c.expires_at},
                   {"iat", c.issued_at},
                   {"jti", c.jti},
                   {"token_type", "Bearer"}};
  if (c.client_id.empty()) {
    out["roles"] = detail::ToJsonArray(c.roles);  // a user's access token
  } else {
    out["client_id"] = c.client_id;
    out["scope"] = auth::JoinScopes(c.scopes);
  }
  co_return NoStoreJson(std::move(out));
}

http::Task<http::Response> Revoke(const AccessServices& s, http::Request& req) {
  auto form = ParseForm(req);
  if (!form) co_return OAuthError(400, "invalid_request", form.error());
  auto client = co_await Authenticate(s, req, *form);
  if (!client) co_return std::move(client.error());
  const std::string* token = Param(*form, "token");
  if (!token) co_return OAuthError(400, "invalid_request", "token is required.");
  // RFC 7009 §2.2: an invalid, expired or unknown token is not an error.
  // Only service tokens are revocable here; users end their sessions with /api/v1/auth/logout.
  auto claims = co_await ActiveToken(s, req.shard(), *token, true);
  if (!claims) co_return ServerError(req, claims.error());
  if (!*claims) co_return http::Response::Empty(200);
  // §2.1: the token must have been issued to the client asking.
  if ((*claims)->client_id != client->id) {
    co_return OAuthError(400, "unauthorized_client", "The token was not issued to this client.");
  }
  std::string jti = (*claims)->jti;
  auto denied = co_await s.store.DenyTokenId(req.shard(), jti, (*claims)->expires_at * 1000);
  if (!denied) co_return ServerError(req, denied.error());
  s.cache.DenyLocally(jti);
  obs::Log(obs::LogLevel::kInfo, "oauth2 token revoked",
           {{"request_id", req.request_id()}, {"client_id", client->id}, {"jti", jti}});
  co_return http::Response::Empty(200);
}

http::Task<http::Response> Metadata(const AccessServices& s, http::Request& req) {
  // RFC 8414 wants absolute endpoint URLs under the issuer. With `auth.issuer` set to the public
  // URL (as production should) they hang from it; otherwise from the Host the client used.
  const std::string& issuer = s.tokens.options().issuer;
  std::string base = issuer;
  if (!issuer.starts_with("https://") && !issuer.starts_with("http://")) {
    base = "http://" + std::string(req.Header("Host").value_or("localhost"));
  }
  while (base.ends_with('/')) base.pop_back();
  json::array scopes;
  for (const auto& sc : auth::KnownScopes()) scopes.emplace_back(sc);
  json::object body{{"issuer", issuer},
                    {"token_endpoint", base + "/api/v1/oauth2/token"},
                    {"introspection_endpoint", base + "/api/v1/oauth2/introspect"},
                    {"revocation_endpoint", base + "/api/v1/oauth2/revoke"},
                    {"jwks_uri", base + "/.well-known/jwks.json"},
                    {"grant_types_supported", json::array{"client_credentials"}},
                    {"response_types_supported", json::array{}},
                    {"token_endpoint_auth_methods_supported", json::array{"client_secret_basic", "client_secret_post"}},
                    {"introspection_endpoint_auth_methods_supported",
                     json::array{"client_secret_basic", "client_secret_post"}},
                    {"revocation_endpoint_auth_methods_supported",
                     json::array{"client_secret_basic", "client_secret_post"}},
                    {"token_endpoint_auth_signing_alg_values_supported", json::array{"EdDSA"}},
                    {"scopes_supported", std::move(scopes)}};
  http::Response res = http::Response::Json(200, json::serialize(body));
  res.Set("Cache-Control", "public, max-age=3600");
  co_return res;
}

}  // namespace

core::Result<void> RegisterOAuth2(http::Router& router, const AccessServices& services) {
  const AccessServices* s = &services;
  if (auto r = router.Add(http::Method::kPost, "/api/v1/oauth2/token", [s](http::Request& req) { return Token(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPost, "/api/v1/oauth2/introspect", [s](http::Request& req) { return Introspect(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPost, "/api/v1/oauth2/revoke", [s](http::Request& req) { return Revoke(*s, req); }); !r) return r;
  return router.Add(http::Method::kGet, "/.well-known/oauth-authorization-server",
                    [s](http::Request& req) { return Metadata(*s, req); });
}

}  // namespace basalt::api
