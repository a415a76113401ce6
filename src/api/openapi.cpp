// GET /api/v1/openapi.json: OpenAPI 3.1.0 generated from the live catalog.
//
// What a response schema promises is kept to what the server guarantees. Field options (min, max,
// lengths, pattern, select values, required) can change without touching stored data (see
// docs/data-api.md), so they constrain request bodies (<Name>Create, <Name>Patch) but not
// records in responses (<Name>Record), which carry types, formats and nullability only.

#include "api/openapi.hpp"

#include <atomic>
#include <cctype>
#include <cmath>
#include <memory>

#include <boost/json.hpp>

#include "api/routes.hpp"
#include "schema/collection.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using schema::FieldKind;
using schema::FieldSpec;

json::value Ref(std::string_view kind, std::string_view name) {
  return json::object{{"$ref", "#/components/" + std::string(kind) + "/" + std::string(name)}};
}
json::value SchemaRef(std::string_view name) { return Ref("schemas", name); }

json::object Str(std::string_view description = {}) {
  json::object o{{"type", "string"}};
  if (!description.empty()) o["description"] = description;
  return o;
}

json::value Number(double d) {
  if (std::floor(d) == d && std::fabs(d) < 9.0e15) return json::value(static_cast<std::int64_t>(d));
  return json::value(d);
}

// ---- problem responses ---------------------------------------------------------------------------

struct StatusInfo {
  int status;
  const char* description;
};

constexpr StatusInfo kProblems[] = {
    {400, "Malformed request: bad syntax, query parameter, filter, sort or cursor."},
    {401, "Missing or invalid credentials (`WWW-Authenticate: Bearer`)."},
    {403, "The collection's rule does not allow this."},
    {404, "No such resource."},
    {408, "The request was not received in time."},
    {409, "Conflict: unique violation, a record still referenced, an unsafe schema change, or an "
          "Idempotency-Key still in flight."},
    {412, "If-Match does not match the current version."},
    {413, "The body is over its limit."},
    {414, "The request line is too long."},
    {415, "Unsupported Content-Type."},
    {422, "Validation failed (`errors` per field), or an Idempotency-Key reused with another request."},
    {429, "Too many requests from this identity (`Retry-After`, `RateLimit-*`); code `rate_limited`."},
    {431, "The header block is too large."},
    {500, "Internal error (details are logged with the request id, never sent)."},
    {503, "Not ready, draining, at the connection limit, or the database is unavailable."},
};

std::string ProblemName(int status) { return "Problem" + std::to_string(status); }

/// Statuses every operation can give, whatever its handler does (the HTTP layer).
constexpr int kTransport[] = {400, 408, 413, 414, 429, 431, 500, 503};

class Responses {
 public:
  Responses& Add(int status, json::value response) {
    entries_.emplace_back(status, std::move(response));
    return *this;
  }
  Responses& Problems(std::initializer_list<int> statuses) {
    for (int s : statuses) Problem(s);
    return *this;
  }
  Responses& Problem(int status) {
    for (const auto& [s, r] : entries_)
      if (s == status) return *this;
    return Add(status, Ref("responses", ProblemName(status)));
  }
  json::object Build() {
    for (int s : kTransport) Problem(s);
    std::stable_sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    json::object out;
    for (auto& [s, r] : entries_) out[std::to_string(s)] = std::move(r);
    return out;
  }

 private:
  std::vector<std::pair<int, json::value>> entries_;
};

json::object HeaderRef(std::string_view name) { return Ref("headers", name).as_object(); }

json::object JsonResponse(std::string description, json::value schema, json::object headers = {},
                          std::string_view media = "application/json") {
  json::object r{{"description", std::move(description)}};
  if (!headers.empty()) r["headers"] = std::move(headers);
  r["content"] = json::object{{media, json::object{{"schema", std::move(schema)}}}};
  return r;
}

json::object Operation(std::string id, std::string tag, std::string summary) {
  return json::object{{"operationId", std::move(id)}, {"tags", json::array{json::value(std::move(tag))}},
                      {"summary", std::move(summary)}};
}

json::array Security(bool public_allowed) {
  json::array a;
  if (public_allowed) a.emplace_back(json::object{});
  a.emplace_back(json::object{{"admin_token", json::array{}}});
  a.emplace_back(json::object{{"bearer", json::array{}}});
  a.emplace_back(json::object{{"api_key", json::array{}}});
  return a;
}

json::object Body(json::object content, bool required = true) {
  return json::object{{"required", required}, {"content", std::move(content)}};
}

// ---- field schemas -------------------------------------------------------------------------------

bool TextLike(FieldKind k) { return k == FieldKind::kText || k == FieldKind::kEmail || k == FieldKind::kUrl; }

json::object Nullable(json::object schema, bool nullable) {
  if (!nullable) return schema;
  if (auto* t = schema.if_contains("type"); t && t->is_string()) {
    json::string type = t->as_string();
    *t = json::array{json::value(type), json::value("null")};
  }
  if (auto* e = schema.if_contains("enum"); e && e->is_array()) e->as_array().emplace_back(nullptr);
  return schema;
}

std::string KindDescription(const FieldSpec& f) {
  std::string d = "`" + std::string(schema::KindName(f.kind)) + "` field";
  if (f.kind == FieldKind::kRelation) d += " (id of a `" + f.collection + "` record)";
  if (f.kind == FieldKind::kSelect && f.multi) d += " (multi)";
  return d + ".";
}

/// The schema of a field's value in a response: type, format and nullability only.
json::object OutputField(const FieldSpec& f) {
  json::object s;
  switch (f.kind) {
    case FieldKind::kText:
    case FieldKind::kEmail:
    case FieldKind::kUrl: s = Str(); break;
    case FieldKind::kInteger: s = {{"type", "integer"}}; break;
    case FieldKind::kNumber: s = {{"type", "number"}}; break;
    case FieldKind::kBool: s = {{"type", "boolean"}}; break;
    case FieldKind::kDatetime: s = {{"type", "string"}, {"format", "date-time"}}; break;
    case FieldKind::kJson: s = {}; break;  // any JSON; null when unset
    case FieldKind::kSelect:
      if (f.multi) s = {{"type", "array"}, {"items", Str()}};
      else s = Str();
      break;
    case FieldKind::kRelation: s = Str(); break;
    case FieldKind::kSecret: s = Str(); break;  // never in a response (RecordSchema skips it)
  }
  const bool nullable = !(f.kind == FieldKind::kSelect && f.multi);
  s = Nullable(std::move(s), nullable);
  s["description"] = KindDescription(f);
  return s;
}

/// The schema of a field's value in a request body, with its constraints.
json::object InputField(const FieldSpec& f, bool nullable) {
  json::object s;
  switch (f.kind) {
    case FieldKind::kText:
    case FieldKind::kEmail:
    case FieldKind::kUrl:
    case FieldKind::kSecret: {
      s = Str();
      std::int64_t min_length = f.min_length.value_or(0);
      if (f.required) min_length = std::max<std::int64_t>(min_length, 1);
      if (min_length > 0) s["minLength"] = min_length;
      if (f.max_length) s["maxLength"] = *f.max_length;
      if (f.pattern) {
        if (std::string p = EcmaPattern(*f.pattern); !p.empty()) s["pattern"] = p;
      }
      if (f.kind == FieldKind::kEmail) s["description"] = "An email address.";
      if (f.kind == FieldKind::kUrl) s["description"] = "An absolute http(s) URL.";
      if (f.kind == FieldKind::kSecret) {
        s["writeOnly"] = true;
        s["format"] = "password";
        s["description"] = "A secret: encrypted at rest, never returned; filters and rules may test it with = "
                           "and != only.";
      }
      break;
    }
    case FieldKind::kInteger:
    case FieldKind::kNumber:
      s = {{"type", f.kind == FieldKind::kInteger ? "integer" : "number"}};
      if (f.min) s["minimum"] = Number(*f.min);
      if (f.max) s["maximum"] = Number(*f.max);
      break;
    case FieldKind::kBool: s = {{"type", "boolean"}}; break;
    case FieldKind::kDatetime: s = {{"type", "string"}, {"format", "date-time"}}; break;
    case FieldKind::kJson: s = {}; break;
    case FieldKind::kSelect: {
      json::array values;
      for (const auto& v : f.values) values.emplace_back(v);
      if (f.multi) {
        s = {{"type", "array"}, {"items", json::object{{"enum", std::move(values)}}}};
        std::int64_t min_items = f.min_length.value_or(0);
        if (f.required) min_items = std::max<std::int64_t>(min_items, 1);
        if (min_items > 0) s["minItems"] = min_items;
        if (f.max_length) s["maxItems"] = *f.max_length;
      } else {
        s = {{"type", "string"}, {"enum", std::move(values)}};
      }
      break;
    }
    case FieldKind::kRelation: s = Str(); break;
  }
  if (f.default_value) s["default"] = *f.default_value;
  if (f.kind != FieldKind::kJson) s = Nullable(std::move(s), nullable);
  if (!s.contains("description")) s["description"] = KindDescription(f);
  return s;
}

json::object SystemProperties() {
  return json::object{
      {"id", json::object{{"type", "string"}, {"format", "uuid"}, {"readOnly", true}, {"description", "UUIDv7."}}},
      {"created_at", json::object{{"type", "string"}, {"format", "date-time"}, {"readOnly", true}}},
      {"updated_at", json::object{{"type", "string"}, {"format", "date-time"}, {"readOnly", true}}},
      {"version", json::object{{"type", "integer"}, {"minimum", 1}, {"readOnly", true},
                               {"description", "Incremented by every change; the ETag."}}},
  };
}

