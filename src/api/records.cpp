// /api/v1/collections/{name}/records[/{id}]: record CRUD and lists under the collection's rules.
// Rules become SQL predicates (never checks after the fetch): null = admin only, "" = public,
// otherwise the rule is compiled into the WHERE clause; a record the caller may not see is 404.
//
// Lists use keyset pagination: the cursor is base64url(JSON {"s": <sort>, "k": [<sort key values
// of the last row>..., <its id>]}); NULL sorts where the backend puts it (SQLite: smallest,
// PostgreSQL: largest, so plain ASC/DESC keeps using indexes), `id` is the final tie-breaker in
// the direction of the last key, so a page boundary is a strict position in a total order and
// concurrent inserts never make a row repeat or vanish.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "api/data_routes.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "core/crypto.hpp"
#include "api/visibility.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "events/outbox.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"
#include "schema/catalog.hpp"
#include "schema/ddl.hpp"
#include "schema/record.hpp"
#include "schema/resolver.hpp"
#include "store/database.hpp"
#include "store/deferred.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using detail::Caller;
using schema::Quote;

constexpr std::int64_t kDefaultLimit = 50;
constexpr std::int64_t kMaxLimit = 500;
constexpr std::size_t kMaxSortKeys = 8;

core::Error Err(core::ErrorCode code, std::string message) { return core::Error::Make(code, std::move(message)); }

core::Error BadParam(std::string param, std::string message) {
  core::Error e = Err(core::ErrorCode::kBadRequest, message);
  e.fields.push_back({std::move(param), "invalid", std::move(message)});
  return e;
}

std::string Etag(std::int64_t version) { return "\"" + std::to_string(version) + "\""; }

store::Value ToStore(const query::Param& p) {
  return std::visit(
      [](const auto& v) -> store::Value {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) return store::Null{};
        else return v;
      },
      p);
}

/// SQL text plus its parameters, numbered as they are added.
struct Sql {
  const store::Dialect& dialect;
  std::string text;
  std::vector<store::Value> params;

  std::string Bind(store::Value v) {
    params.push_back(std::move(v));
    return dialect.Placeholder(static_cast<int>(params.size()));
  }
  store::Statement Take() { return store::Statement{std::move(text), std::move(params)}; }
};

query::SqlSyntax SyntaxFor(const store::Dialect& d) {
  return schema::DdlDialect::FromName(d.Name()).kind() == schema::DdlDialect::Kind::kPostgres
             ? query::SqlSyntax::Postgres()
             : query::SqlSyntax::Sqlite();
}

/// Compiles `text` for `collection`, numbering its placeholders after `sql`'s; appends params.
core::Result<std::string> CompileInto(Sql& sql, std::string_view text, const schema::Snapshot& snap,
                                      const schema::CollectionSpec& spec, const core::KeyRing* keys,
                                      const Caller& caller) {
  auto expr = query::Parse(text);
  if (!expr) return std::unexpected(std::move(expr.error()));
  const schema::DdlDialect ddl = schema::DdlDialect::FromName(sql.dialect.Name());
  schema::CollectionResolver resolver(snap, spec, ddl, "t", keys);
  // The caller's identity is bound as parameters (@request.auth.id, @request.auth.role).
  schema::RequestVariables variables(caller.user_id, caller.role);
  query::SqlSyntax syntax = SyntaxFor(sql.dialect);
  syntax.first_param_index = static_cast<int>(sql.params.size()) + 1;
  auto compiled = query::Compile(*expr, resolver, variables, syntax);
  if (!compiled) return std::unexpected(std::move(compiled.error()));
  for (auto& p : compiled->params) sql.params.push_back(ToStore(p));
  return "(" + compiled->sql + ")";
}

/// The access predicate for an action, or an error (401/403) when the caller may not act at all.
core::Result<std::string> RulePredicate(Sql& sql, const std::optional<std::string>& rule, const Caller& caller,
                                        const schema::Snapshot& snap, const schema::CollectionSpec& spec,
                                        const core::KeyRing* keys) {
  if (caller.admin) return std::string("1 = 1");
  if (!rule)
    return core::Fail(caller.authenticated ? core::ErrorCode::kForbidden : core::ErrorCode::kUnauthorized,
                      "Only admins may do this.");
  if (rule->empty()) return std::string("1 = 1");
  auto compiled = CompileInto(sql, *rule, snap, spec, keys, caller);
  if (!compiled) {
    // Stored rules compiled when saved; a failure here is a schema drift, not the client's fault.
    return core::Fail(core::ErrorCode::kInternal, "The collection's rule cannot be evaluated.", compiled.error().message);
  }
  return compiled;
}

struct Context {
  std::shared_ptr<const schema::Snapshot> snap;
  const schema::Collection* collection = nullptr;
  std::string table;
  const core::KeyRing* keys = nullptr;
};

/// How stale this process's view of collections changed by other processes may get while it serves.
constexpr std::chrono::milliseconds kCatalogRefreshInterval{1000};

/// The collection named `name`; an unknown name first refreshes the catalog (rate-limited), in
/// case another process created it.
http::Task<core::Result<Context>> ResolveName(const DataServices& s, unsigned shard, std::string_view name) {
  const auto executor = co_await boost::asio::this_coro::executor;
  s.catalog.RefreshInBackground(shard, executor, kCatalogRefreshInterval);
  Context ctx;
  ctx.keys = &s.keys;
  ctx.snap = s.catalog.snapshot();
  ctx.collection = ctx.snap->Find(name);
  if (!ctx.collection && schema::IsValidName(name, 61)) {
    auto refreshed = co_await s.catalog.Refresh(shard);
    if (refreshed && *refreshed) {
      ctx.snap = s.catalog.snapshot();
      ctx.collection = ctx.snap->Find(name);
    }
  }
  if (!ctx.collection) co_return core::Fail(core::ErrorCode::kNotFound, "No such collection.");
  ctx.table = Quote(schema::TableName(ctx.collection->spec.name));
  co_return ctx;
}

/// The collection of the request (its {name} parameter).
http::Task<core::Result<Context>> Resolve(const DataServices& s, const http::Request& req) {
  return ResolveName(s, req.shard(), req.Param("name"));
}

std::string RecordPath(std::string_view collection, std::string_view id) {
  return "/api/v1/collections/" + std::string(collection) + "/records/" + std::string(id);
}

