#pragma once
/// Machines, services and authorization: API keys, roles, OAuth2 clients and the authorization
/// server, and the gateway verify endpoint.

#include "core/error.hpp"
#include "http/router.hpp"

namespace basalt::auth {
class AccessStore;
class TokenService;
}
namespace basalt::audit {
class AuditLog;
}

namespace basalt::api {

class AccessCache;

/// What the access handlers need. References must outlive the router.
struct AccessServices {
  auth::AccessStore& store;
  AccessCache& cache;
  bool user_api_keys = true;             ///< `auth.user_api_keys`.
  /// Issues and verifies OAuth2 service tokens (and verifies user tokens for introspection).
  auth::TokenService& tokens;
  audit::AuditLog* audit = nullptr;        ///< Records key, client and role changes; null: not recorded.
};

/// /api/v1/api-keys[/{id}]: create (POST), list, view, revoke (DELETE).
core::Result<void> RegisterApiKeys(http::Router& router, const AccessServices& services);

/// /api/v1/roles[/{name}] (roles:manage) and /api/v1/users/{id}/roles[/{role}] (assignments).
core::Result<void> RegisterRoles(http::Router& router, const AccessServices& services);

/// /api/v1/oauth2/clients[/{id}] (clients:manage).
core::Result<void> RegisterOAuth2Clients(http::Router& router, const AccessServices& services);

/// POST /api/v1/oauth2/token, /introspect, /revoke and GET /.well-known/oauth-authorization-server.
core::Result<void> RegisterOAuth2(http::Router& router, const AccessServices& services);

/// GET /api/v1/auth/verify for gateways (nginx auth_request).
core::Result<void> RegisterVerify(http::Router& router);

}  // namespace basalt::api