/// <Name>Record (every member present) or, when `projected`, <Name>Item (members chosen by `fields`).
json::object RecordSchema(const schema::CollectionSpec& spec, bool projected) {
  json::object props = SystemProperties();
  json::array required{"id", "created_at", "updated_at", "version"};
  for (const auto& f : spec.fields) {
    if (f.kind == FieldKind::kSecret) continue;  // write-only: never in a response
    props[f.name] = OutputField(f);
    required.emplace_back(f.name);
  }
  json::object expanded;  // `expand=`: the related records the caller may view, by field
  for (const auto& f : spec.fields) {
    if (f.kind == FieldKind::kRelation) expanded[f.name] = SchemaRef(SchemaBaseName(f.collection) + "Record");
  }
  if (!expanded.empty()) {
    json::object e{{"type", "object"},
                   {"description", "Only with `expand`: the related records the caller may view."},
                   {"properties", std::move(expanded)},
                   {"additionalProperties", false}};
    // A user field may be called "expand" too: then the member is either.
    if (json::value* field = props.if_contains("expand")) e = json::object{{"anyOf", json::array{*field, std::move(e)}}};
    props["expand"] = std::move(e);
  }
  json::object s{{"type", "object"}};
  s["description"] = projected ? "A `" + spec.name + "` record in a list: the members chosen by `fields` (all by default)."
                               : "A `" + spec.name + "` record.";
  s["properties"] = std::move(props);
  if (!projected) s["required"] = std::move(required);
  s["additionalProperties"] = false;
  return s;
}

json::object CreateSchema(const schema::CollectionSpec& spec) {
  json::object props;
  json::array required;
  for (const auto& f : spec.fields) {
    props[f.name] = InputField(f, !f.required);
    if (f.required && !f.default_value) required.emplace_back(f.name);
  }
  json::object s{{"type", "object"},
                 {"description", "A new `" + spec.name + "` record (POST), or the whole record (PUT). Missing "
                                 "fields take their default, else null."}};
  s["properties"] = std::move(props);
  if (!required.empty()) s["required"] = std::move(required);
  s["additionalProperties"] = false;
  return s;
}

json::object PatchSchema(const schema::CollectionSpec& spec) {
  json::object props;
  for (const auto& f : spec.fields) props[f.name] = InputField(f, true);
  json::object s{{"type", "object"},
                 {"description", "JSON Merge Patch (RFC 7396) of a `" + spec.name +
                                     "` record: null removes a value (back to its default, or null)."}};
  s["properties"] = std::move(props);
  s["additionalProperties"] = false;
  return s;
}

json::object ListSchema(const std::string& base) {
  return json::object{
      {"type", "object"},
      {"properties",
       json::object{{"items", json::object{{"type", "array"}, {"items", SchemaRef(base + "Item")}}},
                    {"next_cursor", json::object{{"type", json::array{"string", "null"}},
                                                 {"description", "Pass back as `cursor` for the next page."}}},
                    {"total", json::object{{"type", "integer"}, {"minimum", 0},
                                           {"description", "Only with `count=true`."}}}}},
      {"required", json::array{"items", "next_cursor"}},
      {"additionalProperties", false},
  };
}

// ---- fixed schemas -------------------------------------------------------------------------------

json::object ProblemSchema() {
  json::object field_error{
      {"type", "object"},
      {"properties", json::object{{"field", Str("Path of the offending member or parameter, e.g. `title`.")},
                                  {"code", Str("Stable code, e.g. `required`.")},
                                  {"message", Str()}}},
      {"required", json::array{"field", "code", "message"}},
  };
  return json::object{
      {"type", "object"},
      {"description", "RFC 9457 problem details."},
      {"properties",
       json::object{{"type", json::object{{"type", "string"}, {"format", "uri-reference"}}},
                    {"title", Str()},
                    {"status", json::object{{"type", "integer"}, {"minimum", 100}, {"maximum", 599}}},
                    {"detail", Str()},
                    {"instance", json::object{{"type", "string"}, {"format", "uri-reference"}}},
                    {"code", Str("Stable machine-readable code, e.g. `validation_failed`.")},
                    {"request_id", Str()},
                    {"errors", json::object{{"type", "array"}, {"items", std::move(field_error)}}},
                    {"operation", json::object{{"type", "integer"}, {"minimum", 0},
                                               {"description", "Batch: index of the failed operation."}}}}},
      {"required", json::array{"type", "title", "status", "detail", "code", "request_id"}},
  };
}

json::object FieldDefinitionSchema() {
  json::array kinds;
  for (FieldKind k : {FieldKind::kText, FieldKind::kInteger, FieldKind::kNumber, FieldKind::kBool,
                      FieldKind::kDatetime, FieldKind::kJson, FieldKind::kEmail, FieldKind::kUrl,
                      FieldKind::kSelect, FieldKind::kRelation, FieldKind::kSecret})
    kinds.emplace_back(schema::KindName(k));
  json::object nat{{"type", "integer"}, {"minimum", 0}};
  return json::object{
      {"type", "object"},
      {"properties",
       json::object{{"name", json::object{{"type", "string"}, {"pattern", "^[a-z][a-z0-9_]{0,62}$"}}},
                    {"type", json::object{{"type", "string"}, {"enum", std::move(kinds)}}},
                    {"required", json::object{{"type", "boolean"}}},
                    {"unique", json::object{{"type", "boolean"}}},
                    {"default", json::object{}},
                    {"min", json::object{{"type", "number"}}},
                    {"max", json::object{{"type", "number"}}},
                    {"min_length", nat},
                    {"max_length", nat},
                    {"pattern", Str("RE2; must match the whole value.")},
                    {"values", json::object{{"type", "array"}, {"items", Str()}}},
                    {"multi", json::object{{"type", "boolean"}}},
                    {"collection", Str()},
                    {"on_delete", json::object{{"type", "string"}, {"enum", json::array{"restrict", "cascade", "set_null"}}}},
                    {"previous_name", Str("Only in a change: the field's current name, to rename it.")}}},
      {"required", json::array{"name", "type"}},
  };
}

json::object IndexSchema() {
  return json::object{
      {"type", "object"},
      {"properties", json::object{{"fields", json::object{{"type", "array"}, {"items", Str()}, {"minItems", 1}, {"maxItems", 8}}},
                                  {"unique", json::object{{"type", "boolean"}}},
                                  {"name", Str("Generated when missing, then kept.")}}},
      {"required", json::array{"fields"}},
  };
}

json::object RulesSchema() {
  json::object rule{{"type", json::array{"string", "null"}},
                    {"description", "null: admin only; \"\": everyone; else a filter expression."}};
  return json::object{{"type", "object"},
                      {"properties", json::object{{"list", rule}, {"view", rule}, {"create", rule},
                                                  {"update", rule}, {"delete", rule}}}};
}

json::object DefinitionSchema(bool change) {
  json::object s{{"type", "object"},
                 {"properties",
                  json::object{{"name", json::object{{"type", "string"}, {"pattern", "^[a-z][a-z0-9_]{0,60}$"}}},
                               {"fields", json::object{{"type", "array"}, {"items", SchemaRef("CollectionField")}}},
                               {"indexes", json::object{{"type", "array"}, {"items", SchemaRef("CollectionIndex")}}},
                               {"rules", SchemaRef("CollectionRules")}}}};
  if (change) s["description"] = "PATCH: merged into the current definition (fields and indexes replace the list).";
  else s["required"] = json::array{"name"};
  return s;
}

json::object CollectionSchema() {
  return json::object{
      {"type", "object"},
      {"properties",
       json::object{{"name", Str()},
                    {"fields", json::object{{"type", "array"}, {"items", SchemaRef("CollectionField")}}},
                    {"indexes", json::object{{"type", "array"}, {"items", SchemaRef("CollectionIndex")}}},
                    {"rules", SchemaRef("CollectionRules")},
                    {"created_at", json::object{{"type", "string"}, {"format", "date-time"}}},
                    {"updated_at", json::object{{"type", "string"}, {"format", "date-time"}}},
                    {"version", json::object{{"type", "integer"}, {"minimum", 1}}}}},
      {"required", json::array{"name", "fields", "indexes", "rules", "created_at", "updated_at", "version"}},
  };
}

// ---- paths ---------------------------------------------------------------------------------------

json::object Param(std::string name, std::string in, json::object schema, std::string description,
                   bool required = false) {
  json::object p{{"name", std::move(name)}, {"in", std::move(in)}};
  if (!description.empty()) p["description"] = std::move(description);
  if (required) p["required"] = true;
  p["schema"] = std::move(schema);
  return p;
}

json::array Params(std::initializer_list<std::string_view> names) {
  json::array a;
  for (auto n : names) a.emplace_back(Ref("parameters", n));
  return a;
}

json::object Health() {
  json::object status{{"type", "object"},
                      {"properties", json::object{{"status", Str()}}},
                      {"required", json::array{"status"}}};
  json::object paths;
  json::object alive = Operation("healthz", "operations", "Liveness");
  alive["security"] = json::array{};
  alive["responses"] = Responses().Add(200, JsonResponse("Alive.", status)).Build();
  paths["/healthz"] = json::object{{"get", std::move(alive)}};
  json::object ready = Operation("readyz", "operations", "Readiness (503 while starting or draining)");
  ready["security"] = json::array{};
  ready["responses"] = Responses()
                           .Add(200, JsonResponse("Ready.", status))
                           .Add(503, JsonResponse("Not ready.", SchemaRef("Problem"),
                                                  json::object{{"Retry-After", HeaderRef("Retry-After")}},
                                                  "application/problem+json"))
                           .Build();
  paths["/readyz"] = json::object{{"get", std::move(ready)}};
  return paths;
}

