// /api/v1/collections[/{name}]: collection management, under the `collections:manage` permission.
// PATCH takes a partial definition merged into the current one (RFC 7396: `fields` and `indexes`
// replace the whole list, `rules` merge by key); a field renames with "previous_name".

#include <boost/json.hpp>
#include <map>
#include <set>

#include "api/audit_log.hpp"
#include "api/data_routes.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "core/crypto.hpp"
#include "schema/catalog.hpp"
#include "schema/collection.hpp"
#include "schema/record.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using detail::Caller;

constexpr std::string_view kBase = "/api/v1/collections";

std::string Etag(std::int64_t version) { return "\"" + std::to_string(version) + "\""; }

http::Response CollectionResponse(int status, const schema::Collection& c) {
  http::Response res = http::Response::Json(status, json::serialize(schema::ToJson(c)));
  res.Set("ETag", Etag(c.version));
  res.Set("Cache-Control", "no-store");
  return res;
}

// The gate of every collection route: the `collections:manage` permission (admins have it; a custom
// role may grant it). 401 for an anonymous caller, 403 for one without it.
std::optional<http::Response> RequireAdmin(const http::Request& req, const DataServices&) {
  return detail::RequirePermission(req, auth::kCollectionsManage);
}

/// The named collection, refreshing the catalog once (rate-limited) when it is unknown here: another
/// process may have created it.
http::Task<std::shared_ptr<const schema::Collection>> FindCollection(const DataServices& s, const http::Request& req) {
  auto snap = s.catalog.snapshot();
  auto it = snap->collections.find(req.Param("name"));
  if (it != snap->collections.end()) co_return it->second;
  if (!schema::IsValidName(req.Param("name"), 61)) co_return nullptr;
  auto refreshed = co_await s.catalog.Refresh(req.shard());
  if (!refreshed || !*refreshed) co_return nullptr;
  snap = s.catalog.snapshot();
  it = snap->collections.find(req.Param("name"));
  co_return it == snap->collections.end() ? nullptr : it->second;
}

/// A collection with secret fields needs a key to seal them: 409 naming each secret field otherwise.
std::optional<core::Error> NeedsKeys(const DataServices& s, const schema::CollectionSpec& spec) {
  if (!s.keys.empty() || !schema::HasSecrets(spec)) return std::nullopt;
  core::Error e = core::Error::Make(core::ErrorCode::kConflict,
                                    "Secret fields need an encryption key: set secrets.keys in the server's "
                                    "configuration first.");
  for (std::size_t i = 0; i < spec.fields.size(); ++i) {
    if (spec.fields[i].kind == schema::FieldKind::kSecret)
      e.fields.push_back({"fields[" + std::to_string(i) + "].type", "no_key", "no encryption key is configured"});
  }
  return e;
}

// Absent, null and [] all mean "not set" when comparing definitions.
bool Unset(const json::value* v) { return !v || v->is_null() || (v->is_array() && v->as_array().empty()); }
bool Same(const json::value* a, const json::value* b) {
  if (Unset(a) || Unset(b)) return Unset(a) && Unset(b);
  return *a == *b;
}

// Names of what differs between two collection definitions (schema::ToJson shapes): "fields.<name>"
// for each added, removed or changed field, "rules.<op>" for each changed rule, "indexes", and any
// other changed top-level key. Names only, never values. `before` is {} for a new collection.
std::vector<std::string> ChangedNames(const json::object& before, const json::object& after) {
  std::vector<std::string> out;
  auto by_name = [](const json::object& spec) {
    std::map<std::string, json::value> fields;
    if (const auto* f = spec.if_contains("fields"); f && f->is_array()) {
      for (const auto& field : f->as_array()) {
        if (const auto* n = field.is_object() ? field.as_object().if_contains("name") : nullptr; n && n->is_string())
          fields.emplace(std::string(n->as_string()), field);
      }
    }
    return fields;
  };
  const auto old_fields = by_name(before), new_fields = by_name(after);
  std::set<std::string> names;
  for (const auto& [n, v] : old_fields) names.insert(n);
  for (const auto& [n, v] : new_fields) names.insert(n);
  for (const auto& n : names) {
    auto a = old_fields.find(n), b = new_fields.find(n);
    if (a == old_fields.end() || b == new_fields.end() || a->second != b->second) out.push_back("fields." + n);
  }
  const json::object empty;
  const auto* ra = before.if_contains("rules");
  const auto* rb = after.if_contains("rules");
  const json::object& rules_a = ra && ra->is_object() ? ra->as_object() : empty;
  const json::object& rules_b = rb && rb->is_object() ? rb->as_object() : empty;
  std::set<std::string> ops;
  for (const auto& [k, v] : rules_a) ops.insert(std::string(k));
  for (const auto& [k, v] : rules_b) ops.insert(std::string(k));
  for (const auto& op : ops) {
    if (!Same(rules_a.if_contains(op), rules_b.if_contains(op))) out.push_back("rules." + op);
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : before) keys.insert(std::string(k));
  for (const auto& [k, v] : after) keys.insert(std::string(k));
  for (const auto& k : keys) {
    if (k == "fields" || k == "rules" || k == "name") continue;
    if (!Same(before.if_contains(k), after.if_contains(k))) out.push_back(k);
  }
  return out;
}

// The audit step of a collection change, or none when the audit log is not wired.
store::TransactionWork AuditStep(const DataServices& s, const http::Request& req, std::string action,
                                 const std::string& name, std::vector<std::string> changes) {
  if (!s.audit) return {};
  audit::Entry entry = AuditEntry(req, std::move(action), "collection:" + name);
  entry.changes = std::move(changes);
  return s.audit->AppendStep(std::move(entry));
}

