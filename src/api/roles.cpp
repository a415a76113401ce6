// /api/v1/roles[/{name}]: custom roles with permissions (roles:manage); the built-in `admin` and
// `user` are listed but cannot change. /api/v1/users/{id}/roles[/{role}]: role assignments.
// Nobody creates a role or assigns one that grants more than the caller holds itself.

#include <boost/json.hpp>

#include "api/access_cache.hpp"
#include "api/access_routes.hpp"
#include "api/access_support.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/access_store.hpp"
#include "auth/scopes.hpp"
#include "obs/log.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
constexpr std::string_view kBase = "/api/v1/roles";

json::object RoleJson(const std::string& name, const std::vector<std::string>& permissions, bool builtin) {
  return json::object{{"name", name}, {"permissions", detail::ToJsonArray(permissions)}, {"builtin", builtin}};
}

http::Response Internal(const http::Request& req, const core::Error& e) {
  obs::Log(obs::LogLevel::kError, "roles: storage failed",
           {{"request_id", req.request_id()}, {"error", e.message}, {"cause", e.cause}});
  return http::Problem(core::Error::Make(core::ErrorCode::kInternal, "Internal error."), req.request_id());
}

http::Response Problem(const http::Request& req, core::ErrorCode code, std::string message) {
  return http::Problem(core::Error::Make(code, std::move(message)), req.request_id());
}

std::string Actor(const http::Principal& p) {
  return std::string(p.kind_name()) + (p.id.empty() ? "" : ":" + p.id);
}

/// Parses `{"permissions": [...]}` (and `name` when `with_name`) and checks the caller may grant them.
core::Result<auth::Role> ParseRole(const http::Request& req, bool with_name) {
  auto body = detail::ParseBody(req);
  if (!body) return std::unexpected(body.error());
  if (!body->is_object()) return std::unexpected(detail::FieldProblem("", "type", "The body must be a JSON object."));
  const json::object& o = body->as_object();
  if (auto bad = detail::UnknownMembers(o, {"name", "permissions"})) return std::unexpected(*bad);
  auth::Role role;
  if (with_name) {
    auto name = detail::ParseName(o.if_contains("name"), "name", 63);
    if (!name) return std::unexpected(name.error());
    if (!auth::IsValidRoleName(*name)) {
      return std::unexpected(detail::FieldProblem("name", "invalid", "1 to 63 of a-z, 0-9, '_' and '-', starting with a letter."));
    }
    if (auth::IsBuiltinRole(*name)) return core::Fail(core::ErrorCode::kConflict, "Built-in roles cannot be redefined.");
    role.name = std::move(*name);
  } else if (const json::value* n = o.if_contains("name"); n && (!n->is_string() || n->as_string() != req.Param("name"))) {
    return core::Fail(core::ErrorCode::kConflict, "A role cannot be renamed.");
  }
  auto perms = detail::ParseScopeList(o.if_contains("permissions"), "permissions");
  if (!perms) return std::unexpected(perms.error());
  if (!auth::CoversAll(detail::Grantable(req.principal()), *perms)) {
    return core::Fail(core::ErrorCode::kForbidden, "A role cannot grant permissions beyond the caller's own.");
  }
  role.permissions = std::move(*perms);
  return role;
}

http::Task<http::Response> ListRoles(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  auto roles = co_await s.store.ListRoles(req.shard());
  if (!roles) co_return Internal(req, roles.error());
  json::array items;
  for (std::string_view b : {"admin", "user"}) items.push_back(RoleJson(std::string(b), auth::BuiltinRolePermissions(b), true));
  for (const auto& r : *roles) items.push_back(RoleJson(r.name, r.permissions, false));
  co_return http::Response::Json(200, json::serialize(json::object{{"items", std::move(items)}}));
}

http::Task<http::Response> GetRole(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  std::string name(req.Param("name"));
  auto perms = co_await s.cache.RolePermissions(req.shard(), name);
  if (!perms) co_return Internal(req, perms.error());
  if (!*perms) co_return Problem(req, core::ErrorCode::kNotFound, "No such role.");
  co_return http::Response::Json(200, json::serialize(RoleJson(name, **perms, auth::IsBuiltinRole(name))));
}