json::object Metrics() {
  json::object op = Operation("metrics", "operations", "Prometheus metrics (text exposition format 0.0.4)");
  op["security"] = json::array{json::object{}, json::object{{"metrics_token", json::array{}}}};
  json::object ok{{"description", "Metrics."},
                  {"content", json::object{{"text/plain", json::object{{"schema", Str()}}}}}};
  op["responses"] = Responses().Add(200, std::move(ok)).Problem(401).Build();
  return json::object{{"get", std::move(op)}};
}

json::object OpenApiPath() {
  json::object op = Operation("openapi", "meta", "This document");
  op["security"] = json::array{};
  op["responses"] = Responses().Add(200, JsonResponse("The OpenAPI 3.1 document.", json::object{{"type", "object"}})).Build();
  return json::object{{"get", std::move(op)}};
}

json::object AuditEntrySchema() {
  auto text = [](std::string_view d) { return Str(d); };
  auto choice = [](std::initializer_list<const char*> values) {
    json::array e;
    for (const char* v : values) e.emplace_back(v);
    return json::object{{"type", "string"}, {"enum", std::move(e)}};
  };
  json::object hash{{"type", "string"}, {"pattern", "^[0-9a-f]{64}$"}};
  json::object props{
      {"id", json::object{{"type", "string"}, {"format", "uuid"}}},
      {"sequence", json::object{{"type", "integer"}, {"minimum", 1}, {"description", "Position in the chain."}}},
      {"time", json::object{{"type", "string"}, {"format", "date-time"}}},
      {"actor_kind", choice({"user", "api_key", "service", "admin_token", "system", "anonymous"})},
      {"actor_id", text("User, API key or client id; empty for admin_token, system and anonymous.")},
      {"action", text("E.g. `auth.login`, `collection.updated`, `admin_token.used`.")},
      {"target", text("E.g. `collection:posts`, `POST /api/v1/collections`.")},
      {"outcome", choice({"success", "failure", "denied"})},
      {"ip", text("Client address.")},
      {"user_agent", text("")},
      {"request_id", text("")},
      {"changes", json::object{{"type", "array"}, {"items", Str()}, {"description", "Names of changed fields and rules, never values."}}},
      {"prev_hash", hash},
      {"hash", hash}};
  json::array required;
  for (const auto& [k, v] : props) required.emplace_back(k);
  return json::object{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

json::object AuditLogPath() {
  json::object op = Operation("list_audit_log", "audit", "Read the audit log, newest first (permission `audit:read`)");
  op["security"] = Security(false);
  json::array params;
  auto q = [&](const char* name, json::object schema, const char* description) {
    params.emplace_back(Param(name, "query", std::move(schema), description));
  };
  q("action", Str(), "Exact action, or a prefix as `auth.*`.");
  q("actor_kind", json::object{{"type", "string"}, {"enum", json::array{"user", "api_key", "service", "admin_token", "system", "anonymous"}}}, "Actor kind.");
  q("actor_id", Str(), "Exact actor id.");
  q("target", Str(), "Exact target.");
  q("outcome", json::object{{"type", "string"}, {"enum", json::array{"success", "failure", "denied"}}}, "Outcome.");
  q("since", json::object{{"type", "string"}, {"format", "date-time"}}, "Entries at or after this time.");
  q("until", json::object{{"type", "string"}, {"format", "date-time"}}, "Entries before this time.");
  params.emplace_back(Ref("parameters", "limit"));
  params.emplace_back(Param("cursor", "query", Str(), "`next_cursor` of the previous page."));
  op["parameters"] = std::move(params);
  op["responses"] = Responses()
                        .Add(200, JsonResponse("A page of entries.", SchemaRef("AuditLog"),
                                               json::object{{"Link", HeaderRef("Link")}}))
                        .Problems({400, 401, 403})
                        .Build();
  return json::object{{"get", std::move(op)}};
}

void CollectionPaths(json::object& paths) {
  json::object collection_headers{{"ETag", HeaderRef("ETag")}};
  json::object list = Operation("list_collections", "collections", "List collections");
  list["security"] = Security(false);
  list["responses"] = Responses().Add(200, JsonResponse("Every collection.", SchemaRef("Collections"))).Problem(401).Build();
  json::object create = Operation("create_collection", "collections", "Create a collection");
  create["security"] = Security(false);
  create["parameters"] = Params({"Idempotency-Key"});
  create["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", SchemaRef("CollectionDefinition")}}}});
  create["responses"] = Responses()
                            .Add(201, JsonResponse("Created.", SchemaRef("Collection"),
                                                   json::object{{"Location", HeaderRef("Location")}, {"ETag", HeaderRef("ETag")}}))
                            .Problems({400, 401, 409, 415, 422})
                            .Build();
  paths["/api/v1/collections"] = json::object{{"get", std::move(list)}, {"post", std::move(create)}};

  json::object get = Operation("get_collection", "collections", "Get a collection");
  get["security"] = Security(false);
  get["responses"] = Responses().Add(200, JsonResponse("The collection.", SchemaRef("Collection"), collection_headers))
                         .Problems({401, 404}).Build();
  auto change = [&](bool merge) {
    json::object op = Operation(merge ? "patch_collection" : "replace_collection", "collections",
                                merge ? "Change a collection (merge)" : "Replace a collection's definition");
    op["security"] = Security(false);
    op["parameters"] = Params({"If-Match"});
    json::object content;
    content["application/json"] = json::object{{"schema", SchemaRef(merge ? "CollectionChange" : "CollectionDefinition")}};
    if (merge) content["application/merge-patch+json"] = json::object{{"schema", SchemaRef("CollectionChange")}};
    op["requestBody"] = Body(std::move(content));
    op["responses"] = Responses().Add(200, JsonResponse("The changed collection.", SchemaRef("Collection"), collection_headers))
                          .Problems({400, 401, 404, 409, 412, 415, 422}).Build();
    return op;
  };
  json::object del = Operation("delete_collection", "collections", "Drop a collection and its records");
  del["security"] = Security(false);
  del["responses"] = Responses().Add(204, json::object{{"description", "Dropped."}}).Problems({401, 404, 409}).Build();
  paths["/api/v1/collections/{name}"] = json::object{
      {"parameters", json::array{Param("name", "path", Str(), "The collection.", true)}},
      {"get", std::move(get)}, {"put", change(false)}, {"patch", change(true)}, {"delete", std::move(del)}};
}

void RecordPaths(json::object& paths, const schema::CollectionSpec& spec) {
  const std::string base = SchemaBaseName(spec.name);
  const std::string tag = spec.name + " records";
  const std::string prefix = "/api/v1/collections/" + spec.name + "/records";
  const schema::Rules& r = spec.rules;
  json::object record_headers{{"ETag", HeaderRef("ETag")}};

  // A null rule answers 401 to everyone but the admin; any caller with a bad token gets 401;
  // rule expressions filter (404 for a record one may not see); create's rule can refuse (403).
  json::object list = Operation("list_" + spec.name + "_records", tag, "List `" + spec.name + "` records");
  list["security"] = Security(r.list.has_value());
  list["parameters"] = Params({"filter", "sort", "fields", "expand", "limit", "cursor", "count"});
  list["responses"] = Responses()
                          .Add(200, JsonResponse("A page of records.", SchemaRef(base + "List"),
                                                 json::object{{"Link", HeaderRef("Link")}}))
                          .Problems({400, 401, 404})
                          .Build();
  json::object create = Operation("create_" + spec.name + "_record", tag, "Create a `" + spec.name + "` record");
  create["security"] = Security(r.create.has_value());
  create["parameters"] = Params({"Idempotency-Key"});
  create["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", SchemaRef(base + "Create")}}}});
  create["responses"] = Responses()
                            .Add(201, JsonResponse("Created.", SchemaRef(base + "Record"),
                                                   json::object{{"Location", HeaderRef("Location")}, {"ETag", HeaderRef("ETag")}}))
                            .Problems({400, 401, 403, 404, 409, 415, 422})
                            .Build();
  paths[prefix] = json::object{{"get", std::move(list)}, {"post", std::move(create)}};

  json::object get = Operation("get_" + spec.name + "_record", tag, "Get a `" + spec.name + "` record");
  get["security"] = Security(r.view.has_value());
  get["parameters"] = Params({"expand", "If-None-Match"});
  get["responses"] = Responses()
                         .Add(200, JsonResponse("The record.", SchemaRef(base + "Record"), record_headers))
                         .Add(304, json::object{{"description", "Not modified (If-None-Match)."},
                                                {"headers", json::object{{"ETag", HeaderRef("ETag")}}}})
                         .Problems({401, 404})
                         .Build();
  auto change = [&](bool merge) {
    json::object op = Operation((merge ? "patch_" : "replace_") + spec.name + "_record", tag,
                                (merge ? "Change a `" : "Replace a `") + spec.name + "` record");
    op["security"] = Security(r.update.has_value());
    op["parameters"] = Params({"If-Match"});
    json::object content;
    if (merge) {
      content["application/merge-patch+json"] = json::object{{"schema", SchemaRef(base + "Patch")}};
      content["application/json"] = json::object{{"schema", SchemaRef(base + "Patch")}};
    } else {
      content["application/json"] = json::object{{"schema", SchemaRef(base + "Create")}};
    }
    op["requestBody"] = Body(std::move(content));
    op["responses"] = Responses()
                          .Add(200, JsonResponse("The changed record.", SchemaRef(base + "Record"), record_headers))
                          .Problems({400, 401, 404, 409, 412, 415, 422})
                          .Build();
    return op;
  };
  json::object del = Operation("delete_" + spec.name + "_record", tag, "Delete a `" + spec.name + "` record");
  del["security"] = Security(r.del.has_value());
  del["parameters"] = Params({"If-Match"});
  del["responses"] = Responses()
                         .Add(204, json::object{{"description", "Deleted."}})
                         .Problems({401, 404, 409, 412})
                         .Build();
  paths[prefix + "/{id}"] = json::object{
      {"parameters", json::array{Param("id", "path", Str(), "The record's id.", true)}},
      {"get", std::move(get)}, {"put", change(false)}, {"patch", change(true)}, {"delete", std::move(del)}};
}

