#include "api/authn.hpp"

#include <cctype>
#include <memory>
#include <optional>

#include "api/access_cache.hpp"
#include "api/data_support.hpp"
#include "auth/tokens.hpp"
#include "obs/log.hpp"

namespace basalt::api {
namespace {

/// The credentials of `Bearer <credentials>` (scheme case-insensitive, RFC 9110 §11.1).
std::optional<std::string_view> BearerCredentials(std::string_view authorization) {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size()) return std::nullopt;
  for (std::size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kBearer[i]) return std::nullopt;
  }
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

/// 401 for credentials that are present but not valid (RFC 6750 §3.1).
http::Response InvalidToken(const http::Request& req, const std::string& message) {
  http::Response res = detail::Unauthorized(req, message);
  res.Set("WWW-Authenticate", R"(Bearer realm="basalt", error="invalid_token")");
  return res;
}

bool SelfAuthenticating(std::string_view path) {
  return path == "/api/v1/oauth2/token" || path == "/api/v1/oauth2/introspect" || path == "/api/v1/oauth2/revoke";
}

http::Response Internal(const http::Request& req, const core::Error& error) {
  obs::Log(obs::LogLevel::kError, "authentication failed on storage",
           {{"request_id", req.request_id()}, {"error", error.message}, {"cause", error.cause}});
  return http::Problem(core::Error::Make(core::ErrorCode::kInternal, "Internal error."), req.request_id());
}

// An API request that carries a credential; the OAuth2 endpoints read their own (client secrets).
bool CarriesCredentials(const http::Request& req) {
  if (!req.path().starts_with("/api/") || SelfAuthenticating(req.path())) return false;
  return req.Header("Authorization").has_value() || req.Header("X-API-Key").has_value();
}

http::Task<http::Response> Authenticate(std::shared_ptr<const AuthenticationOptions> opts, http::Request& req,
                                        http::Next next) {
  // Runs only when CarriesCredentials(req) (the stage's `applies`); everyone else is anonymous.
  const auto authorization = req.Header("Authorization");
  const auto api_key_header = req.Header("X-API-Key");
  std::string api_key;
  if (api_key_header) {
    if (authorization) co_return InvalidToken(req, "Send one credential: Authorization or X-API-Key.");
    api_key = std::string(*api_key_header);
  } else {
    if (detail::BearerMatches(*authorization, opts->admin_token)) {
      http::Principal p;
      p.kind = http::Principal::Kind::kAdminToken;
      p.roles = {"admin"};
      p.permissions = {"admin"};
      req.set_principal(std::move(p));
      co_return co_await next(req);
    }
    const auto credentials = BearerCredentials(*authorization);
    if (!credentials) co_return InvalidToken(req, "The bearer token is not valid.");
    if (credentials->starts_with("bsk_")) {
      api_key = std::string(*credentials);
    } else {
      if (!opts->tokens) co_return InvalidToken(req, "The bearer token is not valid.");
      std::string token(*credentials);
      auto claims = co_await opts->tokens->Verify(req.shard(), std::move(token));
      if (!claims) co_return InvalidToken(req, claims.error().message);
      http::Principal p;
      if (!claims->client_id.empty()) {
        // An OAuth2 client-credentials token: also not revoked, and its client still active.
        if (!opts->access) co_return InvalidToken(req, "The bearer token is not valid.");
        auto active = co_await opts->access->ServiceTokenActive(req.shard(), claims->jti, claims->client_id);
        if (!active) co_return Internal(req, active.error());
        if (!*active) co_return InvalidToken(req, "The token was revoked.");
        p.kind = http::Principal::Kind::kService;
        p.id = std::move(claims->client_id);
        p.scopes = std::move(claims->scopes);
      } else {
        p.kind = http::Principal::Kind::kUser;
        p.id = claims->subject;
        p.user_id = std::move(claims->subject);
        p.roles = std::move(claims->roles);
        p.session_id = std::move(claims->session_id);
      }
      if (opts->access) {
        auto expanded = co_await opts->access->Expand(req.shard(), p);
        if (!expanded) co_return Internal(req, expanded.error());
      }
      req.set_principal(std::move(p));
      co_return co_await next(req);
    }
  }
  if (opts->access == nullptr || !api_key.starts_with("bsk_")) co_return InvalidToken(req, "The API key is not valid.");
  auto found = co_await opts->access->ApiKeyPrincipal(req.shard(), std::move(api_key));
  if (!found) co_return Internal(req, found.error());
  if (!*found) co_return InvalidToken(req, "The API key is not valid, has expired or was revoked.");
  http::Principal p = std::move(**found);
  auto expanded = co_await opts->access->Expand(req.shard(), p);
  if (!expanded) co_return Internal(req, expanded.error());
  req.set_principal(std::move(p));
  co_return co_await next(req);
}

}  // namespace

http::Middleware AuthenticationStage(AuthenticationOptions options) {
  auto opts = std::make_shared<const AuthenticationOptions>(std::move(options));
  return {"authentication",
          [opts](http::Request& req, http::Next next) { return Authenticate(opts, req, std::move(next)); },
          CarriesCredentials};
}

}  // namespace basalt::api
