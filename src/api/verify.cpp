// GET /api/v1/auth/verify: for API gateways (nginx `auth_request`). 200 with the caller's identity
// in response headers; 401 (with WWW-Authenticate) without valid credentials; 403 when a scope or
// role asked for in the query (`?scope=records:read&role=editor`, repeatable) is missing.

#include "api/access_routes.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "core/strings.hpp"

namespace basalt::api {
namespace {

http::Task<http::Response> Verify(http::Request& req) {
  const http::Principal& p = req.principal();
  if (p.anonymous()) co_return detail::Unauthorized(req, "Authentication is required.");
  for (std::string_view q = req.query(); !q.empty();) {
    const std::size_t amp = std::min(q.find('&'), q.size());
    const std::string_view pair = q.substr(0, amp);
    q.remove_prefix(std::min(amp + 1, q.size()));
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = pair.substr(0, eq);
    auto value = detail::DecodeComponent(pair.substr(eq + 1));
    if (!value) co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kBadRequest, "Malformed query."));
    if (key == "scope") {
      for (const auto& scope : auth::SplitScopes(*value)) {
        std::string_view base = scope, collection;
        for (std::string_view b : {auth::kRecordsRead, auth::kRecordsWrite}) {
          if (scope.size() > b.size() + 1 && std::string_view(scope).starts_with(b) && scope[b.size()] == ':') {
            base = b;
            collection = std::string_view(scope).substr(b.size() + 1);
          }
        }
        if (!auth::IsValidScope(scope)) {
          co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kBadRequest, "Unknown scope in the query."));
        }
        // Record scopes are judged as the record routes judge them (the rules decide for users);
        // every other name as the admin routes do.
        const bool record_scope = base == auth::kRecordsRead || base == auth::kRecordsWrite;
        auto denied = record_scope ? detail::RequireScope(req, base, collection)
                                   : detail::RequirePermission(req, base, collection);
        if (denied) co_return *denied;
      }
    } else if (key == "role") {
      if (!p.HasRole(*value) && !p.superuser()) {
        co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden, "This needs the role '" + value->substr(0, 64) + "'."),
                                req.request_id());
      }
    }
  }
  http::Response res = http::Response::Empty(200);
  res.Set("X-Basalt-Principal-Kind", std::string(p.kind_name()));
  res.Set("X-Basalt-Principal-Id", p.id);
  res.Set("X-Basalt-User-Id", p.user_id);
  res.Set("X-Basalt-Roles", core::Join(p.roles, ","));
  res.Set("X-Basalt-Scopes", core::Join(p.scopes, " "));
  res.Set("X-Basalt-Permissions", core::Join(p.permissions, " "));
  res.Set("Cache-Control", "no-store");
  co_return res;
}

}  // namespace

core::Result<void> RegisterVerify(http::Router& router) {
  return router.Add(http::Method::kGet, "/api/v1/auth/verify", [](http::Request& req) { return Verify(req); });
}

}  // namespace basalt::api