json::object BatchPath() {
  json::object op_schema{
      {"type", "object"},
      {"properties",
       json::object{{"method", json::object{{"type", "string"}, {"enum", json::array{"POST", "PUT", "PATCH", "DELETE"}}}},
                    {"path", Str("/api/v1/collections/{name}/records (POST) or .../records/{id}.")},
                    {"body", json::object{{"type", "object"}, {"description", "Not with DELETE."}}},
                    {"headers", json::object{{"type", "object"},
                                             {"properties", json::object{{"If-Match", Str()}}},
                                             {"additionalProperties", false}}}}},
      {"required", json::array{"method", "path"}},
      {"additionalProperties", false}};
  json::object request{{"type", "object"},
                                       {"properties", json::object{{"operations", json::object{{"type", "array"}, {"items", std::move(op_schema)},
                                                                               {"minItems", 1}, {"maxItems", 100}}}}},
                       {"required", json::array{"operations"}},
                       {"additionalProperties", false}};
  json::object result{{"type", "object"},
                      {"properties", json::object{{"status", json::object{{"type", "integer"}}},
                                                  {"body", json::object{{"type", "object"}, {"description", "The record (not for DELETE)."}}}}},
                      {"required", json::array{"status"}}};
  json::object response{{"type", "object"},
                        {"properties", json::object{{"results", json::object{{"type", "array"}, {"items", std::move(result)}}}}},
                        {"required", json::array{"results"}}};
  json::object op = Operation("batch", "batch", "Run several operations in one transaction");
  op["description"] = "All or nothing: the first failure's problem (with `operation`, its index) and nothing applied.";
  op["security"] = Security(true);
  op["parameters"] = Params({"Idempotency-Key"});
  op["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", std::move(request)}}}});
  op["responses"] = Responses()
                        .Add(200, JsonResponse("Every operation's result.", std::move(response)))
                        .Problems({400, 401, 403, 404, 409, 412, 415, 422})
                        .Build();
  return json::object{{"post", std::move(op)}};
}

// ---- users and sessions -------------------------------------------------------------------------

json::object ObjectOf(json::object properties, json::array required, bool additional = false) {
  return json::object{{"type", "object"},
                      {"properties", std::move(properties)},
                      {"required", std::move(required)},
                      {"additionalProperties", additional}};
}

json::object PasswordSchema() {
  return json::object{{"type", "string"}, {"minLength", 1}, {"description", "8+ characters (auth.password_min_length), at most 1024 bytes."}};
}

void AuthPaths(json::object& paths) {
  auto post = [](std::string id, std::string summary, json::value request, json::object responses, bool user) {
    json::object op = Operation(std::move(id), "auth", std::move(summary));
    op["security"] = user ? json::array{json::object{{"bearer", json::array{}}}} : json::array{json::object{}};
    if (!request.is_null())
      op["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", std::move(request)}}}});
    op["responses"] = std::move(responses);
    return json::object{{"post", std::move(op)}};
  };
  json::object user_created{{"Location", HeaderRef("Location")}};
  paths["/api/v1/auth/register"] = post(
      "register", "Register a user (auth.registration: open, or invite with `invite`)",
      json::object{{"type", "object"},
                   {"properties", json::object{{"email", Str()}, {"password", PasswordSchema()}, {"invite", Str()}}},
                   {"required", json::array{"email", "password"}},
                   {"description", "Plus any fields of the `users` collection; never roles or system fields."}},
      Responses().Add(201, JsonResponse("The user.", SchemaRef("AuthUser"), user_created)).Problems({400, 403, 409, 415, 422}).Build(),
      false);
  paths["/api/v1/auth/login"] = post(
      "login", "Log in with email and password",
      ObjectOf(json::object{{"email", Str()}, {"password", Str()}}, json::array{"email", "password"}),
      Responses()
          .Add(200, JsonResponse("Tokens.", SchemaRef("TokenPair")))
          .Problems({400, 401, 415, 422, 429})
          .Build(),
      false);
  json::object refresh_body = ObjectOf(json::object{{"refresh_token", Str()}}, json::array{"refresh_token"});
  paths["/api/v1/auth/refresh"] = post("refresh", "Rotate a refresh token for a new token pair", refresh_body,
                                       Responses().Add(200, JsonResponse("Tokens.", SchemaRef("TokenPair"))).Problems({400, 401, 415, 422}).Build(),
                                       false);
  paths["/api/v1/auth/logout"] = post("logout", "Revoke the session (refresh-token family)", refresh_body,
                                      Responses().Add(204, json::object{{"description", "Logged out."}}).Problems({400, 401, 415, 422}).Build(),
                                      false);
  paths["/api/v1/auth/password"] = post(
      "change_password", "Change the password; revokes every other session",
      ObjectOf(json::object{{"current_password", Str()}, {"new_password", PasswordSchema()}},
               json::array{"current_password", "new_password"}),
      Responses().Add(204, json::object{{"description", "Changed."}}).Problems({400, 401, 403, 415, 422, 429}).Build(),
      true);
  json::object invites = post(
      "create_invite", "Create a single-use invite token (admins)",
      ObjectOf(json::object{{"ttl_s", json::object{{"type", "integer"}, {"minimum", 60}, {"maximum", 7776000}}}}, json::array{}),
      Responses()
          .Add(201, JsonResponse("The invite, shown once.",
                                 ObjectOf(json::object{{"token", Str()}, {"expires_at", json::object{{"type", "string"}, {"format", "date-time"}}}},
                                          json::array{"token", "expires_at"})))
          .Problems({400, 401, 403, 415, 422})
          .Build(),
      false);
  invites["post"].as_object()["security"] = Security(false);
  invites["post"].as_object()["requestBody"].as_object()["required"] = false;
  paths["/api/v1/auth/invites"] = std::move(invites);
  paths["/api/v1/auth/setup"] = post(
      "setup", "Create the first admin with the one-time setup token from the log",
      ObjectOf(json::object{{"token", Str()}, {"email", Str()}, {"password", PasswordSchema()}}, json::array{"token", "email", "password"}),
      Responses().Add(201, JsonResponse("The admin.", SchemaRef("AuthUser"), user_created)).Problems({400, 403, 409, 415, 422}).Build(),
      false);
  json::object me = Operation("me", "auth", "The calling user");
  me["security"] = json::array{json::object{{"bearer", json::array{}}}};
  me["responses"] = Responses().Add(200, JsonResponse("The user.", SchemaRef("AuthUser"))).Problems({401, 403}).Build();
  paths["/api/v1/auth/me"] = json::object{{"get", std::move(me)}};
  json::object jwk = ObjectOf(json::object{{"kty", json::object{{"const", "OKP"}}},
                                           {"crv", json::object{{"const", "Ed25519"}}},
                                           {"x", Str()},
                                           {"kid", Str()},
                                           {"use", json::object{{"const", "sig"}}},
                                           {"alg", json::object{{"const", "EdDSA"}}}},
                              json::array{"kty", "crv", "x", "kid", "use", "alg"});
  json::object jwks = Operation("jwks", "auth", "Public keys that verify access tokens (RFC 7517)");
  jwks["security"] = json::array{json::object{}};
  jwks["responses"] = Responses()
                          .Add(200, JsonResponse("The key set.",
                                                 ObjectOf(json::object{{"keys", json::object{{"type", "array"}, {"items", std::move(jwk)}}}},
                                                          json::array{"keys"}),
                                                 {}, "application/jwk-set+json"))
                          .Build();
  paths["/.well-known/jwks.json"] = json::object{{"get", std::move(jwks)}};
}

// ---- machines, services and authorization --------------------------------------------------------

json::array Authenticated() {
  return json::array{json::object{{"admin_token", json::array{}}}, json::object{{"bearer", json::array{}}},
                     json::object{{"api_key", json::array{}}}};
}

json::object ItemsOf(std::string_view schema) {
  return json::object{{"type", "object"},
                      {"properties", json::object{{"items", json::object{{"type", "array"}, {"items", SchemaRef(schema)}}}}},
                      {"required", json::array{"items"}}};
}

