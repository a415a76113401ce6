#pragma once
/// Private to api/: the one place where permissions and scopes are checked (auth/scopes.hpp has the
/// vocabulary). Admin routes call RequirePermission; record routes call RequireScope.

#include <optional>
#include <string_view>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/task.hpp"

namespace basalt::audit {
class AuditLog;
}

namespace basalt::api::detail {

/// True when `principal` may use `permission` (for `collection`, "" when not about one):
/// the admin token always; a user when its roles grant it; an API key when its owner's roles grant
/// it AND the key's scopes cover it; a service token when its scopes cover it; anonymous never.
bool Permits(const http::Principal& principal, std::string_view permission, std::string_view collection = {});

/// The gate of admin routes: nullopt when permitted, else 401 (anonymous, with WWW-Authenticate)
/// or 403 problem+json naming the missing permission.
std::optional<http::Response> RequirePermission(const http::Request& req, std::string_view permission,
                                                std::string_view collection = {});

/// The gate of record routes: anonymous callers and users pass (the collection's rules decide);
/// API keys and service tokens need the scope (`records:read` / `records:write`, or its
/// per-collection form `records:read:<collection>`), else 403.
std::optional<http::Response> RequireScope(const http::Request& req, std::string_view scope,
                                           std::string_view collection = {});

/// Everything the principal may hand out: all scopes for a superuser, else the permissions it holds
/// (intersected with its scopes for API keys, its scopes for services).
std::vector<std::string> Grantable(const http::Principal& principal);

/// Appends `action` on `target` by the request's principal to the audit log (when `log` is not
/// null), in its own transaction after the action committed; a failed append is logged.
http::Task<void> RecordAudit(audit::AuditLog* log, const http::Request& req, std::string action, std::string target,
                             std::vector<std::string> changes = {});

}  // namespace basalt::api::detail
