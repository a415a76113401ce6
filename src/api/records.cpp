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
#include <optional>

#include <boost/json.hpp>

#include "api/data_routes.hpp"
#include "api/data_support.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"
#include "schema/catalog.hpp"
#include "schema/ddl.hpp"
#include "schema/record.hpp"
#include "schema/resolver.hpp"
#include "store/database.hpp"

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
                                      const schema::CollectionSpec& spec) {
  auto expr = query::Parse(text);
  if (!expr) return std::unexpected(std::move(expr.error()));
  const schema::DdlDialect ddl = schema::DdlDialect::FromName(sql.dialect.Name());
  schema::CollectionResolver resolver(snap, spec, ddl);
  schema::AnonymousVariables variables;
  query::SqlSyntax syntax = SyntaxFor(sql.dialect);
  syntax.first_param_index = static_cast<int>(sql.params.size()) + 1;
  auto compiled = query::Compile(*expr, resolver, variables, syntax);
  if (!compiled) return std::unexpected(std::move(compiled.error()));
  for (auto& p : compiled->params) sql.params.push_back(ToStore(p));
  return "(" + compiled->sql + ")";
}

/// The access predicate for an action, or an error (401/403) when the caller may not act at all.
core::Result<std::string> RulePredicate(Sql& sql, const std::optional<std::string>& rule, Caller caller,
                                        const schema::Snapshot& snap, const schema::CollectionSpec& spec) {
  if (caller == Caller::kAdmin) return std::string("1 = 1");
  if (caller == Caller::kInvalid) return core::Fail(core::ErrorCode::kUnauthorized, "The bearer token is not valid.");
  if (!rule) return core::Fail(core::ErrorCode::kUnauthorized, "Only admins may do this.");
  if (rule->empty()) return std::string("1 = 1");
  auto compiled = CompileInto(sql, *rule, snap, spec);
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
};