json::object Obj(json::object properties, std::initializer_list<std::string_view> required, bool closed = false) {
  json::array req;
  for (auto r : required) req.emplace_back(r);
  json::object o{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(req)}};
  if (closed) o["additionalProperties"] = false;
  return o;
}
json::object Strings() { return json::object{{"type", "array"}, {"items", json::object{{"type", "string"}}}}; }
json::object NullableTime() {
  return json::object{{"type", json::array{"string", "null"}}, {"format", "date-time"}};
}
json::object Form(json::object properties, std::initializer_list<std::string_view> required) {
  return Body(json::object{{"application/x-www-form-urlencoded", json::object{{"schema", Obj(std::move(properties), required)}}}});
}
json::object OAuthErrorResponse(std::string description, bool basic) {
  json::object r = JsonResponse(std::move(description), SchemaRef("OAuthError"));
  if (basic) r["headers"] = json::object{{"WWW-Authenticate", HeaderRef("WWW-Authenticate")}};
  return r;
}

void AccessSchemas(json::object& schemas) {
  json::object key{{"id", Str()}, {"name", Str()}, {"user_id", json::object{{"type", json::array{"string", "null"}}}},
                   {"scopes", Strings()}, {"prefix", Str("`bsk_<id>`, to recognise the key.")},
                   {"created_at", NullableTime()}, {"expires_at", NullableTime()}, {"last_used_at", NullableTime()},
                   {"revoked_at", NullableTime()}, {"active", json::object{{"type", "boolean"}}}};
  schemas["ApiKey"] = Obj(key, {"id", "name", "user_id", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at", "active"});
  key["key"] = Str("`bsk_<id>_<secret>`: shown only here, once.");
  schemas["ApiKeyCreated"] = Obj(key, {"id", "key", "scopes"});
  schemas["ApiKeys"] = ItemsOf("ApiKey");
  schemas["ApiKeyCreate"] = Obj(json::object{{"name", json::object{{"type", "string"}, {"minLength", 1}, {"maxLength", 100}}},
                                             {"scopes", Strings()},
                                             {"user_id", json::object{{"type", json::array{"string", "null"}}}},
                                             {"expires_in_s", json::object{{"type", "integer"}, {"minimum", 1}}}},
                                {"name", "scopes"}, true);
  schemas["Role"] = Obj(json::object{{"name", Str()}, {"permissions", Strings()}, {"builtin", json::object{{"type", "boolean"}}}},
                        {"name", "permissions", "builtin"});
  schemas["Roles"] = ItemsOf("Role");
  schemas["RoleCreate"] = Obj(json::object{{"name", Str()}, {"permissions", Strings()}}, {"name", "permissions"}, true);
  schemas["RoleChange"] = Obj(json::object{{"name", Str()}, {"permissions", Strings()}}, {"permissions"}, true);
  schemas["UserRoles"] = Obj(json::object{{"roles", Strings()}}, {"roles"});
  json::object client{{"id", Str()}, {"client_id", Str()}, {"name", Str()}, {"scopes", Strings()},
                      {"created_at", NullableTime()}, {"revoked_at", NullableTime()}, {"active", json::object{{"type", "boolean"}}}};
  schemas["OAuthClient"] = Obj(client, {"id", "client_id", "name", "scopes", "created_at", "revoked_at", "active"});
  client["client_secret"] = Str("Shown only here, once.");
  schemas["OAuthClientCreated"] = Obj(client, {"client_id", "client_secret", "scopes"});
  schemas["OAuthClients"] = ItemsOf("OAuthClient");
  schemas["OAuthClientCreate"] = Obj(json::object{{"name", Str()}, {"scopes", Strings()}}, {"name", "scopes"}, true);
  schemas["OAuthToken"] = Obj(json::object{{"access_token", Str()}, {"token_type", json::object{{"const", "Bearer"}}},
                                           {"expires_in", json::object{{"type", "integer"}}}, {"scope", Str()}},
                              {"access_token", "token_type", "expires_in", "scope"});
  schemas["OAuthError"] = Obj(json::object{{"error", json::object{{"enum", json::array{"invalid_request", "invalid_client",
                                                                                         "invalid_grant", "unauthorized_client",
                                                                                         "unsupported_grant_type", "invalid_scope",
                                                                                         "server_error"}}}},
                                           {"error_description", Str()}},
                              {"error"});
  schemas["OAuthIntrospection"] = Obj(json::object{{"active", json::object{{"type", "boolean"}}}, {"scope", Str()},
                                                   {"client_id", Str()}, {"sub", Str()}, {"iss", Str()}, {"jti", Str()},
                                                   {"exp", json::object{{"type", "integer"}}},
                                                   {"iat", json::object{{"type", "integer"}}}, {"token_type", Str()}},
                                      {"active"});
  schemas["OAuthServerMetadata"] = Obj(json::object{{"issuer", Str()}, {"token_endpoint", Str()},
                                                    {"introspection_endpoint", Str()}, {"revocation_endpoint", Str()},
                                                    {"jwks_uri", Str()}, {"grant_types_supported", Strings()},
                                                    {"token_endpoint_auth_methods_supported", Strings()},
                                                    {"scopes_supported", Strings()}},
                                       {"issuer", "token_endpoint", "grant_types_supported"});
}

void AccessPaths(json::object& paths) {
  auto op = [](std::string id, std::string tag, std::string summary) {
    json::object o = Operation(std::move(id), std::move(tag), std::move(summary));
    o["security"] = Authenticated();
    return o;
  };
  auto json_body = [](std::string_view schema) {
    return Body(json::object{{"application/json", json::object{{"schema", SchemaRef(schema)}}}});
  };
  const json::object location{{"Location", HeaderRef("Location")}};

  json::object create_key = op("create_api_key", "api keys", "Create an API key (the token is shown once)");
  create_key["requestBody"] = json_body("ApiKeyCreate");
  create_key["responses"] = Responses().Add(201, JsonResponse("Created.", SchemaRef("ApiKeyCreated"), location))
                                .Problems({401, 403, 415, 422}).Build();
  json::object list_keys = op("list_api_keys", "api keys", "List API keys (own; all with api_keys:manage)");
  list_keys["parameters"] = json::array{Param("user_id", "query", Str(), "Only this owner's keys (managers).")};
  list_keys["responses"] = Responses().Add(200, JsonResponse("Keys.", SchemaRef("ApiKeys"))).Problems({401, 403}).Build();
  paths["/api/v1/api-keys"] = json::object{{"get", std::move(list_keys)}, {"post", std::move(create_key)}};
  json::object get_key = op("get_api_key", "api keys", "Get an API key");
  get_key["responses"] = Responses().Add(200, JsonResponse("The key.", SchemaRef("ApiKey"))).Problems({401, 404}).Build();
  json::object revoke_key = op("revoke_api_key", "api keys", "Revoke an API key");
  revoke_key["responses"] = Responses().Add(204, json::object{{"description", "Revoked."}}).Problems({401, 404}).Build();
  paths["/api/v1/api-keys/{id}"] = json::object{{"parameters", json::array{Param("id", "path", Str(), "The key id.", true)}},
                                                {"get", std::move(get_key)}, {"delete", std::move(revoke_key)}};

  json::object list_roles = op("list_roles", "roles", "List roles (roles:manage)");
  list_roles["responses"] = Responses().Add(200, JsonResponse("Roles.", SchemaRef("Roles"))).Problems({401, 403}).Build();
  json::object create_role = op("create_role", "roles", "Create a custom role (roles:manage)");
  create_role["requestBody"] = json_body("RoleCreate");
  create_role["responses"] = Responses().Add(201, JsonResponse("Created.", SchemaRef("Role"), location))
                                 .Problems({401, 403, 409, 415, 422}).Build();
  paths["/api/v1/roles"] = json::object{{"get", std::move(list_roles)}, {"post", std::move(create_role)}};
  json::object get_role = op("get_role", "roles", "Get a role");
  get_role["responses"] = Responses().Add(200, JsonResponse("The role.", SchemaRef("Role"))).Problems({401, 403, 404}).Build();
  json::object put_role = op("replace_role", "roles", "Replace a custom role's permissions");
  put_role["requestBody"] = json_body("RoleChange");
  put_role["responses"] = Responses().Add(200, JsonResponse("The role.", SchemaRef("Role")))
                              .Problems({401, 403, 404, 409, 415, 422}).Build();
  json::object del_role = op("delete_role", "roles", "Delete a custom role and take it off its holders");
  del_role["responses"] = Responses().Add(204, json::object{{"description", "Deleted."}}).Problems({401, 403, 404, 409}).Build();
  paths["/api/v1/roles/{name}"] = json::object{{"parameters", json::array{Param("name", "path", Str(), "The role.", true)}},
                                               {"get", std::move(get_role)}, {"put", std::move(put_role)},
                                               {"delete", std::move(del_role)}};
  json::object user_roles = op("list_user_roles", "roles", "Roles assigned to a user");
  user_roles["responses"] = Responses().Add(200, JsonResponse("Assigned roles.", SchemaRef("UserRoles"))).Problems({401, 403, 404}).Build();
  paths["/api/v1/users/{id}/roles"] = json::object{{"parameters", json::array{Param("id", "path", Str(), "The user's id.", true)}},
                                                   {"get", std::move(user_roles)}};
  json::object assign = op("assign_role", "roles", "Assign a role to a user (audited)");
  assign["responses"] = Responses().Add(204, json::object{{"description", "Assigned."}}).Problems({401, 403, 404}).Build();
  json::object unassign = op("unassign_role", "roles", "Take a role from a user (audited)");
  unassign["responses"] = Responses().Add(204, json::object{{"description", "Unassigned."}}).Problems({401, 403, 404}).Build();
  paths["/api/v1/users/{id}/roles/{role}"] = json::object{
      {"parameters", json::array{Param("id", "path", Str(), "The user.", true), Param("role", "path", Str(), "The role.", true)}},
      {"put", std::move(assign)}, {"delete", std::move(unassign)}};

  json::object create_client = op("create_oauth2_client", "oauth2", "Create an OAuth2 client (the secret is shown once)");
  create_client["requestBody"] = json_body("OAuthClientCreate");
  create_client["responses"] = Responses().Add(201, JsonResponse("Created.", SchemaRef("OAuthClientCreated"), location))
                                   .Problems({401, 403, 415, 422}).Build();
  json::object list_clients = op("list_oauth2_clients", "oauth2", "List OAuth2 clients");
  list_clients["responses"] = Responses().Add(200, JsonResponse("Clients.", SchemaRef("OAuthClients"))).Problems({401, 403}).Build();
  paths["/api/v1/oauth2/clients"] = json::object{{"get", std::move(list_clients)}, {"post", std::move(create_client)}};
  json::object get_client = op("get_oauth2_client", "oauth2", "Get an OAuth2 client");
  get_client["responses"] = Responses().Add(200, JsonResponse("The client.", SchemaRef("OAuthClient"))).Problems({401, 403, 404}).Build();
  json::object revoke_client = op("revoke_oauth2_client", "oauth2", "Revoke an OAuth2 client");
  revoke_client["responses"] = Responses().Add(204, json::object{{"description", "Revoked."}}).Problems({401, 403, 404}).Build();
  paths["/api/v1/oauth2/clients/{id}"] = json::object{{"parameters", json::array{Param("id", "path", Str(), "The client id.", true)}},
                                                      {"get", std::move(get_client)}, {"delete", std::move(revoke_client)}};

  json::array client_auth{json::object{{"client_basic", json::array{}}}, json::object{}};
  json::object token = Operation("oauth2_token", "oauth2", "Client credentials grant (RFC 6749 §4.4)");
  token["security"] = client_auth;
  token["requestBody"] = Form(json::object{{"grant_type", json::object{{"type", "string"}}}, {"scope", Str()},
                                           {"client_id", Str()}, {"client_secret", Str()}},
                              {"grant_type"});
  token["responses"] = Responses().Add(200, JsonResponse("An access token.", SchemaRef("OAuthToken")))
                           .Add(400, OAuthErrorResponse("RFC 6749 §5.2 error.", false))
                           .Add(401, OAuthErrorResponse("invalid_client (HTTP Basic).", true)).Build();
  paths["/api/v1/oauth2/token"] = json::object{{"post", std::move(token)}};
  json::object introspect = Operation("oauth2_introspect", "oauth2", "Token introspection (RFC 7662)");
  introspect["security"] = client_auth;
  introspect["requestBody"] = Form(json::object{{"token", Str()}, {"token_type_hint", Str()}}, {"token"});
  introspect["responses"] = Responses().Add(200, JsonResponse("The token's state.", SchemaRef("OAuthIntrospection")))
                                .Add(400, OAuthErrorResponse("RFC 6749 §5.2 error.", false))
                                .Add(401, OAuthErrorResponse("invalid_client.", true)).Build();
  paths["/api/v1/oauth2/introspect"] = json::object{{"post", std::move(introspect)}};
  json::object revoke = Operation("oauth2_revoke", "oauth2", "Token revocation (RFC 7009)");
  revoke["security"] = client_auth;
  revoke["requestBody"] = Form(json::object{{"token", Str()}, {"token_type_hint", Str()}}, {"token"});
  revoke["responses"] = Responses().Add(200, json::object{{"description", "Revoked, or the token was not valid."}})
                            .Add(400, OAuthErrorResponse("RFC 6749 §5.2 error.", false))
                            .Add(401, OAuthErrorResponse("invalid_client.", true)).Build();
  paths["/api/v1/oauth2/revoke"] = json::object{{"post", std::move(revoke)}};
  json::object metadata = Operation("oauth2_metadata", "oauth2", "Authorization server metadata (RFC 8414)");
  metadata["security"] = json::array{};
  metadata["responses"] = Responses().Add(200, JsonResponse("Metadata.", SchemaRef("OAuthServerMetadata"))).Build();
  paths["/.well-known/oauth-authorization-server"] = json::object{{"get", std::move(metadata)}};

  json::object verify = op("auth_verify", "auth", "For gateways (nginx auth_request): who is calling");
  verify["parameters"] = json::array{Param("scope", "query", Str(), "Require this scope/permission (403 otherwise)."),
                                     Param("role", "query", Str(), "Require this role (403 otherwise).")};
  json::object ok{{"description", "Authenticated; the identity is in the X-Basalt-* headers."}};
  json::object hdrs;
  for (const char* h : {"X-Basalt-Principal-Kind", "X-Basalt-Principal-Id", "X-Basalt-User-Id", "X-Basalt-Roles",
                        "X-Basalt-Scopes", "X-Basalt-Permissions"}) {
    hdrs[h] = json::object{{"schema", Str()}};
  }
  ok["headers"] = std::move(hdrs);
  verify["responses"] = Responses().Add(200, std::move(ok)).Problems({401, 403}).Build();
  paths["/api/v1/auth/verify"] = json::object{{"get", std::move(verify)}};
}

// ---- events: realtime and webhooks ---------------------------------------------------------------

json::object DateTime(bool nullable = false) {
  return nullable ? json::object{{"type", json::array{"string", "null"}}, {"format", "date-time"}}
                  : json::object{{"type", "string"}, {"format", "date-time"}};
}
json::object NullableInt() { return json::object{{"type", json::array{"integer", "null"}}}; }
json::object NullableStr() { return json::object{{"type", json::array{"string", "null"}}}; }

json::object WebhookSchema(bool with_secret, bool with_breaker) {
  json::object props{{"id", Str()},
                     {"url", Str()},
                     {"events", json::object{{"type", "array"}, {"items", Str()}}},
                     {"active", json::object{{"type", "boolean"}}},
                     {"created_at", DateTime()},
                     {"updated_at", DateTime()}};
  json::array required{"id", "url", "events", "active", "created_at", "updated_at"};
  if (with_secret) {
    props["secret"] = Str("`whsec_<base64 key>`: shown only here. Verify deliveries with it (Standard Webhooks).");
    required.emplace_back("secret");
  }
  if (with_breaker) {
    props["breaker"] = json::object{
        {"type", "object"},
        {"properties", json::object{{"destination", Str()},
                                    {"state", json::object{{"type", "string"}, {"enum", json::array{"closed", "open", "half_open"}}}},
                                    {"failures", json::object{{"type", "integer"}}},
                                    {"open_until", DateTime(true)}}},
        {"required", json::array{"destination", "state", "failures", "open_until"}}};
    required.emplace_back("breaker");
  }
  return json::object{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

json::object WebhookInputSchema(bool change) {
  json::object s{{"type", "object"},
                 {"properties",
                  json::object{{"url", Str("http:// or https:// URL; private and loopback hosts are refused unless "
                                           "webhooks.allow_private is true.")},
                               {"events", json::object{{"type", "array"},
                                                       {"items", Str("<collection>.<created|updated|deleted|*> or *")},
                                                       {"minItems", 1},
                                                       {"maxItems", 50}}},
                               {"active", json::object{{"type", "boolean"}}}}},
                 {"additionalProperties", false}};
  if (!change) s["required"] = json::array{"url", "events"};
  return s;
}

json::object DeliverySchema() {
  json::object attempt{{"type", "object"},
                       {"properties", json::object{{"attempt", json::object{{"type", "integer"}}},
                                                   {"at", DateTime()},
                                                   {"status_code", NullableInt()},
                                                   {"latency_ms", json::object{{"type", "integer"}}},
                                                   {"error", NullableStr()}}},
                       {"required", json::array{"attempt", "at", "status_code", "latency_ms", "error"}}};
  return json::object{
      {"type", "object"},
      {"properties",
       json::object{{"id", Str()},
                    {"webhook_id", Str()},
                    {"event_id", Str("The CloudEvent id, sent as webhook-id.")},
                    {"event_type", Str("<collection>.<created|updated|deleted>")},
                    {"state", json::object{{"type", "string"}, {"enum", json::array{"pending", "succeeded", "failed"}}}},
                    {"attempts", json::object{{"type", "integer"}}},
                    {"status_code", NullableInt()},
                    {"latency_ms", NullableInt()},
                    {"error", NullableStr()},
                    {"created_at", DateTime()},
                    {"updated_at", DateTime()},
                    {"next_attempt_at", DateTime(true)},
                    {"delivered_at", DateTime(true)},
                    {"redelivery_of", NullableStr()},
                    {"log", json::object{{"type", "array"}, {"items", std::move(attempt)}}}}},
      {"required", json::array{"id", "webhook_id", "event_id", "event_type", "state", "attempts", "status_code",
                               "latency_ms", "error", "created_at", "updated_at", "next_attempt_at", "delivered_at",
                               "redelivery_of", "log"}}};
}

void EventPaths(json::object& paths) {
  json::object sse = Operation("realtime", "events", "Record changes as Server-Sent Events");
  sse["description"] =
      "A `text/event-stream`: `id:` the event sequence, `event:` basalt.record.created|updated|deleted, `data:` the "
      "CloudEvents 1.0 JSON (data = the record). Only records the collection's view rule (and `filter`) allows. "
      "`Last-Event-ID` resumes from the retained outbox; a subscriber that falls too far behind gets "
      "`event: basalt.overflow` and the stream ends. API keys and service tokens need the scope `records:read` "
      "(or `records:read:<collection>`), else 403.";
  sse["security"] = Security(true);
  sse["parameters"] = json::array{
      Param("collection", "query", Str(), "The collection to follow.", true),
      Param("filter", "query", Str(), "A filter, as on lists."),
      Param("last_event_id", "query", Str(), "Like the Last-Event-ID header, for clients that cannot set it."),
      Param("Last-Event-ID", "header", Str(), "Resume after this event id.")};
  sse["responses"] = Responses()
                         .Add(200, json::object{{"description", "The stream."},
                                                {"content", json::object{{"text/event-stream", json::object{{"schema", Str()}}}}}})
                         .Problems({400, 401, 403, 404, 409, 422})
                         .Build();
  paths["/api/v1/realtime"] = json::object{{"get", std::move(sse)}};

  json::object list = Operation("list_webhooks", "webhooks", "List webhooks");
  list["security"] = Security(false);
  list["responses"] = Responses().Add(200, JsonResponse("Every webhook.", SchemaRef("Webhooks"))).Problems({401, 403}).Build();
  json::object create = Operation("create_webhook", "webhooks", "Register a webhook");
  create["security"] = Security(false);
  create["parameters"] = Params({"Idempotency-Key"});
  create["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", SchemaRef("WebhookDefinition")}}}});
  create["responses"] = Responses()
                            .Add(201, JsonResponse("Created; the secret is shown only now.", SchemaRef("WebhookCreated"),
                                                   json::object{{"Location", HeaderRef("Location")}}))
                            .Problems({400, 401, 403, 415, 422})
                            .Build();
  paths["/api/v1/webhooks"] = json::object{{"get", std::move(list)}, {"post", std::move(create)}};

  json::object get = Operation("get_webhook", "webhooks", "A webhook and its destination's circuit breaker");
  get["security"] = Security(false);
  get["responses"] = Responses().Add(200, JsonResponse("The webhook.", SchemaRef("WebhookWithBreaker"))).Problems({401, 403, 404}).Build();
  json::object patch = Operation("update_webhook", "webhooks", "Change a webhook");
  patch["security"] = Security(false);
  patch["requestBody"] = Body(json::object{{"application/json", json::object{{"schema", SchemaRef("WebhookChange")}}},
                                           {"application/merge-patch+json", json::object{{"schema", SchemaRef("WebhookChange")}}}});
  patch["responses"] = Responses().Add(200, JsonResponse("The webhook.", SchemaRef("Webhook"))).Problems({400, 401, 403, 404, 415, 422}).Build();
  json::object del = Operation("delete_webhook", "webhooks", "Delete a webhook and its delivery log");
  del["security"] = Security(false);
  del["responses"] = Responses().Add(204, json::object{{"description", "Deleted."}}).Problems({401, 403, 404}).Build();
  paths["/api/v1/webhooks/{id}"] = json::object{
      {"parameters", json::array{Param("id", "path", Str(), "The webhook's id.", true)}},
      {"get", std::move(get)}, {"patch", std::move(patch)}, {"delete", std::move(del)}};

  json::object deliveries = Operation("list_webhook_deliveries", "webhooks", "The delivery log, newest first");
  deliveries["security"] = Security(false);
  deliveries["parameters"] = json::array{
      Param("limit", "query", json::object{{"type", "integer"}, {"minimum", 1}, {"maximum", 500}}, "At most this many (50).")};
  deliveries["responses"] =
      Responses().Add(200, JsonResponse("Deliveries with their attempts.", SchemaRef("WebhookDeliveries"))).Problems({400, 401, 403, 404}).Build();
  paths["/api/v1/webhooks/{id}/deliveries"] = json::object{
      {"parameters", json::array{Param("id", "path", Str(), "The webhook's id.", true)}}, {"get", std::move(deliveries)}};

  json::object redeliver = Operation("redeliver_webhook_delivery", "webhooks", "Send a delivery again");
  redeliver["description"] =
      "Produces a new message onto the basalt.webhooks queue with the same event (same webhook-id): a new "
      "delivery whose redelivery_of names this one. 409 when this delivery's message is no longer retained.";
  redeliver["security"] = Security(false);
  redeliver["parameters"] = Params({"Idempotency-Key"});
  redeliver["responses"] = Responses()
                               .Add(202, JsonResponse("The new delivery, queued.", SchemaRef("WebhookDelivery")))
                               .Problems({401, 403, 404, 409})
                               .Build();
  paths["/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"] = json::object{
      {"parameters", json::array{Param("id", "path", Str(), "The webhook's id.", true),
                                 Param("delivery", "path", Str(), "The delivery's id.", true)}},
      {"post", std::move(redeliver)}};
}

