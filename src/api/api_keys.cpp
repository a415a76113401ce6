// /api/v1/api-keys[/{id}]: API keys. Admins (and holders of `api_keys:manage`) create keys for any
// user; users create keys for themselves when `auth.user_api_keys` is on. Nobody hands out a scope
// beyond what it holds itself. The token `bsk_<id>_<secret>` is shown once, in the 201 answer.

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
using Kind = http::Principal::Kind;
constexpr std::string_view kBase = "/api/v1/api-keys";
constexpr std::int64_t kMaxLifetimeS = 10LL * 366 * 24 * 3600;

json::object KeyJson(const auth::ApiKey& k) {
  return json::object{{"id", k.id},
                      {"name", k.name},
                      {"user_id", k.user_id.empty() ? json::value(nullptr) : json::value(k.user_id)},
                      {"scopes", detail::ToJsonArray(k.scopes)},
                      {"prefix", "bsk_" + k.id},
                      {"created_at", detail::TimeOrNull(k.created_at)},
                      {"expires_at", detail::TimeOrNull(k.expires_at)},
                      {"last_used_at", detail::TimeOrNull(k.last_used_at)},
                      {"revoked_at", detail::TimeOrNull(k.revoked_at)},
                      {"active", k.Usable(auth::NowMs())}};
}

http::Response Internal(const http::Request& req, const core::Error& e) {
  obs::Log(obs::LogLevel::kError, "api keys: storage failed",
           {{"request_id", req.request_id()}, {"error", e.message}, {"cause", e.cause}});
  return http::Problem(core::Error::Make(core::ErrorCode::kInternal, "Internal error."), req.request_id());
}

http::Response NotFound(const http::Request& req) {
  return http::Problem(core::Error::Make(core::ErrorCode::kNotFound, "No such API key."), req.request_id());
}

bool Manager(const http::Principal& p) { return detail::Permits(p, auth::kApiKeysManage); }

std::string Actor(const http::Principal& p) {
  return std::string(p.kind_name()) + (p.id.empty() ? "" : ":" + p.id);
}

http::Task<http::Response> Create(const AccessServices& s, http::Request& req) {
  const http::Principal& caller = req.principal();
  const bool manager = Manager(caller);
  if (!manager) {
    if (caller.anonymous()) co_return detail::Unauthorized(req, "Authentication is required.");
    if (caller.kind != Kind::kUser || !s.user_api_keys) {
      co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden, "This needs the permission 'api_keys:manage'."),
                              req.request_id());
    }
  }
  auto body = detail::ParseBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (!body->is_object()) co_return detail::Fail(req, detail::FieldProblem("", "type", "The body must be a JSON object."));
  const json::object& o = body->as_object();
  if (auto bad = detail::UnknownMembers(o, {"name", "scopes", "user_id", "expires_in_s"})) co_return detail::Fail(req, *bad);
  auto name = detail::ParseName(o.if_contains("name"), "name", 100);
  if (!name) co_return detail::Fail(req, name.error());
  auto scopes = detail::ParseScopeList(o.if_contains("scopes"), "scopes");
  if (!scopes) co_return detail::Fail(req, scopes.error());
  auth::ApiKey key;
  key.name = std::move(*name);
  key.scopes = std::move(*scopes);
  key.created_by = Actor(caller);
  if (const json::value* u = o.if_contains("user_id"); u && !u->is_null()) {
    if (!u->is_string() || u->as_string().empty() || u->as_string().size() > 64) {
      co_return detail::Fail(req, detail::FieldProblem("user_id", "invalid", "Must be a user id."));
    }
    key.user_id = std::string(u->as_string());
  } else if (caller.kind == Kind::kUser) {
    key.user_id = caller.user_id;
  }
  // Mass assignment: a user creates keys only for itself, a manager for anyone, and no one hands
  // out a scope it does not hold.
  if (!manager && key.user_id != caller.user_id) {
    co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden, "You may create API keys only for yourself."),
                            req.request_id());
  }
  if (!auth::CoversAll(detail::Grantable(caller), key.scopes)) {
    co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden,
                                              "A key cannot carry scopes beyond the creator's own permissions."),
                            req.request_id());
  }
  if (!key.user_id.empty()) {
    // The owner must exist: a key acts with its owner's roles.
    auto owner = co_await s.store.UserRoles(req.shard(), key.user_id);
    if (!owner) co_return Internal(req, owner.error());
    if (!*owner) co_return detail::Fail(req, detail::FieldProblem("user_id", "unknown", "No such user."));
  }
  if (const json::value* e = o.if_contains("expires_in_s"); e && !e->is_null()) {
    if (!e->is_int64() || e->as_int64() < 1 || e->as_int64() > kMaxLifetimeS) {
      co_return detail::Fail(req, detail::FieldProblem("expires_in_s", "range", "Must be an integer from 1 to 316224000."));
    }
    key.expires_at = auth::NowMs() + e->as_int64() * 1000;
  }
  auto created = co_await s.store.CreateApiKey(req.shard(), std::move(key));
  if (!created) co_return Internal(req, created.error());
  obs::Log(obs::LogLevel::kInfo, "api key created",
           {{"request_id", req.request_id()}, {"key_id", created->key.id}, {"actor", Actor(caller)}});
  std::string key_id = created->key.id;
  {
    std::string audit_action = "api_key.created";
    std::string audit_target = "api_key:" + key_id;
    std::vector<std::string> audit_changes{"scopes", "user_id", "expires_at"};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  json::object out = KeyJson(created->key);
  out["key"] = created->token;
  http::Response res = http::Response::Json(201, json::serialize(out));
  res.Set("Location", std::string(kBase) + "/" + created->key.id);
  res.Set("Cache-Control", "no-store");
  co_return res;
}