http::Response RecordResponse(int status, const json::object& record) {
  http::Response res = http::Response::Json(status, json::serialize(record));
  if (const json::value* v = record.if_contains("version"); v && v->is_int64()) res.Set("ETag", Etag(v->as_int64()));
  res.Set("Cache-Control", "no-store");
  return res;
}

/// The full row for a written record, in SelectList order.
std::vector<store::Value> RowOf(const std::string& id, const std::string& created, const std::string& updated,
                                std::int64_t version, const schema::Columns& columns) {
  std::vector<store::Value> row{id, created, updated, version};
  for (const auto& [_, v] : columns) row.push_back(v);
  return row;
}

/// Checks inside the transaction that every non-null relation value names an existing record, so
/// the error names the field (the FOREIGN KEY stays the guarantee).
store::Task<core::Result<void>> CheckRelations(store::Transaction& tx, const store::Dialect& dialect,
                                               const schema::CollectionSpec& spec, const schema::Columns& columns) {
  std::vector<core::FieldError> errors;
  for (std::size_t i = 0; i < spec.fields.size(); ++i) {
    const schema::FieldSpec& f = spec.fields[i];
    if (f.kind != schema::FieldKind::kRelation) continue;
    const auto* id = std::get_if<std::string>(&columns[i].second);
    if (!id) continue;
    store::Statement st{"SELECT 1 FROM " + Quote(schema::TableName(f.collection)) + " WHERE \"id\" = " +
                            dialect.Placeholder(1),
                        {*id}};
    auto rows = co_await tx.Execute(std::move(st));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    if (rows->rows.empty()) errors.push_back({f.name, "relation", "no record with this id in '" + f.collection + "'"});
  }
  if (errors.empty()) co_return core::Result<void>{};
  core::Error e = Err(core::ErrorCode::kValidation, "The record is invalid.");
  e.fields = std::move(errors);
  co_return std::unexpected(std::move(e));
}

// ---- lists -------------------------------------------------------------------------------------

struct SortKey {
  std::string field;
  bool desc = false;
  std::size_t column = 0;  ///< Index in the SelectList row.
  bool nullable = true;    ///< False for the system fields.
};

core::Result<std::vector<SortKey>> ParseSort(std::string_view text, const schema::CollectionSpec& spec) {
  std::vector<SortKey> keys;
  auto column_of = [&](std::string_view f) -> std::optional<std::size_t> {
    if (f == "id") return 0;
    if (f == "created_at") return 1;
    if (f == "updated_at") return 2;
    if (f == "version") return 3;
    for (std::size_t i = 0; i < spec.fields.size(); ++i) {
      if (spec.fields[i].name == f) {
        if (spec.fields[i].kind == schema::FieldKind::kJson || spec.fields[i].kind == schema::FieldKind::kSecret ||
            (spec.fields[i].kind == schema::FieldKind::kSelect && spec.fields[i].multi))
          return std::nullopt;
        return 4 + i;
      }
    }
    return std::nullopt;
  };
  std::size_t pos = 0;
  while (!text.empty() && pos <= text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(pos, end - pos);
    SortKey key;
    if (!item.empty() && (item[0] == '-' || item[0] == '+')) {
      key.desc = item[0] == '-';
      item.remove_prefix(1);
    }
    auto col = column_of(item);
    if (item.empty() || !col)
      return std::unexpected(BadParam("sort", "cannot sort by '" + std::string(item.substr(0, 64)) + "'"));
    for (const auto& k : keys) {
      if (k.field == item) return std::unexpected(BadParam("sort", "'" + std::string(item) + "' is listed twice"));
    }
    key.field = std::string(item);
    key.column = *col;
    keys.push_back(std::move(key));
    if (keys.size() > kMaxSortKeys) return std::unexpected(BadParam("sort", "at most 8 sort fields"));
    pos = end + 1;
  }
  for (auto& k : keys) k.nullable = k.column >= 4;
  // Keys after id never matter (id is unique); dropping them keeps the cursor's last value the id.
  if (auto id = std::find_if(keys.begin(), keys.end(), [](const SortKey& k) { return k.field == "id"; });
      id != keys.end())
    keys.erase(id + 1, keys.end());
  // id is the final tie-breaker, in the direction of the last key, so an index on (field, id)
  // serves the whole ORDER BY (keys after id would never matter).
  if (std::none_of(keys.begin(), keys.end(), [](const SortKey& k) { return k.field == "id"; }))
    keys.push_back(SortKey{"id", !keys.empty() && keys.back().desc, 0, false});
  return keys;
}

std::string SortText(const std::vector<SortKey>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ",") + std::string(k.desc ? "-" : "") + k.field;
  return out;
}


json::value ToJsonValue(const store::Value& v) {
  return std::visit(
      [](const auto& x) -> json::value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, store::Null>) return nullptr;
        else return json::value(x);
      },
      v);
}

std::optional<store::Value> FromJsonValue(const json::value& v) {
  if (v.is_null()) return store::Value(store::Null{});
  if (v.is_int64()) return store::Value(v.as_int64());
  if (v.is_double()) return store::Value(v.as_double());
  if (v.is_string()) return store::Value(std::string(v.as_string()));
  if (v.is_bool()) return store::Value(v.as_bool());
  return std::nullopt;
}

std::string EncodeCursor(const std::vector<SortKey>& keys, const std::vector<store::Value>& row) {
  json::array k;
  for (const auto& key : keys) k.push_back(ToJsonValue(row[key.column]));
  return core::Base64UrlEncode(json::serialize(json::object{{"s", SortText(keys)}, {"k", std::move(k)}}));
}

core::Result<std::vector<store::Value>> DecodeCursor(std::string_view cursor, const std::vector<SortKey>& keys) {
  auto bad = [] { return std::unexpected(BadParam("cursor", "the cursor is invalid or belongs to another sort")); };
  if (cursor.size() > 8192) return bad();
  auto raw = core::Base64UrlDecode(cursor);
  if (!raw) return bad();
  boost::system::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return bad();
  const json::value* s = v.as_object().if_contains("s");
  const json::value* k = v.as_object().if_contains("k");
  if (!s || !s->is_string() || s->as_string() != SortText(keys) || !k || !k->is_array() ||
      k->as_array().size() != keys.size())
    return bad();
  std::vector<store::Value> values;
  for (const auto& item : k->as_array()) {
    auto value = FromJsonValue(item);
    if (!value) return bad();
    values.push_back(std::move(*value));
  }
  if (!std::holds_alternative<std::string>(values.back())) return bad();
  return values;
}