json::object Components(const schema::Snapshot& snapshot, bool events) {
  json::object schemas;
  schemas["Problem"] = ProblemSchema();
  schemas["TokenPair"] = ObjectOf(json::object{{"access_token", Str("JWT (EdDSA).")},
                                               {"refresh_token", Str("Opaque; rotated on every use.")},
                                               {"token_type", json::object{{"const", "Bearer"}}},
                                               {"expires_in", json::object{{"type", "integer"}}}},
                                  json::array{"access_token", "refresh_token", "token_type", "expires_in"});
  schemas["AuthUser"] = json::object{
      {"type", "object"},
      {"description", "The `users` record plus its email and roles."},
      {"properties", json::object{{"id", Str()}, {"email", Str()}, {"roles", json::object{{"type", "array"}, {"items", Str()}}}}},
      {"required", json::array{"id", "email", "roles"}}};
  schemas["Collection"] = CollectionSchema();
  schemas["CollectionDefinition"] = DefinitionSchema(false);
  schemas["CollectionChange"] = DefinitionSchema(true);
  schemas["CollectionField"] = FieldDefinitionSchema();
  schemas["CollectionIndex"] = IndexSchema();
  schemas["CollectionRules"] = RulesSchema();
  if (events) {
  schemas["Webhook"] = WebhookSchema(false, false);
  schemas["WebhookCreated"] = WebhookSchema(true, false);
  schemas["WebhookWithBreaker"] = WebhookSchema(false, true);
  schemas["WebhookDefinition"] = WebhookInputSchema(false);
  schemas["WebhookChange"] = WebhookInputSchema(true);
  schemas["WebhookDelivery"] = DeliverySchema();
  schemas["Webhooks"] = ItemsOf("Webhook");
  schemas["WebhookDeliveries"] = ItemsOf("WebhookDelivery");
  }
  schemas["Collections"] = json::object{
      {"type", "object"},
      {"properties", json::object{{"items", json::object{{"type", "array"}, {"items", SchemaRef("Collection")}}}}},
      {"required", json::array{"items"}}};
  AccessSchemas(schemas);
  schemas["AuditEntry"] = AuditEntrySchema();
  schemas["AuditLog"] = json::object{
      {"type", "object"},
      {"properties", json::object{{"items", json::object{{"type", "array"}, {"items", SchemaRef("AuditEntry")}}},
                                  {"next_cursor", json::object{{"type", json::array{"string", "null"}}}}}},
      {"required", json::array{"items", "next_cursor"}}};
  for (const auto& [name, c] : snapshot.collections) {
    const std::string base = SchemaBaseName(name);
    schemas[base + "Record"] = RecordSchema(c->spec, false);
    schemas[base + "Item"] = RecordSchema(c->spec, true);
    schemas[base + "Create"] = CreateSchema(c->spec);
    schemas[base + "Patch"] = PatchSchema(c->spec);
    schemas[base + "List"] = ListSchema(base);
  }

  json::object responses;
  for (const auto& p : kProblems) {
    json::object r{{"description", p.description}};
    if (p.status == 401) r["headers"] = json::object{{"WWW-Authenticate", HeaderRef("WWW-Authenticate")}};
    if (p.status == 503) r["headers"] = json::object{{"Retry-After", HeaderRef("Retry-After")}};
    if (p.status == 429)
      r["headers"] = json::object{{"Retry-After", HeaderRef("Retry-After")},
                                  {"RateLimit-Limit", HeaderRef("RateLimit-Limit")},
                                  {"RateLimit-Remaining", HeaderRef("RateLimit-Remaining")},
                                  {"RateLimit-Reset", HeaderRef("RateLimit-Reset")}};
    r["content"] = json::object{{"application/problem+json", json::object{{"schema", SchemaRef("Problem")}}}};
    responses[ProblemName(p.status)] = std::move(r);
  }

  json::object parameters;
  parameters["filter"] = Param("filter", "query", Str(), "Filter expression, e.g. `views > 10 && title ~ \"db\"`.");
  parameters["sort"] = Param("sort", "query", Str(), "Comma-separated fields, `-` for descending, e.g. `-views,title`.");
  parameters["fields"] = Param("fields", "query", Str(), "Projection, e.g. `id,title`.");
  parameters["expand"] = Param("expand", "query", Str(), "Relation fields whose records to embed under `expand`, e.g. `author`.");
  parameters["limit"] = Param("limit", "query",
                              json::object{{"type", "integer"}, {"minimum", 1}, {"maximum", 500}, {"default", 50}},
                              "Page size.");
  parameters["cursor"] = Param("cursor", "query", Str(), "`next_cursor` of the previous page (same `sort`).");
  parameters["count"] = Param("count", "query", json::object{{"type", "boolean"}, {"default", false}},
                              "Include `total`.");
  parameters["If-Match"] = Param("If-Match", "header", Str(), "`\"<version>\"`: 412 when the resource changed.");
  parameters["If-None-Match"] = Param("If-None-Match", "header", Str(), "`\"<version>\"`: 304 when unchanged.");
  parameters["Idempotency-Key"] = Param("Idempotency-Key", "header",
                                        json::object{{"type", "string"}, {"minLength", 1}, {"maxLength", 255}},
                                        "The first response is stored and replayed for the same key.");

  json::object headers;
  auto header = [&](const char* name, const char* description) {
    headers[name] = json::object{{"description", description}, {"schema", Str()}};
  };
  header("ETag", "The version as a strong entity tag, e.g. `\"3\"`.");
  header("Link", "`<...>; rel=\"next\"` while there are more pages.");
  header("Location", "The new resource's path.");
  header("Retry-After", "Seconds to wait.");
  header("WWW-Authenticate", "`Bearer realm=...`.");
  header("RateLimit-Limit", "The identity's burst for this route (IETF draft ratelimit headers).");
  header("RateLimit-Remaining", "Requests that would still pass now.");
  header("RateLimit-Reset", "Seconds until the quota is whole again.");

  json::object security{
      {"admin_token", json::object{{"type", "http"}, {"scheme", "bearer"},
                                   {"description", "`auth.admin_token`: a superuser for automation."}}},
      {"metrics_token", json::object{{"type", "http"}, {"scheme", "bearer"},
                                     {"description", "`metrics.token`, when configured."}}},
      {"bearer", json::object{{"type", "http"}, {"scheme", "bearer"},
                              {"description", "A user's or service's JWT access token, or an API key `bsk_...`."}}},
      {"api_key", json::object{{"type", "apiKey"}, {"in", "header"}, {"name", "X-API-Key"},
                               {"description", "An API key `bsk_<id>_<secret>`."}}},
      {"client_basic", json::object{{"type", "http"}, {"scheme", "basic"},
                                    {"description", "OAuth2 client_id and client_secret (client_secret_basic)."}}}};
  return json::object{{"schemas", std::move(schemas)},
                      {"responses", std::move(responses)},
                      {"parameters", std::move(parameters)},
                      {"headers", std::move(headers)},
                      {"securitySchemes", std::move(security)}};
}

}  // namespace

