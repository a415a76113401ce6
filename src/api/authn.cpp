#include "api/authn.hpp"

#include <cctype>
#include <memory>
#include <optional>

#include "api/data_support.hpp"
#include "auth/tokens.hpp"

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

/// 401 for a token that is present but not valid (RFC 6750 §3.1).
http::Response InvalidToken(const http::Request& req, const std::string& message) {
  http::Response res = detail::Unauthorized(req, message);
  res.Set("WWW-Authenticate", R"(Bearer realm="basalt", error="invalid_token")");
  return res;
}

}  // namespace

http::Middleware AuthenticationStage(AuthenticationOptions options) {
  auto opts = std::make_shared<const AuthenticationOptions>(std::move(options));
  return {"authentication", [opts](http::Request& req, http::Next next) -> http::Task<http::Response> {
            if (!req.path().starts_with("/api/")) co_return co_await next(req);
            const auto authorization = req.Header("Authorization");
            if (authorization) {
              if (detail::BearerMatches(*authorization, opts->admin_token)) {
                http::Principal p;
                p.kind = http::Principal::Kind::kAdminToken;
                p.roles = {"admin"};
                req.set_principal(std::move(p));
              } else {
                const auto credentials = BearerCredentials(*authorization);
                if (!credentials || !opts->tokens) co_return InvalidToken(req, "The bearer token is not valid.");
                std::string token(*credentials);
                auto claims = co_await opts->tokens->Verify(req.shard(), std::move(token));
                if (!claims) co_return InvalidToken(req, claims.error().message);
                http::Principal p;
                p.kind = http::Principal::Kind::kUser;
                p.id = claims->subject;
                p.user_id = claims->subject;
                p.roles = std::move(claims->roles);
                p.session_id = std::move(claims->session_id);
                req.set_principal(std::move(p));
              }
            }
            co_return co_await next(req);
          }};
}

}  // namespace basalt::api