/// (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ..., with NULL where the backend sorts it.
std::string KeysetPredicate(Sql& sql, const std::vector<SortKey>& keys, const std::vector<store::Value>& values,
                            bool nulls_last) {
  std::string out = "(";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::string term;
    for (std::size_t j = 0; j < i; ++j) {
      const std::string col = "\"t\"." + Quote(keys[j].field);
      term += std::holds_alternative<store::Null>(values[j]) ? col + " IS NULL AND "
                                                             : col + " = " + sql.Bind(values[j]) + " AND ";
    }
    const std::string col = "\"t\"." + Quote(keys[i].field);
    const bool null = std::holds_alternative<store::Null>(values[i]);
    const std::string op = keys[i].desc ? " < " : " > ";
    // Do NULLs come before the values in this scan (ascending with NULL smallest, or descending
    // with NULL largest)?
    const bool nulls_before = keys[i].desc == nulls_last;
    if (null) {
      term += nulls_before ? col + " IS NOT NULL" : "1 = 0";
    } else if (nulls_before || !keys[i].nullable) {
      term += col + op + sql.Bind(values[i]);
    } else {
      term += "(" + col + op + sql.Bind(values[i]) + " OR " + col + " IS NULL)";
    }
    out += (i ? " OR (" : "(") + term + ")";
  }
  return out + ")";
}

// ---- expand ------------------------------------------------------------------------------------

constexpr std::size_t kExpandChunk = 500;

/// `expand=author,editor`: indexes (into spec.fields) of relation fields, in order, without
/// duplicates. Anything else is 400 naming the item.
core::Result<std::vector<std::size_t>> ParseExpand(std::string_view text, const schema::CollectionSpec& spec) {
  std::vector<std::size_t> out;
  if (text.empty()) return out;
  // The expanded records go under "expand"; a user field of that name would be overwritten.
  if (spec.Find("expand"))
    return std::unexpected(BadParam("expand", "cannot expand: '" + spec.name + "' has a field named 'expand'"));
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(pos, end - pos);
    pos = end + 1;
    std::optional<std::size_t> index;
    for (std::size_t i = 0; i < spec.fields.size(); ++i) {
      if (spec.fields[i].name == item && spec.fields[i].kind == schema::FieldKind::kRelation) index = i;
    }
    if (!index)
      return std::unexpected(BadParam("expand", "cannot expand '" + std::string(item.substr(0, 64)) +
                                                    "': not a relation field of '" + spec.name + "'"));
    if (std::find(out.begin(), out.end(), *index) == out.end()) out.push_back(*index);
  }
  return out;
}

/// Loads the records that `rows` (SelectList rows of `spec`) point to through each field of
/// `fields`: one query per relation and 500 ids (`id IN (...)`, bound), under the target's view
/// rule compiled into the WHERE. `expands[i]` receives {field: record} for row i; a target the
/// caller may not view, or that no longer exists, is absent.
store::Task<core::Result<void>> LoadExpands(const DataServices& s, unsigned shard, const schema::Snapshot& snap,
                                            const schema::CollectionSpec& spec, const Caller& caller,
                                            const std::vector<std::size_t>& fields,
                                            const std::vector<std::vector<store::Value>>& rows,
                                            std::vector<json::object>& expands) {
  expands.assign(rows.size(), json::object());
  for (const std::size_t f : fields) {
    const schema::FieldSpec& field = spec.fields[f];
    const schema::Collection* target = snap.Find(field.collection);
    if (!target) continue;
    std::vector<std::string> ids;
    std::set<std::string_view> seen;
    for (const auto& row : rows) {
      const auto* id = std::get_if<std::string>(&row[4 + f]);
      if (id && seen.insert(*id).second) ids.push_back(*id);
    }
    std::map<std::string, json::object, std::less<>> found;
    for (std::size_t start = 0; start < ids.size(); start += kExpandChunk) {
      Sql sql{s.database.dialect(), {}, {}};
      auto rule = RulePredicate(sql, target->spec.rules.view, caller, snap, target->spec, &s.keys);
      if (!rule) {
        if (rule.error().code == core::ErrorCode::kUnauthorized || rule.error().code == core::ErrorCode::kForbidden)
          break;  // not viewable: absent
        co_return std::unexpected(std::move(rule.error()));
      }
      std::string in;
      for (std::size_t i = start; i < std::min(ids.size(), start + kExpandChunk); ++i)
        in += (in.empty() ? "" : ", ") + sql.Bind(ids[i]);
      sql.text = "SELECT " + schema::SelectList(target->spec, "t") + " FROM " +
                 Quote(schema::TableName(target->spec.name)) + " AS \"t\" WHERE \"t\".\"id\" IN (" + in + ") AND " +
                 *rule;
      auto result = co_await s.database.Query(shard, sql.Take());
      if (!result) co_return std::unexpected(std::move(result.error()));
      for (const auto& row : result->rows) {
        json::object record = schema::RowToJson(target->spec, row);
        std::string id(record.at("id").as_string());
        found.emplace(std::move(id), std::move(record));
      }
    }
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto* id = std::get_if<std::string>(&rows[r][4 + f]);
      if (!id) continue;
      if (auto it = found.find(*id); it != found.end()) expands[r][field.name] = it->second;
    }
  }
  co_return core::Result<void>{};
}

struct ListParams {
  std::string filter, sort, fields, cursor, expand;
  std::int64_t limit = kDefaultLimit;
  bool count = false;
};

core::Result<ListParams> ParseListParams(std::string_view query) {
  ListParams p;
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto key = detail::DecodeComponent(pair.substr(0, eq));
    auto value = detail::DecodeComponent(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) return std::unexpected(BadParam("query", "malformed percent-encoding"));
    if (*key == "filter") p.filter = std::move(*value);
    else if (*key == "sort") p.sort = std::move(*value);
    else if (*key == "fields") p.fields = std::move(*value);
    else if (*key == "cursor") p.cursor = std::move(*value);
    else if (*key == "count") {
      if (*value != "true" && *value != "false") return std::unexpected(BadParam("count", "must be true or false"));
      p.count = *value == "true";
    } else if (*key == "limit") {
      std::int64_t n = 0;
      const auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
      if (ec != std::errc() || ptr != value->data() + value->size() || n < 1)
        return std::unexpected(BadParam("limit", "must be a positive integer"));
      if (n > kMaxLimit) return std::unexpected(BadParam("limit", "must be at most 500"));
      p.limit = n;
    } else if (*key == "expand") {
      p.expand = std::move(*value);
    }
  }
  return p;
}