std::string SchemaBaseName(std::string_view collection) {
  std::string out;
  out.reserve(collection.size());
  for (std::size_t i = 0; i < collection.size(); ++i) {
    const char c = collection[i];
    if (i == 0) {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else if (c == '_' && i + 1 < collection.size() && std::islower(static_cast<unsigned char>(collection[i + 1]))) {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(collection[++i])));
    } else {
      out += c;
    }
  }
  return out;
}

std::string EcmaPattern(std::string_view re2) {
  // Escapes that mean the same in RE2 and in ECMA-262 with the `u` flag (which JSON Schema
  // validators use); anything else (\A, \z, \pL, \Q, \x{..}, \-, ...) is refused.
  constexpr std::string_view kEscapes = "dDwWsSbB.*+?()[]{}|\\^$/ntrf";
  int depth = 0;
  bool in_class = false;
  for (std::size_t i = 0; i < re2.size(); ++i) {
    const char c = re2[i];
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return {};
    if (c == '\\') {
      if (i + 1 >= re2.size()) return {};
      const char e = re2[++i];
      if (kEscapes.find(e) == std::string_view::npos && !(in_class && e == '-')) return {};
      continue;
    }
    if (in_class) {
      if (c == '[') return {};  // [[:alpha:]] and nested classes differ
      if (c == ']') in_class = false;
      continue;
    }
    switch (c) {
      case '[':
        in_class = true;
        if (i + 1 < re2.size() && re2[i + 1] == '^') ++i;
        if (i + 1 < re2.size() && re2[i + 1] == ']') return {};  // "[]...]" differs
        break;
      case '(':
        if (i + 1 < re2.size() && re2[i + 1] == '?') {
          if (i + 2 < re2.size() && re2[i + 2] == ':') {
            i += 2;
          } else {
            return {};  // flags, named groups
          }
        }
        ++depth;
        break;
      case ')':
        if (--depth < 0) return {};
        break;
      case '{': {  // only a complete repetition {n}, {n,}, {n,m}
        std::size_t j = i + 1;
        const std::size_t digits = j;
        while (j < re2.size() && std::isdigit(static_cast<unsigned char>(re2[j]))) ++j;
        if (j == digits) return {};
        if (j < re2.size() && re2[j] == ',') {
          ++j;
          while (j < re2.size() && std::isdigit(static_cast<unsigned char>(re2[j]))) ++j;
        }
        if (j >= re2.size() || re2[j] != '}') return {};
        i = j;
        break;
      }
      case '}':
        return {};
      default:
        break;
    }
  }
  if (in_class || depth != 0) return {};
  return "^(?:" + std::string(re2) + ")$";
}

