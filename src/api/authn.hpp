#pragma once
/// The authentication stage: turns a request's credentials into its http::Principal.

#include <string>

#include "http/middleware.hpp"

namespace basalt::api {

struct AuthenticationOptions {
  /// `auth.admin_token`; empty disables it.
  std::string admin_token;
};

/// Runs for paths under /api/ (the probes and /metrics keep their own checks). No credentials:
/// anonymous. Valid credentials: the matching principal. Credentials that are present but not
/// valid: 401 problem with `WWW-Authenticate`, before any handler runs.
http::Middleware AuthenticationStage(AuthenticationOptions options);

}  // namespace basalt::api