http::Task<http::Response> CreateRole(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  auto role = ParseRole(req, true);
  if (!role) co_return detail::Fail(req, role.error());
  auto created = co_await s.store.CreateRole(req.shard(), std::move(*role));
  if (!created) {
    if (created.error().code == core::ErrorCode::kConflict) co_return detail::Fail(req, created.error());
    co_return Internal(req, created.error());
  }
  s.cache.ForgetRoles();
  {
    std::string audit_action = "role.created";
    std::string audit_target = "role:" + created->name;
    std::vector<std::string> audit_changes{"permissions"};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  obs::Log(obs::LogLevel::kInfo, "role created",
           {{"request_id", req.request_id()}, {"role", created->name}, {"actor", Actor(req.principal())}});
  http::Response res = http::Response::Json(201, json::serialize(RoleJson(created->name, created->permissions, false)));
  res.Set("Location", std::string(kBase) + "/" + created->name);
  co_return res;
}

http::Task<http::Response> ReplaceRole(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  if (auth::IsBuiltinRole(req.Param("name"))) co_return Problem(req, core::ErrorCode::kConflict, "Built-in roles cannot change.");
  auto role = ParseRole(req, false);
  if (!role) co_return detail::Fail(req, role.error());
  role->name = std::string(req.Param("name"));
  // Changing a role the caller could not grant would hand its holders more than the caller has.
  std::string name = role->name;
  auto current = co_await s.cache.RolePermissions(req.shard(), name);
  if (!current) co_return Internal(req, current.error());
  if (!*current) co_return Problem(req, core::ErrorCode::kNotFound, "No such role.");
  if (!auth::CoversAll(detail::Grantable(req.principal()), **current))
    co_return Problem(req, core::ErrorCode::kForbidden, "This role grants permissions beyond the caller's own.");
  std::vector<std::string> perms = role->permissions;
  auto updated = co_await s.store.UpdateRole(req.shard(), std::move(*role));
  if (!updated) co_return Internal(req, updated.error());
  if (!*updated) co_return Problem(req, core::ErrorCode::kNotFound, "No such role.");
  s.cache.ForgetRoles();
  {
    std::string audit_action = "role.updated";
    std::string audit_target = "role:" + name;
    std::vector<std::string> audit_changes{"permissions"};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  obs::Log(obs::LogLevel::kInfo, "role changed",
           {{"request_id", req.request_id()}, {"role", name}, {"actor", Actor(req.principal())}});
  co_return http::Response::Json(200, json::serialize(RoleJson(name, perms, false)));
}

http::Task<http::Response> DeleteRole(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  if (auth::IsBuiltinRole(req.Param("name"))) co_return Problem(req, core::ErrorCode::kConflict, "Built-in roles cannot be deleted.");
  std::string name(req.Param("name"));
  auto current = co_await s.cache.RolePermissions(req.shard(), name);
  if (!current) co_return Internal(req, current.error());
  if (*current && !auth::CoversAll(detail::Grantable(req.principal()), **current))
    co_return Problem(req, core::ErrorCode::kForbidden, "This role grants permissions beyond the caller's own.");
  auto deleted = co_await s.store.DeleteRole(req.shard(), name);
  if (!deleted) co_return Internal(req, deleted.error());
  if (!*deleted) co_return Problem(req, core::ErrorCode::kNotFound, "No such role.");
  s.cache.ForgetRoles();
  {
    std::string audit_action = "role.deleted";
    std::string audit_target = "role:" + name;
    std::vector<std::string> audit_changes{};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  obs::Log(obs::LogLevel::kInfo, "role deleted",
           {{"request_id", req.request_id()}, {"role", name}, {"actor", Actor(req.principal())}});
  co_return http::Response::Empty(204);
}

http::Task<http::Response> UserRoles(const AccessServices& s, http::Request& req) {
  const http::Principal& caller = req.principal();
  std::string user(req.Param("id"));
  const bool self = !caller.user_id.empty() && caller.user_id == user;
  if (!self) {
    if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  }
  auto roles = co_await s.store.UserRoles(req.shard(), std::move(user));
  if (!roles) co_return Internal(req, roles.error());
  if (!*roles) co_return Problem(req, core::ErrorCode::kNotFound, "No such user.");
  co_return http::Response::Json(200, json::serialize(json::object{{"roles", detail::ToJsonArray(**roles)}}));
}

http::Task<http::Response> Assign(const AccessServices& s, http::Request& req, bool assigned) {
  if (auto denied = detail::RequirePermission(req, auth::kRolesManage)) co_return *denied;
  std::string user(req.Param("id"));
  std::string role(req.Param("role"));
  if (user.empty() || user.size() > 64) co_return Problem(req, core::ErrorCode::kNotFound, "No such user.");
  auto perms = co_await s.cache.RolePermissions(req.shard(), role);
  if (!perms) co_return Internal(req, perms.error());
  if (!*perms) co_return Problem(req, core::ErrorCode::kNotFound, "No such role.");
  // Mass assignment: a role manager cannot give anyone (itself included) more than it holds.
  if (!auth::CoversAll(detail::Grantable(req.principal()), **perms))
    co_return Problem(req, core::ErrorCode::kForbidden, "This role grants permissions beyond the caller's own.");
  auto changed = co_await s.store.SetUserRole(req.shard(), user, role, assigned);
  if (!changed) {
    if (changed.error().code == core::ErrorCode::kConflict) co_return detail::Fail(req, changed.error());
    co_return Internal(req, changed.error());
  }
  if (!*changed) co_return Problem(req, core::ErrorCode::kNotFound, "No such user.");
  s.cache.ForgetUser(user);
  if (**changed) {
    {
      std::string audit_action = assigned ? "role.assigned" : "role.unassigned";
      std::string audit_target = "user:" + user;
      std::vector<std::string> audit_changes{"roles." + role};
      co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
    }
  }
  obs::Log(obs::LogLevel::kInfo, assigned ? "role assigned" : "role unassigned",
           {{"request_id", req.request_id()}, {"user_id", user}, {"role", role}, {"actor", Actor(req.principal())}});
  co_return http::Response::Empty(204);
}

}  // namespace

core::Result<void> RegisterRoles(http::Router& router, const AccessServices& services) {
  const AccessServices* s = &services;
  const std::string base(kBase), one = base + "/{name}";
  const std::string user_roles = "/api/v1/users/{id}/roles", user_role = user_roles + "/{role}";
  if (auto r = router.Add(http::Method::kGet, base, [s](http::Request& req) { return ListRoles(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPost, base, [s](http::Request& req) { return CreateRole(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) { return GetRole(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPut, one, [s](http::Request& req) { return ReplaceRole(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kDelete, one, [s](http::Request& req) { return DeleteRole(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, user_roles, [s](http::Request& req) { return UserRoles(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPut, user_role, [s](http::Request& req) { return Assign(*s, req, true); }); !r) return r;
  return router.Add(http::Method::kDelete, user_role, [s](http::Request& req) { return Assign(*s, req, false); });
}

}  // namespace basalt::api
