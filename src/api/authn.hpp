#pragma once
/// The authentication stage: turns a request's credentials into its http::Principal.

#include <string>

#include "http/middleware.hpp"

namespace basalt::auth {
class TokenService;
}

namespace basalt::api {

struct AuthenticationOptions {
  /// `auth.admin_token`; empty disables it.
  std::string admin_token;
  /// Verifies user access tokens (JWT); null: only the admin token is accepted.
  auth::TokenService* tokens = nullptr;
};

/// Runs for paths under /api/ (the probes and /metrics keep their own checks). No credentials:
/// anonymous. `Authorization: Bearer <admin token>`: kAdminToken. `Bearer <JWT>` that verifies
/// (auth::TokenService::Verify): kUser with the token's subject and roles. Credentials that are
/// present but not valid: 401 problem with `WWW-Authenticate: Bearer error="invalid_token"`,
/// before any handler runs.
http::Middleware AuthenticationStage(AuthenticationOptions options);

}  // namespace basalt::api
