#include "api/authorize.hpp"

#include "api/audit_log.hpp"
#include "api/data_support.hpp"
#include "audit/audit.hpp"
#include "obs/log.hpp"
#include "auth/scopes.hpp"
#include "http/problem.hpp"

namespace basalt::api::detail {

using Kind = http::Principal::Kind;

bool Permits(const http::Principal& p, std::string_view permission, std::string_view collection) {
  switch (p.kind) {
    case Kind::kAdminToken: return true;
    case Kind::kUser: return auth::Covers(p.permissions, permission, collection);
    case Kind::kApiKey:
      return auth::Covers(p.permissions, permission, collection) && auth::Covers(p.scopes, permission, collection);
    case Kind::kService: return auth::Covers(p.scopes, permission, collection);
    case Kind::kAnonymous: break;
  }
  return false;
}

std::optional<http::Response> RequirePermission(const http::Request& req, std::string_view permission,
                                                std::string_view collection) {
  const auto& p = req.principal();
  if (Permits(p, permission, collection)) return std::nullopt;
  if (p.anonymous()) return Unauthorized(req, "Authentication is required.");
  return http::Problem(core::Error::Make(core::ErrorCode::kForbidden,
                                         "This needs the permission '" + std::string(permission) + "'."),
                       req.request_id());
}

std::optional<http::Response> RequireScope(const http::Request& req, std::string_view scope,
                                           std::string_view collection) {
  const auto& p = req.principal();
  if (p.kind != Kind::kApiKey && p.kind != Kind::kService) return std::nullopt;
  if (auth::Covers(p.scopes, scope, collection)) return std::nullopt;
  return http::Problem(core::Error::Make(core::ErrorCode::kForbidden,
                                         "The credential lacks the scope '" + std::string(scope) + "'."),
                       req.request_id());
}

std::vector<std::string> Grantable(const http::Principal& p) {
  if (p.superuser()) return {std::string(auth::kAdmin)};
  switch (p.kind) {
    case Kind::kUser: return p.permissions;
    case Kind::kService: return p.scopes;
    case Kind::kApiKey: {
      std::vector<std::string> out;
      for (const auto& s : p.scopes) {
        if (auth::CoversAll(p.permissions, {s})) out.push_back(s);
      }
      for (const auto& perm : p.permissions) {
        if (auth::CoversAll(p.scopes, {perm})) out.push_back(perm);
      }
      return out;
    }
    default: break;
  }
  return {};
}

http::Task<void> RecordAudit(audit::AuditLog* log, const http::Request& req, std::string action, std::string target,
                             std::vector<std::string> changes) {
  if (log == nullptr) co_return;
  audit::Entry entry = AuditEntry(req, std::move(action), std::move(target));
  entry.changes = std::move(changes);
  auto appended = co_await log->Append(req.shard(), std::move(entry));
  if (!appended) {
    obs::Log(obs::LogLevel::kError, "audit append failed",
             {{"request_id", req.request_id()}, {"error", appended.error().message}, {"cause", appended.error().cause}});
  }
}

}  // namespace basalt::api::detail
