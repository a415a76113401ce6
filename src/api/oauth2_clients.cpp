// /api/v1/oauth2/clients[/{id}]: OAuth2 clients for the client-credentials grant (clients:manage).
// The client secret is shown once, in the 201 answer, and stored as a SHA-256 hash. A client's
// scopes are the most its tokens may carry; nobody gives a client more than it holds itself.

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
constexpr std::string_view kBase = "/api/v1/oauth2/clients";

json::object ClientJson(const auth::Client& c) {
  return json::object{{"id", c.id},
                      {"client_id", c.id},
                      {"name", c.name},
                      {"scopes", detail::ToJsonArray(c.scopes)},
                      {"created_at", detail::TimeOrNull(c.created_at)},
                      {"revoked_at", detail::TimeOrNull(c.revoked_at)},
                      {"active", !c.revoked_at.has_value()}};
}

http::Response Internal(const http::Request& req, const core::Error& e) {
  obs::Log(obs::LogLevel::kError, "oauth2 clients: storage failed",
           {{"request_id", req.request_id()}, {"error", e.message}, {"cause", e.cause}});
  return http::Problem(core::Error::Make(core::ErrorCode::kInternal, "Internal error."), req.request_id());
}

http::Response NotFound(const http::Request& req) {
  return http::Problem(core::Error::Make(core::ErrorCode::kNotFound, "No such client."), req.request_id());
}

std::string Actor(const http::Principal& p) {
  return std::string(p.kind_name()) + (p.id.empty() ? "" : ":" + p.id);
}

http::Task<http::Response> Create(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kClientsManage)) co_return *denied;
  auto body = detail::ParseBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (!body->is_object()) co_return detail::Fail(req, detail::FieldProblem("", "type", "The body must be a JSON object."));
  const json::object& o = body->as_object();
  if (auto bad = detail::UnknownMembers(o, {"name", "scopes"})) co_return detail::Fail(req, *bad);
  auto name = detail::ParseName(o.if_contains("name"), "name", 100);
  if (!name) co_return detail::Fail(req, name.error());
  auto scopes = detail::ParseScopeList(o.if_contains("scopes"), "scopes");
  if (!scopes) co_return detail::Fail(req, scopes.error());
  if (!auth::CoversAll(detail::Grantable(req.principal()), *scopes)) {
    co_return http::Problem(core::Error::Make(core::ErrorCode::kForbidden,
                                              "A client cannot carry scopes beyond the creator's own permissions."),
                            req.request_id());
  }
  auth::Client client;
  client.name = std::move(*name);
  client.scopes = std::move(*scopes);
  client.created_by = Actor(req.principal());
  auto created = co_await s.store.CreateClient(req.shard(), std::move(client));
  if (!created) co_return Internal(req, created.error());
  obs::Log(obs::LogLevel::kInfo, "oauth2 client created",
           {{"request_id", req.request_id()}, {"client_id", created->client.id}, {"actor", Actor(req.principal())}});
  std::string client_id = created->client.id;
  {
    std::string audit_action = "oauth2_client.created";
    std::string audit_target = "oauth2_client:" + client_id;
    std::vector<std::string> audit_changes{"scopes"};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  json::object out = ClientJson(created->client);
  out["client_secret"] = created->secret;
  http::Response res = http::Response::Json(201, json::serialize(out));
  res.Set("Location", std::string(kBase) + "/" + created->client.id);
  res.Set("Cache-Control", "no-store");
  co_return res;
}

http::Task<http::Response> List(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kClientsManage)) co_return *denied;
  auto clients = co_await s.store.ListClients(req.shard());
  if (!clients) co_return Internal(req, clients.error());
  json::array items;
  for (const auto& c : *clients) items.push_back(ClientJson(c));
  co_return http::Response::Json(200, json::serialize(json::object{{"items", std::move(items)}}));
}

http::Task<http::Response> Get(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kClientsManage)) co_return *denied;
  std::string id(req.Param("id"));
  auto client = co_await s.store.GetClient(req.shard(), std::move(id));
  if (!client) co_return Internal(req, client.error());
  if (!*client) co_return NotFound(req);
  co_return http::Response::Json(200, json::serialize(ClientJson(**client)));
}

http::Task<http::Response> Revoke(const AccessServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kClientsManage)) co_return *denied;
  std::string id(req.Param("id"));
  auto client = co_await s.store.GetClient(req.shard(), id);
  if (!client) co_return Internal(req, client.error());
  if (!*client) co_return NotFound(req);
  auto revoked = co_await s.store.RevokeClient(req.shard(), id);
  if (!revoked) co_return Internal(req, revoked.error());
  s.cache.ForgetClient(id);
  if (*revoked) {
    std::string audit_action = "oauth2_client.revoked";
    std::string audit_target = "oauth2_client:" + id;
    std::vector<std::string> audit_changes{};
    co_await detail::RecordAudit(s.audit, req, std::move(audit_action), std::move(audit_target), std::move(audit_changes));
  }
  obs::Log(obs::LogLevel::kInfo, "oauth2 client revoked",
           {{"request_id", req.request_id()}, {"client_id", id}, {"actor", Actor(req.principal())}});
  co_return http::Response::Empty(204);
}

}  // namespace

core::Result<void> RegisterOAuth2Clients(http::Router& router, const AccessServices& services) {
  const AccessServices* s = &services;
  const std::string base(kBase), one = base + "/{id}";
  if (auto r = router.Add(http::Method::kPost, base, [s](http::Request& req) { return Create(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, base, [s](http::Request& req) { return List(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) { return Get(*s, req); }); !r) return r;
  return router.Add(http::Method::kDelete, one, [s](http::Request& req) { return Revoke(*s, req); });
}

}  // namespace basalt::api