std::string NextLink(const http::Request& req, const std::string& cursor) {
  std::string query;
  std::string_view q = req.query();
  std::size_t pos = 0;
  while (pos < q.size()) {
    std::size_t end = q.find('&', pos);
    if (end == std::string_view::npos) end = q.size();
    std::string_view pair = q.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty() || pair.starts_with("cursor=") || pair == "cursor") continue;
    query += std::string(pair) + "&";
  }
  return "<" + std::string(req.path()) + "?" + query + "cursor=" + cursor + ">; rel=\"next\"";
}

http::Task<http::Response> ListRecords(const DataServices& s, http::Request& req) {
  if (auto denied = detail::RequireScope(req, auth::kRecordsRead, req.Param("name"))) co_return *denied;
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  auto params = ParseListParams(req.query());
  if (!params) co_return detail::Fail(req, params.error());
  auto keys = ParseSort(params->sort, spec);
  if (!keys) co_return detail::Fail(req, keys.error());
  auto expand = ParseExpand(params->expand, spec);
  if (!expand) co_return detail::Fail(req, expand.error());
  std::vector<bool> projected;  // by SelectList column; empty = all
  if (!params->fields.empty()) {
    projected.assign(4 + spec.fields.size(), false);
    std::size_t pos = 0;
    const std::string& f = params->fields;
    while (pos <= f.size()) {
      std::size_t end = f.find(',', pos);
      if (end == std::string::npos) end = f.size();
      const std::string name = f.substr(pos, end - pos);
      pos = end + 1;
      std::optional<std::size_t> col;
      if (name == "id") col = 0;
      else if (name == "created_at") col = 1;
      else if (name == "updated_at") col = 2;
      else if (name == "version") col = 3;
      for (std::size_t i = 0; i < spec.fields.size(); ++i) {
        if (spec.fields[i].name != name) continue;
        if (spec.fields[i].kind == schema::FieldKind::kSecret)
          co_return detail::Fail(req, BadParam("fields", "'" + name + "' is a secret field; it is never returned"));
        col = 4 + i;
      }
      if (!col) co_return detail::Fail(req, BadParam("fields", "unknown field '" + name.substr(0, 64) + "'"));
      projected[*col] = true;
    }
  }
  const Caller caller = detail::Identify(req);
  Sql where{s.database.dialect(), {}, {}};
  auto rule = RulePredicate(where, spec.rules.list, caller, *ctx->snap, spec, ctx->keys);
  if (!rule) co_return detail::Fail(req, rule.error());
  std::string conditions = *rule;
  if (!params->filter.empty()) {
    auto filter = CompileInto(where, params->filter, *ctx->snap, spec, ctx->keys, caller);
    if (!filter) co_return detail::Fail(req, filter.error());
    conditions += " AND " + *filter;
  }
  std::optional<std::int64_t> total;
  if (params->count) {
    store::Statement count{"SELECT COUNT(*) FROM " + ctx->table + " AS \"t\" WHERE " + conditions, where.params};
    auto rows = co_await s.database.Query(req.shard(), std::move(count));
    if (!rows) co_return detail::Fail(req, rows.error());
    if (!rows->rows.empty()) {
      if (const auto* n = std::get_if<std::int64_t>(&rows->rows[0][0])) total = *n;
    }
  }
  if (!params->cursor.empty()) {
    auto values = DecodeCursor(params->cursor, *keys);
    if (!values) co_return detail::Fail(req, values.error());
    conditions += " AND " + KeysetPredicate(where, *keys, *values,
                                            schema::DdlDialect::FromName(s.database.dialect().Name()).NullsSortLast());
  }
  std::string order;
  for (const auto& k : *keys) {
    order += (order.empty() ? "" : ", ") + std::string("\"t\".") + Quote(k.field) +
             (k.desc ? " DESC" : " ASC");
  }
  const std::string limit = where.Bind(params->limit + 1);
  where.text = "SELECT " + schema::SelectList(spec, "t") + " FROM " + ctx->table + " AS \"t\" WHERE " + conditions +
               " ORDER BY " + order + " LIMIT " + limit;
  auto rows = co_await s.database.Query(req.shard(), where.Take());
  if (!rows) co_return detail::Fail(req, rows.error());
  const bool more = static_cast<std::int64_t>(rows->rows.size()) > params->limit;
  if (more) rows->rows.resize(static_cast<std::size_t>(params->limit));
  std::vector<json::object> expands;
  if (!expand->empty()) {
    auto loaded = co_await LoadExpands(s, req.shard(), *ctx->snap, spec, caller, *expand, rows->rows, expands);
    if (!loaded) co_return detail::Fail(req, loaded.error());
  }
  json::array items;
  items.reserve(rows->rows.size());
  for (std::size_t r = 0; r < rows->rows.size(); ++r) {
    const auto& row = rows->rows[r];
    json::object record = schema::RowToJson(spec, row);
    if (!projected.empty()) {
      json::object picked;
      for (const auto& [key, value] : record) {
        std::size_t col = key == "id" ? 0 : key == "created_at" ? 1 : key == "updated_at" ? 2 : key == "version" ? 3 : 0;
        if (col == 0 && key != "id") {
          for (std::size_t i = 0; i < spec.fields.size(); ++i) {
            if (spec.fields[i].name == key) col = 4 + i;
          }
        }
        if (projected[col]) picked[key] = value;
      }
      record = std::move(picked);
    }
    if (!expand->empty()) record["expand"] = std::move(expands[r]);
    items.emplace_back(std::move(record));
  }
  json::object body;
  body["items"] = std::move(items);
  std::string cursor;
  if (more && !rows->rows.empty()) cursor = EncodeCursor(*keys, rows->rows.back());
  body["next_cursor"] = cursor.empty() ? json::value(nullptr) : json::value(cursor);
  if (total) body["total"] = *total;
  http::Response res = http::Response::Json(200, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  if (!cursor.empty()) res.Add("Link", NextLink(req, cursor));
  co_return res;
}

enum class Write { kCreate, kReplace, kMerge, kDelete };

// ---- single records ----------------------------------------------------------------------------

http::Task<http::Response> ViewRecord(const DataServices& s, http::Request& req) {
  if (auto denied = detail::RequireScope(req, auth::kRecordsRead, req.Param("name"))) co_return *denied;
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  // Only `expand` applies to one record; other list parameters are ignored as before.
  std::string expand_text;
  for (std::string_view q = req.query(); !q.empty();) {
    const std::size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (!pair.starts_with("expand=")) continue;
    auto value = detail::DecodeComponent(pair.substr(7));
    if (!value) co_return detail::Fail(req, BadParam("expand", "malformed percent-encoding"));
    expand_text = std::move(*value);
  }
  auto expand = ParseExpand(expand_text, spec);
  if (!expand) co_return detail::Fail(req, expand.error());
  const Caller caller = detail::Identify(req);
  Sql sql{s.database.dialect(), {}, {}};
  auto rule = RulePredicate(sql, spec.rules.view, caller, *ctx->snap, spec, ctx->keys);
  if (!rule) co_return detail::Fail(req, rule.error());
  const std::string id = sql.Bind(std::string(req.Param("id")));
  sql.text = "SELECT " + schema::SelectList(spec, "t") + " FROM " + ctx->table + " AS \"t\" WHERE \"t\".\"id\" = " + id +
             " AND " + *rule;
  auto rows = co_await s.database.Query(req.shard(), sql.Take());
  if (!rows) co_return detail::Fail(req, rows.error());
  if (rows->rows.empty()) co_return detail::Fail(req, Err(core::ErrorCode::kNotFound, "No such record."));
  json::object record = schema::RowToJson(spec, rows->rows[0]);
  const std::string etag = Etag(record.at("version").as_int64());
  if (auto inm = req.Header("If-None-Match"); inm && detail::EtagMatches(*inm, etag, true)) {
    http::Response res = http::Response::Empty(304);
    res.Set("ETag", etag);
    co_return res;
  }
  if (!expand->empty()) {
    std::vector<json::object> expands;
    auto loaded = co_await LoadExpands(s, req.shard(), *ctx->snap, spec, caller, *expand, rows->rows, expands);
    if (!loaded) co_return detail::Fail(req, loaded.error());
    record["expand"] = std::move(expands[0]);
  }
  co_return RecordResponse(200, record);
}

/// One write (create, replace, merge, delete) checked and compiled before its transaction: the
/// single-record handlers and every batch operation go through PrepareWrite, then RunWrite inside
/// a transaction, then WriteStatus / the written record.
struct PreparedWrite {
  Write write = Write::kCreate;
  const schema::CollectionSpec* spec = nullptr;
  std::string table;
  std::string id;
  std::string now;
  // kCreate
  schema::Columns columns;
  store::Statement insert_st;
  store::Statement check_st;
  bool check_rule = false;
  // kReplace, kMerge, kDelete
  store::Statement select_st;
  std::optional<std::string> if_match;
  std::optional<json::value> body;
  const core::KeyRing* keys = nullptr;  ///< Seals secret fields (kReplace, kMerge).
  /// Statements whose result is not needed go through store::ExecuteDeferred (sent with
  /// COMMIT on PostgreSQL: one round trip less). Single writes only: in a batch, a deferred error
  /// would surface in a later operation and the reported index would be wrong.
  bool defer = false;
};

/// Runs `st` in `tx` for its error only: deferred when `defer` (see PreparedWrite::defer).
store::Task<core::Result<void>> WriteOnly(store::Transaction& tx, store::Statement st, bool defer) {
  if (defer) co_return co_await store::ExecuteDeferred(tx, std::move(st));
  auto done = co_await tx.Execute(std::move(st));
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return core::Result<void>{};
}

/// Checks the caller against the action's rule (401 first), then the body (`body` carries the
/// parse error of a single request, if any), and compiles the statements. `id` is ignored for
/// kCreate; `body` is ignored for kDelete.
core::Result<PreparedWrite> PrepareWrite(const store::Dialect& dialect, const Context& ctx, const Caller& caller, Write write,
                                         std::string id, core::Result<json::value> body,
                                         std::optional<std::string> if_match) {
  const schema::CollectionSpec& spec = ctx.collection->spec;
  PreparedWrite w;
  w.write = write;
  w.spec = &spec;
  w.table = ctx.table;
  w.keys = ctx.keys;
  w.now = core::FormatRfc3339(std::chrono::system_clock::now());
  if (write == Write::kCreate) {
    Sql check{dialect, {}, {}};
    const std::string id_placeholder = check.Bind(store::Null{});  // the id, set below
    auto rule = RulePredicate(check, spec.rules.create, caller, *ctx.snap, spec, ctx.keys);
    if (!rule) return std::unexpected(std::move(rule.error()));
    if (!body) return std::unexpected(std::move(body.error()));
    auto columns = schema::ValidateRecord(spec, *body, schema::WriteMode::kCreate);
    if (!columns) return std::unexpected(std::move(columns.error()));
    w.columns = std::move(*columns);
    w.id = core::FormatUuid(core::NewUuidV7());
    if (auto sealed = schema::SealSecrets(spec, w.id, ctx.keys, schema::WriteMode::kCreate, *body, nullptr, w.columns);
        !sealed)
      return std::unexpected(std::move(sealed.error()));
    check.params[0] = w.id;
    w.check_rule = *rule != "1 = 1";
    check.text = "SELECT 1 FROM " + ctx.table + " AS \"t\" WHERE \"t\".\"id\" = " + id_placeholder + " AND " + *rule;
    Sql insert{dialect, {}, {}};
    std::string names = "\"id\", \"created_at\", \"updated_at\", \"version\"";
    std::string values = insert.Bind(w.id) + ", " + insert.Bind(w.now) + ", " + insert.Bind(w.now) + ", " +
                         insert.Bind(std::int64_t{1});
    for (const auto& [name, value] : w.columns) {
      names += ", " + Quote(name);
      values += ", " + insert.Bind(value);
    }
    insert.text = "INSERT INTO " + ctx.table + " (" + names + ") VALUES (" + values + ")";
    w.insert_st = insert.Take();
    w.check_st = check.Take();
    return w;
  }
  Sql select{dialect, {}, {}};
  auto rule = RulePredicate(select, write == Write::kDelete ? spec.rules.del : spec.rules.update, caller, *ctx.snap, spec,
                            ctx.keys);
  if (!rule) return std::unexpected(std::move(rule.error()));
  if (write != Write::kDelete) {
    if (!body) return std::unexpected(std::move(body.error()));
    if (write == Write::kReplace) {
      // Validate before the transaction: a replace does not depend on the current record.
      if (auto v = schema::ValidateRecord(spec, *body, schema::WriteMode::kReplace); !v)
        return std::unexpected(std::move(v.error()));
    } else if (!body->is_object()) {
      return std::unexpected(Err(core::ErrorCode::kValidation, "The merge patch must be a JSON object."));
    }
    w.body = std::move(*body);
  }
  w.id = std::move(id);
  w.if_match = std::move(if_match);
  // Locked until the transaction ends: a concurrent PATCH, PUT or DELETE of the same record waits
  // here and then reads this one's result (its If-Match and merge see the new version; the
  // UPDATE's "version" condition can never match nothing).
  select.text = "SELECT " + schema::SelectList(spec, "t") + " FROM " + ctx.table + " AS \"t\" WHERE \"t\".\"id\" = " +
                select.Bind(w.id) + " AND " + *rule + dialect.RowLockClause("t");
  w.select_st = select.Take();
  return w;
}

store::Task<core::Result<void>> CreateBody(store::Transaction& tx, const store::Dialect& dialect, PreparedWrite& w,
                                           json::object& result) {
  if (auto ok = co_await CheckRelations(tx, dialect, *w.spec, w.columns); !ok) co_return ok;
  // Deferred: on PostgreSQL BEGIN, this INSERT, the outbox INSERT with its notification and COMMIT
  // go out in one round trip (unless the create rule needs its SELECT); an error of any still
  // rolls everything back and is what the caller sees.
  auto inserted = co_await WriteOnly(tx, std::move(w.insert_st), w.defer);
  if (!inserted) co_return std::unexpected(std::move(inserted.error()));
  if (w.check_rule) {
    auto visible = co_await tx.Execute(std::move(w.check_st));
    if (!visible) co_return std::unexpected(std::move(visible.error()));
    if (visible->rows.empty()) co_return core::Fail(core::ErrorCode::kForbidden, "The create rule does not allow this record.");
  }
  result = schema::RowToJson(*w.spec, RowOf(w.id, w.now, w.now, 1, w.columns));
  // The outbox event, in the same transaction: a rollback leaves no event.
  const std::string record_json = json::serialize(result);
  const std::vector<std::string> no_changes;
  co_return co_await events::AppendEvent(tx, dialect, w.spec->name, w.id, events::ChangeKind::kCreated, record_json,
                                         no_changes, w.defer);
}

store::Task<core::Result<void>> ChangeBody(store::Transaction& tx, const store::Dialect& dialect, PreparedWrite& w,
                                           json::object& result) {
  const schema::CollectionSpec& spec = *w.spec;
  auto rows = co_await tx.Execute(std::move(w.select_st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return core::Fail(core::ErrorCode::kNotFound, "No such record.");
  const json::object current = schema::RowToJson(spec, rows->rows[0]);
  const std::int64_t version = current.at("version").as_int64();
  if (w.if_match && !detail::EtagMatches(*w.if_match, Etag(version), false))
    co_return core::Fail(core::ErrorCode::kPreconditionFailed, "The record has changed (If-Match does not match).");
  if (w.write == Write::kDelete) {
    store::Statement del{"DELETE FROM " + w.table + " WHERE \"id\" = " + dialect.Placeholder(1), {w.id}};
    auto deleted = co_await tx.Execute(std::move(del));
    if (!deleted) {
      if (deleted.error().code == core::ErrorCode::kValidation)
        co_return core::Fail(core::ErrorCode::kConflict, "The record is still referenced by other records.");
      co_return std::unexpected(std::move(deleted.error()));
    }
    const std::string record_json = json::serialize(current);
    const std::vector<std::string> no_changes;
    co_return co_await events::AppendEvent(tx, dialect, spec.name, w.id, events::ChangeKind::kDeleted, record_json,
                                           no_changes, w.defer);
  }
  auto columns = schema::ValidateRecord(spec, *w.body,
                                        w.write == Write::kMerge ? schema::WriteMode::kMerge : schema::WriteMode::kReplace,
                                        &current);
  if (!columns) co_return std::unexpected(std::move(columns.error()));
  const schema::WriteMode mode = w.write == Write::kMerge ? schema::WriteMode::kMerge : schema::WriteMode::kReplace;
  if (auto sealed = schema::SealSecrets(spec, w.id, w.keys, mode, *w.body, &rows->rows[0], *columns); !sealed)
    co_return std::unexpected(std::move(sealed.error()));
  if (auto ok = co_await CheckRelations(tx, dialect, spec, *columns); !ok) co_return ok;
  Sql update{dialect, {}, {}};
  std::string sets = "\"updated_at\" = " + update.Bind(w.now) + ", \"version\" = " + update.Bind(version + 1);
  for (const auto& [name, value] : *columns) sets += ", " + Quote(name) + " = " + update.Bind(value);
  update.text = "UPDATE " + w.table + " SET " + sets + " WHERE \"id\" = " + update.Bind(w.id) +
                " AND \"version\" = " + update.Bind(version);
  // Its result is not needed: deferred, it travels with the outbox INSERT and COMMIT.
  auto updated = co_await WriteOnly(tx, update.Take(), w.defer);
  if (!updated) co_return std::unexpected(std::move(updated.error()));
  const std::string created = current.at("created_at").is_string() ? std::string(current.at("created_at").as_string()) : "";
  result = schema::RowToJson(spec, RowOf(w.id, created, w.now, version + 1, *columns));
  std::vector<std::string> changed;
  for (const auto& [key, value] : result) {
    if (key == "updated_at" || key == "version") continue;
    const json::value* before = current.if_contains(key);
    if (!before || *before != value) changed.emplace_back(key);
  }
  const std::string record_json = json::serialize(result);
  co_return co_await events::AppendEvent(tx, dialect, spec.name, w.id, events::ChangeKind::kUpdated, record_json,
                                         changed, w.defer);
}

/// Runs a prepared write inside `tx`; `result` receives the written record (not for kDelete).
store::Task<core::Result<void>> RunWrite(store::Transaction& tx, const store::Dialect& dialect, PreparedWrite& w,
                                         json::object& result) {
  if (w.write == Write::kCreate) co_return co_await CreateBody(tx, dialect, w, result);
  co_return co_await ChangeBody(tx, dialect, w, result);
}

int WriteStatus(Write write) { return write == Write::kCreate ? 201 : write == Write::kDelete ? 204 : 200; }

http::Response WriteResponse(const PreparedWrite& w, const json::object& result) {
  if (w.write == Write::kDelete) return http::Response::Empty(204);
  http::Response res = RecordResponse(WriteStatus(w.write), result);
  if (w.write == Write::kCreate) res.Set("Location", RecordPath(w.spec->name, w.id));
  return res;
}

http::Task<http::Response> WriteRecord(const DataServices& s, http::Request& req, Write write) {
  if (auto denied = detail::RequireScope(req, auth::kRecordsWrite, req.Param("name"))) co_return *denied;
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  core::Result<json::value> body = json::value(nullptr);
  if (write != Write::kDelete) body = detail::ParseBody(req, write == Write::kMerge);
  std::optional<std::string> if_match;
  if (auto h = req.Header("If-Match")) if_match = std::string(*h);
  auto prepared = PrepareWrite(s.database.dialect(), *ctx, detail::Identify(req), write,
                               std::string(req.Param("id")), std::move(body), std::move(if_match));
  if (!prepared) co_return detail::Fail(req, prepared.error());
  const store::Dialect& dialect = s.database.dialect();
  PreparedWrite& w = *prepared;
  w.defer = true;
  json::object result;
  auto done = co_await s.database.Transact(req.shard(), [&](store::Transaction& tx) { return RunWrite(tx, dialect, w, result); });
  if (!done) co_return detail::Fail(req, done.error());
  co_return WriteResponse(w, result);
}

// ---- batch -------------------------------------------------------------------------------------

constexpr std::size_t kMaxBatchOperations = 100;

/// One parsed batch operation.
struct BatchOp {
  Write write = Write::kCreate;
  std::string collection;
  std::string id;
  std::optional<json::value> body;
  std::optional<std::string> if_match;
};

core::Error BadOp(std::string message) { return Err(core::ErrorCode::kBadRequest, std::move(message)); }

/// Parses `path` strictly: /api/v1/collections/{name}/records for POST, .../records/{id} for the
/// others; no query, no trailing slash, no empty or extra segment.
core::Result<void> ParseOpPath(std::string_view path, BatchOp& op) {
  constexpr std::string_view kPrefix = "/api/v1/collections/";
  auto bad = [&] { return std::unexpected(BadOp("'path' must be /api/v1/collections/{name}/records[/{id}]")); };
  if (!path.starts_with(kPrefix)) return bad();
  path.remove_prefix(kPrefix.size());
  std::vector<std::string_view> segments;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    segments.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  if (segments.size() < 2 || segments.size() > 3 || segments[1] != "records") return bad();
  for (auto seg : segments) {
    if (seg.empty() || seg.find_first_of("?#%") != std::string_view::npos) return bad();
  }
  op.collection = std::string(segments[0]);
  if (segments.size() == 3) op.id = std::string(segments[2]);
  if (op.write == Write::kCreate && segments.size() != 2)
    return std::unexpected(BadOp("POST takes the path /api/v1/collections/{name}/records"));
  if (op.write != Write::kCreate && segments.size() != 3)
    return std::unexpected(BadOp("PUT, PATCH and DELETE take the path /api/v1/collections/{name}/records/{id}"));
  return {};
}

core::Result<BatchOp> ParseOp(const json::value& value) {
  if (!value.is_object()) return std::unexpected(BadOp("An operation must be a JSON object."));
  const json::object& o = value.as_object();
  for (const auto& [key, _] : o) {
    if (key != "method" && key != "path" && key != "body" && key != "headers")
      return std::unexpected(BadOp("Unknown member '" + std::string(key).substr(0, 64) + "' in an operation."));
  }
  BatchOp op;
  const json::value* method = o.if_contains("method");
  if (!method || !method->is_string()) return std::unexpected(BadOp("'method' must be a string."));
  const std::string_view m = method->as_string();
  if (m == "POST") op.write = Write::kCreate;
  else if (m == "PUT") op.write = Write::kReplace;
  else if (m == "PATCH") op.write = Write::kMerge;
  else if (m == "DELETE") op.write = Write::kDelete;
  else if (m == "GET") return std::unexpected(BadOp("GET is not allowed in a batch (reads are not batched)."));
  else return std::unexpected(BadOp("'method' must be POST, PUT, PATCH or DELETE."));
  const json::value* path = o.if_contains("path");
  if (!path || !path->is_string()) return std::unexpected(BadOp("'path' must be a string."));
  if (auto ok = ParseOpPath(path->as_string(), op); !ok) return std::unexpected(std::move(ok.error()));
  const json::value* body = o.if_contains("body");
  if (op.write == Write::kDelete) {
    if (body) return std::unexpected(BadOp("DELETE takes no 'body'."));
  } else {
    if (!body || !body->is_object()) return std::unexpected(BadOp("'body' must be a JSON object."));
    op.body = *body;
  }
  if (const json::value* headers = o.if_contains("headers")) {
    if (!headers->is_object()) return std::unexpected(BadOp("'headers' must be a JSON object."));
    for (const auto& [name, v] : headers->as_object()) {
      if (!http::HeaderNameEquals(name, "If-Match"))
        return std::unexpected(BadOp("Only the If-Match header is allowed in an operation."));
      if (!v.is_string()) return std::unexpected(BadOp("'If-Match' must be a string."));
      if (op.write == Write::kCreate) return std::unexpected(BadOp("If-Match does not apply to POST."));
      op.if_match = std::string(v.as_string());
    }
  }
  return op;
}

/// A problem for operation `index` (0-based): the operation's own status, plus "operation".
http::Response OperationProblem(const http::Request& req, const core::Error& error, std::size_t index) {
  http::Response res = detail::Fail(req, error);
  boost::system::error_code ec;
  json::value body = json::parse(res.body, ec);
  if (!ec && body.is_object()) {
    body.as_object()["operation"] = index;
    res.body = json::serialize(body);
  }
  return res;
}

store::Task<core::Result<void>> BatchBody(store::Transaction& tx, const store::Dialect& dialect,
                                          std::vector<core::Result<PreparedWrite>>& ops,
                                          std::vector<json::object>& results, std::size_t& failed) {
  results.assign(ops.size(), json::object());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    failed = i;
    if (!ops[i]) co_return std::unexpected(ops[i].error());
    auto done = co_await RunWrite(tx, dialect, *ops[i], results[i]);
    if (!done) co_return done;
  }
  failed = ops.size();  // not an operation's failure (e.g. the commit)
  co_return core::Result<void>{};
}

http::Task<http::Response> Batch(const DataServices& s, http::Request& req) {
  // A batch may touch any collection: scoped credentials need the unrestricted records:write.
  if (auto denied = detail::RequireScope(req, auth::kRecordsWrite)) co_return *denied;
  auto parsed = detail::ParseBody(req);
  if (!parsed) co_return detail::Fail(req, parsed.error());
  if (!parsed->is_object()) co_return detail::Fail(req, BadOp("The batch must be a JSON object."));
  for (const auto& [key, _] : parsed->as_object()) {
    if (key != "operations")
      co_return detail::Fail(req, BadOp("Unknown member '" + std::string(key).substr(0, 64) + "'."));
  }
  const json::value* list = parsed->as_object().if_contains("operations");
  if (!list || !list->is_array()) co_return detail::Fail(req, BadOp("'operations' must be an array."));
  const json::array& items = list->as_array();
  if (items.empty()) co_return detail::Fail(req, BadOp("'operations' must not be empty."));
  if (items.size() > kMaxBatchOperations)
    co_return detail::Fail(req, Err(core::ErrorCode::kPayloadTooLarge, "A batch has at most 100 operations."));

  // Shape, path and collection of every operation first: nothing runs when one is malformed.
  std::vector<BatchOp> ops;
  ops.reserve(items.size());
  std::map<std::string, Context, std::less<>> contexts;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto op = ParseOp(items[i]);
    if (!op) co_return OperationProblem(req, op.error(), i);
    if (!contexts.contains(op->collection)) {
      auto ctx = co_await ResolveName(s, req.shard(), op->collection);
      if (!ctx) co_return OperationProblem(req, ctx.error(), i);
      contexts.emplace(op->collection, std::move(*ctx));
    }
    ops.push_back(std::move(*op));
  }
  // Rules and bodies: an operation that fails here still fails in its place in the order, so the
  // reported operation is always the first one that fails.
  const Caller caller = detail::Identify(req);
  const store::Dialect& dialect = s.database.dialect();
  std::vector<core::Result<PreparedWrite>> prepared;
  prepared.reserve(ops.size());
  for (auto& op : ops) {
    core::Result<json::value> body = op.body ? std::move(*op.body) : json::value(nullptr);
    prepared.push_back(PrepareWrite(dialect, contexts.at(op.collection), caller, op.write, std::move(op.id),
                                    std::move(body), std::move(op.if_match)));
  }
  // A failure before any write needs no transaction.
  if (!prepared.front()) co_return OperationProblem(req, prepared.front().error(), 0);
  std::vector<json::object> results;
  std::size_t failed = 0;
  auto done = co_await s.database.Transact(
      req.shard(), [&](store::Transaction& tx) { return BatchBody(tx, dialect, prepared, results, failed); });
  if (!done) {
    if (failed >= prepared.size()) co_return detail::Fail(req, done.error());
    co_return OperationProblem(req, done.error(), failed);
  }
  json::array out;
  out.reserve(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    json::object item;
    item["status"] = WriteStatus(prepared[i]->write);
    if (prepared[i]->write != Write::kDelete) item["body"] = std::move(results[i]);
    out.emplace_back(std::move(item));
  }
  json::object body;
  body["results"] = std::move(out);
  http::Response res = http::Response::Json(200, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  co_return res;
}

}  // namespace

namespace detail {

core::Result<Visibility> CompileVisibility(const store::Dialect& dialect, const schema::Snapshot& snap,
                                           const schema::CollectionSpec& spec, Caller caller, std::string_view filter,
                                           const core::KeyRing* keys) {
  Sql sql{dialect, {}, {}};
  auto rule = RulePredicate(sql, spec.rules.view, caller, snap, spec, keys);
  if (!rule) return std::unexpected(std::move(rule.error()));
  Visibility v;
  v.conditions = *rule;
  if (!filter.empty()) {
    auto compiled = CompileInto(sql, filter, snap, spec, keys, caller);
    if (!compiled) {
      core::Error e = std::move(compiled.error());
      if (e.fields.empty()) e.fields.push_back({"filter", "invalid", e.message});
      return std::unexpected(std::move(e));
    }
    v.conditions += " AND " + *compiled;
  }
  v.everything = v.conditions == "1 = 1";
  v.params = std::move(sql.params);
  return v;
}

store::Statement VisibilityQuery(const store::Dialect& dialect, const schema::CollectionSpec& spec,
                                 const Visibility& visibility, const boost::json::object& record) {
  const schema::DdlDialect ddl = schema::DdlDialect::FromName(dialect.Name());
  Sql sql{dialect, {}, visibility.params};
  auto column = [&](std::string_view name, std::string_view type, store::Value value) {
    return "CAST(" + sql.Bind(std::move(value)) + " AS " + std::string(type) + ") AS " + Quote(name);
  };
  auto value_of = [&](std::string_view name) -> store::Value {
    const json::value* v = record.if_contains(name);
    if (!v || v->is_null()) return store::Null{};
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_bool()) return v->as_bool();
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_double()) return v->as_double();
    return json::serialize(*v);  // json fields and multi-selects are stored as JSON text
  };
  std::string columns = column("id", "TEXT", value_of("id")) + ", " + column("created_at", "TEXT", value_of("created_at")) +
                        ", " + column("updated_at", "TEXT", value_of("updated_at")) + ", " +
                        column("version", "BIGINT", value_of("version"));
  for (const auto& f : spec.fields) columns += ", " + column(f.name, ddl.ColumnType(f.kind), value_of(f.name));
  sql.text = "SELECT 1 FROM (SELECT " + columns + ") AS \"t\" WHERE " + visibility.conditions;
  return sql.Take();
}

}  // namespace detail

core::Result<void> RegisterRecords(http::Router& router, const DataServices& services) {
  const DataServices* s = &services;
  const std::string list = "/api/v1/collections/{name}/records";
  const std::string one = list + "/{id}";
  if (auto r = router.Add(http::Method::kGet, list, [s](http::Request& req) { return ListRecords(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPost, list, [s](http::Request& req) { return WriteRecord(*s, req, Write::kCreate); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) { return ViewRecord(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPut, one,
                          [s](http::Request& req) { return WriteRecord(*s, req, Write::kReplace); });
      !r)
    return r;
  if (auto r = router.Add(http::Method::kPatch, one,
                          [s](http::Request& req) { return WriteRecord(*s, req, Write::kMerge); });
      !r)
    return r;
  if (auto r = router.Add(http::Method::kDelete, one,
                          [s](http::Request& req) { return WriteRecord(*s, req, Write::kDelete); });
      !r)
    return r;
  return router.Add(http::Method::kPost, "/api/v1/batch", [s](http::Request& req) { return Batch(*s, req); });
}

}  // namespace basalt::api