std::optional<std::int64_t> IfMatchVersion(const http::Request& req, bool& malformed) {
  malformed = false;
  auto h = req.Header("If-Match");
  if (!h) return std::nullopt;
  std::string_view v = *h;
  if (v == "*") return std::nullopt;
  if (v.size() < 3 || v.front() != '"' || v.back() != '"') {
    malformed = true;
    return std::nullopt;
  }
  try {
    return std::stoll(std::string(v.substr(1, v.size() - 2)));
  } catch (...) {
    malformed = true;
    return std::nullopt;
  }
}

}  // namespace

core::Result<void> RegisterCollections(http::Router& router, const DataServices& services) {
  const DataServices* s = &services;
  const std::string base(kBase);
  const std::string one = base + "/{name}";

  if (auto r = router.Add(http::Method::kPost, base, [s](http::Request& req) -> http::Task<http::Response> {
        if (auto denied = RequireAdmin(req, *s)) co_return *denied;
        auto body = detail::ParseBody(req);
        if (!body) co_return detail::Fail(req, body.error());
        auto spec = schema::ParseCollectionSpec(*body);
        if (!spec) co_return detail::Fail(req, spec.error());
        for (std::size_t i = 0; i < spec->fields.size(); ++i) {
          if (!spec->fields[i].previous_name.empty()) {
            core::Error e = core::Error::Make(core::ErrorCode::kValidation, "The collection definition is invalid.");
            e.fields.push_back({"fields[" + std::to_string(i) + "].previous_name", "unknown_field",
                                "only allowed when changing a collection"});
            co_return detail::Fail(req, e);
          }
        }
        if (auto no_key = NeedsKeys(*s, *spec)) co_return detail::Fail(req, *no_key);
        const std::string created_name = spec->name;
        store::TransactionWork step =
            AuditStep(*s, req, "collection.created", created_name, ChangedNames(json::object{}, schema::ToJson(*spec)));
        auto created = co_await s->catalog.Create(req.shard(), std::move(*spec), std::move(step));
        if (!created) co_return detail::Fail(req, created.error());
        http::Response res = CollectionResponse(201, **created);
        res.Set("Location", std::string(kBase) + "/" + (*created)->spec.name);
        co_return res;
      });
      !r)
    return r;

  if (auto r = router.Add(http::Method::kGet, base, [s](http::Request& req) -> http::Task<http::Response> {
        if (auto denied = RequireAdmin(req, *s)) co_return *denied;
        auto snap = s->catalog.snapshot();
        json::array items;
        for (const auto& [name, c] : snap->collections) items.emplace_back(schema::ToJson(*c));
        http::Response res = http::Response::Json(200, json::serialize(json::object{{"items", std::move(items)}}));
        res.Set("Cache-Control", "no-store");
        co_return res;
      });
      !r)
    return r;

  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) -> http::Task<http::Response> {
        if (auto denied = RequireAdmin(req, *s)) co_return *denied;
        auto found = co_await FindCollection(*s, req);
        if (!found) co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kNotFound, "No such collection."));
        co_return CollectionResponse(200, *found);
      });
      !r)
    return r;

  auto change = [s](bool merge) {
    return [s, merge](http::Request& req) -> http::Task<http::Response> {
      if (auto denied = RequireAdmin(req, *s)) co_return *denied;
      auto found = co_await FindCollection(*s, req);
      if (!found) co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kNotFound, "No such collection."));
      auto body = detail::ParseBody(req, merge);
      if (!body) co_return detail::Fail(req, body.error());
      if (!body->is_object())
        co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kValidation, "The body must be a JSON object."));
      json::value target = body->as_object();
      const std::string& name = found->spec.name;
      if (merge) target = schema::MergePatch(json::value(schema::ToJson(found->spec)), *body);
      if (const json::value* n = target.as_object().if_contains("name"); n && (!n->is_string() || n->as_string() != name))
        co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kConflict, "A collection cannot be renamed."));
      if (!merge) target.as_object()["name"] = name;
      auto spec = schema::ParseCollectionSpec(target);
      if (!spec) co_return detail::Fail(req, spec.error());
      bool malformed = false;
      auto expected = IfMatchVersion(req, malformed);
      if (malformed)
        co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kPreconditionFailed, "If-Match does not match."));
      if (auto no_key = NeedsKeys(*s, *spec)) co_return detail::Fail(req, *no_key);
      store::TransactionWork step = AuditStep(*s, req, "collection.updated", name,
                                              ChangedNames(schema::ToJson(found->spec), schema::ToJson(*spec)));
      auto updated = co_await s->catalog.Update(req.shard(), std::move(*spec), expected, std::move(step));
      if (!updated) co_return detail::Fail(req, updated.error());
      co_return CollectionResponse(200, **updated);
    };
  };
  if (auto r = router.Add(http::Method::kPatch, one, change(true)); !r) return r;
  if (auto r = router.Add(http::Method::kPut, one, change(false)); !r) return r;

  return router.Add(http::Method::kDelete, one, [s](http::Request& req) -> http::Task<http::Response> {
    if (auto denied = RequireAdmin(req, *s)) co_return *denied;
    if (!co_await FindCollection(*s, req))
      co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kNotFound, "No such collection."));
    // Users' credentials and sessions hang off this collection's records (auth/users.hpp).
    if (req.Param("name") == "users")
      co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kConflict,
                                                    "The built-in users collection cannot be dropped."));
    std::string dropped_name(req.Param("name"));
    store::TransactionWork step = AuditStep(*s, req, "collection.deleted", dropped_name, {});
    auto dropped = co_await s->catalog.Drop(req.shard(), std::move(dropped_name), std::move(step));
    if (!dropped) co_return detail::Fail(req, dropped.error());
    co_return http::Response::Empty(204);
  });
}

}  // namespace basalt::api