http::Task<http::Response> List(const AccessServices& s, http::Request& req) {
  const http::Principal& caller = req.principal();
  if (caller.anonymous()) co_return detail::Unauthorized(req, "Authentication is required.");
  std::optional<std::string> owner;
  if (Manager(caller)) {
    for (std::string_view q = req.query(); !q.empty();) {
      const std::size_t amp = std::min(q.find('&'), q.size());
      const std::string_view pair = q.substr(0, amp);
      if (pair.starts_with("user_id=")) {
        auto decoded = detail::DecodeComponent(pair.substr(8));
        if (!decoded) co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kBadRequest, "Malformed user_id."));
        owner = std::move(*decoded);
      }
      q.remove_prefix(std::min(amp + 1, q.size()));
    }
  } else if (caller.kind == Kind::kUser || caller.kind == Kind::kApiKey) {
    if (caller.user_id.empty()) co_return http::Response::Json(200, R"({"items":[]})");
    owner = caller.user_id;
  } else {
    co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden, "This needs the permission 'api_keys:manage'."),
                            req.request_id());
  }
  auto keys = co_await s.store.ListApiKeys(req.shard(), std::move(owner));
  if (!keys) co_return Internal(req, keys.error());
  json::array items;
  for (const auto& k : *keys) items.push_back(KeyJson(k));
  http::Response res = http::Response::Json(200, json::serialize(json::object{{"items", std::move(items)}}));
  res.Set("Cache-Control", "no-store");
  co_return res;
}

/// The key when the caller may see it (its owner or a manager); nullopt (404) otherwise, so ids of
/// other users' keys are not confirmed.
http::Task<core::Result<std::optional<auth::ApiKey>>> Visible(const AccessServices& s, const http::Request& req) {
  std::string id(req.Param("id"));
  if (id.size() > 64) co_return std::optional<auth::ApiKey>{};
  auto key = co_await s.store.GetApiKey(req.shard(), std::move(id));
  if (!key) co_return std::unexpected(std::move(key.error()));
  if (!*key) co_return std::optional<auth::ApiKey>{};
  const http::Principal& caller = req.principal();
  if (Manager(caller)) co_return std::move(*key);
  const bool owner = (caller.kind == Kind::kUser || caller.kind == Kind::kApiKey) && !caller.user_id.empty() &&
                     (*key)->user_id == caller.user_id;
  if (!owner) co_return std::optional<auth::ApiKey>{};
  co_return std::move(*key);
}

http::Task<http::Response> Get(const AccessServices& s, http::Request& req) {
  if (req.principal().anonymous()) co_return detail::Unauthorized(req, "Authentication is required.");
  auto key = co_await Visible(s, req);
  if (!key) co_return Internal(req, key.error());
  if (!*key) co_return NotFound(req);
  http::Response res = http::Response::Json(200, json::serialize(KeyJson(**key)));
  res.Set("Cache-Control", "no-store");
  co_return res;
}

http::Task<http::Response> Revoke(const AccessServices& s, http::Request& req) {
  if (req.principal().anonymous()) co_return detail::Unauthorized(req, "Authentication is required.");
  auto key = co_await Visible(s, req);
  if (!key) co_return Internal(req, key.error());
  if (!*key) co_return NotFound(req);
  std::string id = (*key)->id;
  auto revoked = co_await s.store.RevokeApiKey(req.shard(), id);
  if (!revoked) co_return Internal(req, revoked.error());
  s.cache.ForgetApiKey(id);
  if (*revoked) {
    std::string audit_action = "api_key.revoked";
    std::string audit_target = "api_key:" + id;
    std::vector<std::string> audit_changes{};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  obs::Log(obs::LogLevel::kInfo, "api key revoked",
           {{"request_id", req.request_id()}, {"key_id", id}, {"actor", Actor(req.principal())}});
  co_return http::Response::Empty(204);
}

}  // namespace

core::Result<void> RegisterApiKeys(http::Router& router, const AccessServices& services) {
  const AccessServices* s = &services;
  const std::string one = std::string(kBase) + "/{id}";
  if (auto r = router.Add(http::Method::kPost, std::string(kBase), [s](http::Request& req) { return Create(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, std::string(kBase), [s](http::Request& req) { return List(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) { return Get(*s, req); }); !r) return r;
  return router.Add(http::Method::kDelete, one, [s](http::Request& req) { return Revoke(*s, req); });
}

}  // namespace basalt::api