json::object OpenApiDocument(const schema::Snapshot& snapshot, const OpenApiOptions& options) {
  json::object doc;
  doc["openapi"] = "3.1.0";
  doc["info"] = json::object{
      {"title", "Basalt"},
      {"version", options.version},
      {"description", "Generated from the live schema: one set of record paths and schemas per collection. "
                      "Errors are RFC 9457 application/problem+json."}};
  doc["servers"] = json::array{json::object{{"url", "/"}}};

  json::array tags;
  tags.emplace_back(json::object{{"name", "collections"}, {"description", "Collection management (admin)."}});
  for (const auto& [name, c] : snapshot.collections)
    tags.emplace_back(json::object{{"name", name + " records"}, {"description", "Records of `" + name + "`."}});
  if (options.batch) tags.emplace_back(json::object{{"name", "batch"}});
  tags.emplace_back(json::object{{"name", "audit"}, {"description", "The hash-chained audit log (permission `audit:read`)."}});
  if (options.queues) tags.emplace_back(json::object{{"name", "queues"}, {"description", "The durable queue (permissions `queues:produce`, `queues:consume`, `queues:admin`, or their per-queue forms `queues:produce:<queue>`...)."}});
  tags.emplace_back(json::object{{"name", "auth"}, {"description", "Users, sessions and the gateway verify endpoint."}});
  if (options.events) {
    tags.emplace_back(json::object{{"name", "events"}, {"description", "Live record changes (Server-Sent Events)."}});
    tags.emplace_back(json::object{{"name", "webhooks"}, {"description", "Signed record-change deliveries (permission `webhooks:manage`)."}});
  }
  tags.emplace_back(json::object{{"name", "meta"}});
  tags.emplace_back(json::object{{"name", "api keys"}, {"description", "API keys `bsk_...` with scopes."}});
  tags.emplace_back(json::object{{"name", "roles"}, {"description", "Roles, permissions and assignments."}});
  tags.emplace_back(json::object{{"name", "oauth2"}, {"description", "OAuth2 authorization server for services."}});
  tags.emplace_back(json::object{{"name", "operations"}, {"description", "Health and metrics."}});
  doc["tags"] = std::move(tags);

  json::object paths = Health();
  if (options.metrics) paths["/metrics"] = Metrics();
  paths["/api/v1/openapi.json"] = OpenApiPath();
  paths["/api/v1/audit-log"] = AuditLogPath();
  if (options.batch) paths["/api/v1/batch"] = BatchPath();
  if (options.auth) AuthPaths(paths);
  if (options.events) EventPaths(paths);
  CollectionPaths(paths);
  AccessPaths(paths);
  for (const auto& [name, c] : snapshot.collections) RecordPaths(paths, c->spec);
  json::object components = Components(snapshot, options.events);
  if (options.queues) AddQueueDocs(paths, components["schemas"].as_object());
  doc["paths"] = std::move(paths);
  doc["components"] = std::move(components);
  return doc;
}

namespace {

struct Cached {
  std::weak_ptr<const schema::Snapshot> snapshot;
  std::string body;
};

}  // namespace

core::Result<void> RegisterOpenApi(http::Router& router, const DataServices& services) {
  const DataServices* s = &services;
  const http::Router* r = &router;
  auto cache = std::make_shared<std::atomic<std::shared_ptr<const Cached>>>();
  return router.Add(http::Method::kGet, "/api/v1/openapi.json",
                    [s, r, cache](http::Request&) -> http::Task<http::Response> {
                      auto snap = s->catalog.snapshot();
                      auto cached = cache->load(std::memory_order_acquire);
                      if (!cached || cached->snapshot.lock() != snap) {
                        OpenApiOptions options;
                        options.version = std::string(BuildVersion());
                        options.metrics = r->Find(http::Method::kGet, "/metrics").kind == http::RouteMatch::Kind::kFound;
                        options.batch = r->Find(http::Method::kPost, "/api/v1/batch").kind == http::RouteMatch::Kind::kFound;
                        options.queues = r->Find(http::Method::kGet, "/api/v1/queues").kind == http::RouteMatch::Kind::kFound;
                        options.auth = r->Find(http::Method::kPost, "/api/v1/auth/login").kind == http::RouteMatch::Kind::kFound;
                        options.events = r->Find(http::Method::kGet, "/api/v1/realtime").kind == http::RouteMatch::Kind::kFound;
                        auto fresh = std::make_shared<Cached>();
                        fresh->snapshot = snap;
                        fresh->body = json::serialize(OpenApiDocument(*snap, options));
                        cache->store(fresh, std::memory_order_release);
                        cached = std::move(fresh);
                      }
                      http::Response res = http::Response::Json(200, cached->body);
                      res.Set("Cache-Control", "no-cache");
                      co_return res;
                    });
}

}  // namespace basalt::api
