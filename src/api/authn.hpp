#pragma once
/// The authentication stage: turns a request's credentials into its http::Principal.

#include <string>

#include "http/middleware.hpp"

namespace basalt::auth {
class TokenService;
}

namespace basalt::api {

class AccessCache;

struct AuthenticationOptions {
  /// `auth.admin_token`; empty disables it.
  std::string admin_token;
  /// Verifies access tokens (user JWTs and OAuth2 service tokens); null: only the admin token
  /// and API keys are accepted.
  auth::TokenService* tokens = nullptr;
  /// API keys, users' current roles, role permissions and revoked service tokens; null disables
  /// API keys and service tokens (unit tests).
  AccessCache* access = nullptr;
};

/// Runs for paths under /api/ (the probes and /metrics keep their own checks). No credentials:
/// anonymous. Valid credentials: the matching principal, its roles the user's current ones and its
/// permissions filled from them. Accepted: `Authorization: Bearer <admin token>`; `Bearer <JWT>`
/// (auth::TokenService::Verify): a user, or a service when the token carries `client_id`;
/// `Authorization: Bearer bsk_...` or `X-API-Key: bsk_...` (API keys). Credentials that are present
/// but not valid: 401 problem with `WWW-Authenticate: Bearer error="invalid_token"`, before any
/// handler runs. The OAuth2 token, introspection and revocation endpoints authenticate their
/// clients themselves (RFC 6749 §2.3) and are skipped here.
http::Middleware AuthenticationStage(AuthenticationOptions options);

}  // namespace basalt::api