/// The collection of the request; an unknown name first refreshes the catalog (rate-limited), in
/// case another process created it.
http::Task<core::Result<Context>> Resolve(const DataServices& s, const http::Request& req) {
  Context ctx;
  ctx.snap = s.catalog.snapshot();
  ctx.collection = ctx.snap->Find(req.Param("name"));
  if (!ctx.collection && schema::IsValidName(req.Param("name"), 61)) {
    auto refreshed = co_await s.catalog.Refresh(req.shard());
    if (refreshed && *refreshed) {
      ctx.snap = s.catalog.snapshot();
      ctx.collection = ctx.snap->Find(req.Param("name"));
    }
  }
  if (!ctx.collection) co_return core::Fail(core::ErrorCode::kNotFound, "No such collection.");
  ctx.table = Quote(schema::TableName(ctx.collection->spec.name));
  co_return ctx;
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
        if (spec.fields[i].kind == schema::FieldKind::kJson ||
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

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(std::string_view in) {
  std::string out;
  std::uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(buf << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> FromBase64Url(std::string_view in) {
  std::string out;
  std::uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kB64, c);
    if (!p || c == '\0') return std::nullopt;
    buf = (buf << 6) | static_cast<std::uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
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
  return Base64Url(json::serialize(json::object{{"s", SortText(keys)}, {"k", std::move(k)}}));
}

core::Result<std::vector<store::Value>> DecodeCursor(std::string_view cursor, const std::vector<SortKey>& keys) {
  auto bad = [] { return std::unexpected(BadParam("cursor", "the cursor is invalid or belongs to another sort")); };
  if (cursor.size() > 8192) return bad();
  auto raw = FromBase64Url(cursor);
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

struct ListParams {
  std::string filter, sort, fields, cursor;
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
      if (!value->empty()) return std::unexpected(BadParam("expand", "expand is not supported yet"));
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
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  auto params = ParseListParams(req.query());
  if (!params) co_return detail::Fail(req, params.error());
  auto keys = ParseSort(params->sort, spec);
  if (!keys) co_return detail::Fail(req, keys.error());
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
        if (spec.fields[i].name == name) col = 4 + i;
      }
      if (!col) co_return detail::Fail(req, BadParam("fields", "unknown field '" + name.substr(0, 64) + "'"));
      projected[*col] = true;
    }
  }
  const Caller caller = detail::Identify(req, s.admin_token);
  Sql where{s.database.dialect(), {}, {}};
  auto rule = RulePredicate(where, spec.rules.list, caller, *ctx->snap, spec);
  if (!rule) co_return detail::Fail(req, rule.error());
  std::string conditions = *rule;
  if (!params->filter.empty()) {
    auto filter = CompileInto(where, params->filter, *ctx->snap, spec);
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
  json::array items;
  items.reserve(rows->rows.size());
  for (const auto& row : rows->rows) {
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

enum class Write { kReplace, kMerge, kDelete };

// ---- single records ----------------------------------------------------------------------------

http::Task<http::Response> ViewRecord(const DataServices& s, http::Request& req) {
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  Sql sql{s.database.dialect(), {}, {}};
  auto rule = RulePredicate(sql, spec.rules.view, detail::Identify(req, s.admin_token), *ctx->snap, spec);
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
  co_return RecordResponse(200, record);
}

store::Task<core::Result<void>> CreateBody(store::Transaction& tx, const store::Dialect& dialect, const schema::CollectionSpec& spec, const schema::Columns& columns, store::Statement& insert_st, store::Statement& check_st, bool check_rule) {
    if (auto ok = co_await CheckRelations(tx, dialect, spec, columns); !ok) co_return ok;
    auto inserted = co_await tx.Execute(std::move(insert_st));
    if (!inserted) co_return std::unexpected(std::move(inserted.error()));
    if (check_rule) {
      auto visible = co_await tx.Execute(std::move(check_st));
      if (!visible) co_return std::unexpected(std::move(visible.error()));
      if (visible->rows.empty()) co_return core::Fail(core::ErrorCode::kForbidden, "The create rule does not allow this record.");
    }
    co_return core::Result<void>{};
  }

http::Task<http::Response> CreateRecord(const DataServices& s, http::Request& req) {
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  const Caller caller = detail::Identify(req, s.admin_token);
  Sql check{s.database.dialect(), {}, {}};
  const std::string id_placeholder = check.Bind(store::Null{});  // the id, set below
  auto rule = RulePredicate(check, spec.rules.create, caller, *ctx->snap, spec);
  if (!rule) co_return detail::Fail(req, rule.error());
  auto body = detail::ParseBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  auto columns = schema::ValidateRecord(spec, *body, schema::WriteMode::kCreate);
  if (!columns) co_return detail::Fail(req, columns.error());

  const std::string id = core::FormatUuid(core::NewUuidV7());
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  check.params[0] = id;
  const bool check_rule = *rule != "1 = 1";
  check.text = "SELECT 1 FROM " + ctx->table + " AS \"t\" WHERE \"t\".\"id\" = " + id_placeholder + " AND " + *rule;
  Sql insert{s.database.dialect(), {}, {}};
  std::string names = "\"id\", \"created_at\", \"updated_at\", \"version\"";
  std::string values = insert.Bind(id) + ", " + insert.Bind(now) + ", " + insert.Bind(now) + ", " +
                       insert.Bind(std::int64_t{1});
  for (const auto& [name, value] : *columns) {
    names += ", " + Quote(name);
    values += ", " + insert.Bind(value);
  }
  insert.text = "INSERT INTO " + ctx->table + " (" + names + ") VALUES (" + values + ")";
  store::Statement insert_st = insert.Take();
  store::Statement check_st = check.Take();
  const store::Dialect& dialect = s.database.dialect();
  auto done = co_await s.database.Transact(req.shard(), [&](store::Transaction& tx) { return CreateBody(tx, dialect, spec, *columns, insert_st, check_st, check_rule); });
  if (!done) co_return detail::Fail(req, done.error());
  http::Response res = RecordResponse(201, schema::RowToJson(spec, RowOf(id, now, now, 1, *columns)));
  res.Set("Location", RecordPath(spec.name, id));
  co_return res;
}

store::Task<core::Result<void>> ChangeBody(store::Transaction& tx, const store::Dialect& dialect, const schema::CollectionSpec& spec, const std::string& table, Write write, store::Statement& select_st, const std::string& id, bool has_if_match, const std::string& if_match, const std::optional<json::value>& body, const std::string& now, json::object& result) {
    auto rows = co_await tx.Execute(std::move(select_st));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    if (rows->rows.empty()) co_return core::Fail(core::ErrorCode::kNotFound, "No such record.");
    const json::object current = schema::RowToJson(spec, rows->rows[0]);
    const std::int64_t version = current.at("version").as_int64();
    if (has_if_match && !detail::EtagMatches(if_match, Etag(version), false))
      co_return core::Fail(core::ErrorCode::kPreconditionFailed, "The record has changed (If-Match does not match).");
    if (write == Write::kDelete) {
      store::Statement del{"DELETE FROM " + table + " WHERE \"id\" = " + dialect.Placeholder(1), {id}};
      auto deleted = co_await tx.Execute(std::move(del));
      if (!deleted) {
        if (deleted.error().code == core::ErrorCode::kValidation)
          co_return core::Fail(core::ErrorCode::kConflict, "The record is still referenced by other records.");
        co_return std::unexpected(std::move(deleted.error()));
      }
      co_return core::Result<void>{};
    }
    auto columns = schema::ValidateRecord(spec, *body,
                                          write == Write::kMerge ? schema::WriteMode::kMerge : schema::WriteMode::kReplace,
                                          &current);
    if (!columns) co_return std::unexpected(std::move(columns.error()));
    if (auto ok = co_await CheckRelations(tx, dialect, spec, *columns); !ok) co_return ok;
    Sql update{dialect, {}, {}};
    std::string sets = "\"updated_at\" = " + update.Bind(now) + ", \"version\" = " + update.Bind(version + 1);
    for (const auto& [name, value] : *columns) sets += ", " + Quote(name) + " = " + update.Bind(value);
    update.text = "UPDATE " + table + " SET " + sets + " WHERE \"id\" = " + update.Bind(id) +
                  " AND \"version\" = " + update.Bind(version);
    auto updated = co_await tx.Execute(update.Take());
    if (!updated) co_return std::unexpected(std::move(updated.error()));
    const std::string created = current.at("created_at").is_string() ? std::string(current.at("created_at").as_string()) : "";
    result = schema::RowToJson(spec, RowOf(id, created, now, version + 1, *columns));
    co_return core::Result<void>{};
  }

http::Task<http::Response> ChangeRecord(const DataServices& s, http::Request& req, Write write) {
  auto ctx = co_await Resolve(s, req);
  if (!ctx) co_return detail::Fail(req, ctx.error());
  const schema::CollectionSpec& spec = ctx->collection->spec;
  const Caller caller = detail::Identify(req, s.admin_token);
  Sql select{s.database.dialect(), {}, {}};
  auto rule = RulePredicate(select, write == Write::kDelete ? spec.rules.del : spec.rules.update, caller, *ctx->snap, spec);
  if (!rule) co_return detail::Fail(req, rule.error());
  std::optional<json::value> body;
  if (write != Write::kDelete) {
    auto parsed = detail::ParseBody(req, write == Write::kMerge);
    if (!parsed) co_return detail::Fail(req, parsed.error());
    body = std::move(*parsed);
    if (write == Write::kReplace) {
      // Validate before the transaction: a replace does not depend on the current record.
      if (auto v = schema::ValidateRecord(spec, *body, schema::WriteMode::kReplace); !v)
        co_return detail::Fail(req, v.error());
    } else if (!body->is_object()) {
      co_return detail::Fail(req, Err(core::ErrorCode::kValidation, "The merge patch must be a JSON object."));
    }
  }
  const std::string id(req.Param("id"));
  const std::string if_match(req.Header("If-Match").value_or(""));
  const bool has_if_match = req.Header("If-Match").has_value();
  select.text = "SELECT " + schema::SelectList(spec, "t") + " FROM " + ctx->table + " AS \"t\" WHERE \"t\".\"id\" = " +
                select.Bind(id) + " AND " + *rule;
  store::Statement select_st = select.Take();
  const store::Dialect& dialect = s.database.dialect();
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  json::object result;
  auto done = co_await s.database.Transact(req.shard(), [&](store::Transaction& tx) { return ChangeBody(tx, dialect, spec, ctx->table, write, select_st, id, has_if_match, if_match, body, now, result); });
  if (!done) co_return detail::Fail(req, done.error());
  if (write == Write::kDelete) co_return http::Response::Empty(204);
  co_return RecordResponse(200, result);
}

}  // namespace

core::Result<void> RegisterRecords(http::Router& router, const DataServices& services) {
  const DataServices* s = &services;
  const std::string list = "/api/v1/collections/{name}/records";
  const std::string one = list + "/{id}";
  if (auto r = router.Add(http::Method::kGet, list, [s](http::Request& req) { return ListRecords(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPost, list, [s](http::Request& req) { return CreateRecord(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kGet, one, [s](http::Request& req) { return ViewRecord(*s, req); }); !r) return r;
  if (auto r = router.Add(http::Method::kPut, one,
                          [s](http::Request& req) { return ChangeRecord(*s, req, Write::kReplace); });
      !r)
    return r;
  if (auto r = router.Add(http::Method::kPatch, one,
                          [s](http::Request& req) { return ChangeRecord(*s, req, Write::kMerge); });
      !r)
    return r;
  return router.Add(http::Method::kDelete, one, [s](http::Request& req) { return ChangeRecord(*s, req, Write::kDelete); });
}

}  // namespace basalt::api
