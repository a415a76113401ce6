#include "schema/ddl.hpp"

#include "core/ids.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <boost/json.hpp>

#include "core/ids.hpp"

namespace basalt::schema {
namespace json = boost::json;

namespace {

std::string UniqueFieldIndexName(const CollectionSpec& spec, const FieldSpec& f) {
  return IndexName(spec.name, {f.name}, true);
}

// The secret field's blind index: a plain (non-unique) index so equality filters stay fast.
std::string BlindIndexName(const CollectionSpec& spec, const FieldSpec& f) {
  return IndexName(spec.name, {BlindIndexColumn(f.name)}, false);
}

std::string ColumnDef(const FieldSpec& f, const DdlDialect& d) {
  std::string sql = Quote(f.name) + " " + std::string(d.ColumnType(f.kind));
  if (f.kind == FieldKind::kRelation) {
    sql += " REFERENCES " + Quote(TableName(f.collection)) + " (\"id\") ON DELETE ";
    sql += f.on_delete == OnDelete::kCascade ? "CASCADE" : f.on_delete == OnDelete::kSetNull ? "SET NULL" : "RESTRICT";
  }
  return sql;
}

// Non-unique indexes end with "id": lists sort by the index's fields with `id` as the final
// tie-breaker (same direction), so such an index serves the whole ORDER BY and a LIMIT stops early.
std::string CreateIndex(const std::string& table, const std::string& name, const std::vector<std::string>& fields,
                        bool unique) {
  std::string sql = std::string(unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ") + Quote(name) + " ON " +
                    Quote(table) + " (";
  for (std::size_t i = 0; i < fields.size(); ++i) sql += (i ? ", " : "") + Quote(fields[i]);
  if (!unique && std::find(fields.begin(), fields.end(), "id") == fields.end()) sql += ", \"id\"";
  return sql + ")";
}

std::string DropIndex(const std::string& name) { return "DROP INDEX " + Quote(name); }

std::string Join(const std::vector<std::string>& statements) {
  std::string out;
  for (const auto& s : statements) out += s + ";\n";
  return out;
}

}  // namespace

DdlDialect DdlDialect::FromName(std::string_view name) {
  return DdlDialect(name == "postgres" || name == "postgresql" ? Kind::kPostgres : Kind::kSqlite);
}

std::string_view DdlDialect::ColumnType(FieldKind kind) const {
  const bool pg = kind_ == Kind::kPostgres;
  switch (kind) {
    case FieldKind::kInteger: return pg ? "BIGINT" : "INTEGER";
    case FieldKind::kNumber: return pg ? "DOUBLE PRECISION" : "REAL";
    case FieldKind::kBool: return pg ? "BOOLEAN" : "INTEGER";
    default: return "TEXT";
  }
}

std::string DdlDialect::Literal(const FieldSpec& field, const json::value& v) const {
  if (v.is_bool()) return kind_ == Kind::kPostgres ? (v.as_bool() ? "TRUE" : "FALSE") : (v.as_bool() ? "1" : "0");
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) return json::serialize(v);
  std::string text;
  if (v.is_string()) {
    text = std::string(v.as_string());
    if (field.kind == FieldKind::kDatetime) text = NormalizeDatetime(text).value_or(text);
  } else {
    text = json::serialize(v);  // json and multi-select
  }
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string DdlDialect::JsonArrayElements(std::string_view column_sql) const {
  if (kind_ == Kind::kPostgres) return "SELECT jsonb_array_elements_text(" + std::string(column_sql) + "::jsonb)";
  return "SELECT \"value\" FROM json_each(" + std::string(column_sql) + ")";
}

std::string Quote(std::string_view identifier) {
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

DdlChange CreateCollectionDdl(const CollectionSpec& spec, const DdlDialect& d) {
  const std::string table = TableName(spec.name);
  std::string create = "CREATE TABLE " + Quote(table) +
                       " (\"id\" TEXT PRIMARY KEY NOT NULL, \"created_at\" TEXT NOT NULL, \"updated_at\" TEXT NOT "
                       "NULL, \"version\" BIGINT NOT NULL";
  for (const auto& f : spec.fields) create += ", " + ColumnDef(f, d);
  for (const auto& f : spec.fields) {
    if (f.kind == FieldKind::kSecret) create += ", " + Quote(BlindIndexColumn(f.name)) + " TEXT";
  }
  create += ")";
  std::vector<std::string> up{create};
  for (const auto& f : spec.fields) {
    if (f.unique) up.push_back(CreateIndex(table, UniqueFieldIndexName(spec, f), {f.name}, true));
    if (f.kind == FieldKind::kSecret)
      up.push_back(CreateIndex(table, BlindIndexName(spec, f), {BlindIndexColumn(f.name)}, false));
  }
  for (const auto& index : spec.indexes) up.push_back(CreateIndex(table, index.name, index.fields, index.unique));
  return DdlChange{Join(up), Join({"DROP TABLE " + Quote(table)})};
}

DdlChange DropCollectionDdl(const CollectionSpec& spec, const DdlDialect& d) {
  DdlChange create = CreateCollectionDdl(spec, d);
  return DdlChange{create.down, create.up};
}

core::Result<DdlChange> ChangeCollectionDdl(const CollectionSpec& from, const CollectionSpec& to,
                                            const DdlDialect& d) {
  if (from.name != to.name) return core::Fail(core::ErrorCode::kConflict, "A collection cannot be renamed.");
  const std::string table = TableName(to.name);
  auto conflict = [](std::string message) { return core::Fail(core::ErrorCode::kConflict, std::move(message)); };
  auto alter = [&](const std::string& rest) { return "ALTER TABLE " + Quote(table) + " " + rest; };

  // Steps run in phases so each statement finds what it needs: index drops (SQLite refuses to
  // drop an indexed column), column drops (frees names for renames), renames and type changes,
  // column adds, index creations. `down` undoes the phases in reverse order.
  struct Step {
    std::string up, down;
  };
  std::vector<Step> drop_idx, drop_col, change_col, add_col, create_idx;

  std::map<std::string, const FieldSpec*> old_by_name;
  for (const auto& f : from.fields) old_by_name[f.name] = &f;
  std::set<std::string> kept;  // old names still present (possibly renamed)
  for (const auto& f : to.fields) {
    if (!kept.insert(f.previous_name.empty() ? f.name : f.previous_name).second)
      return conflict("Field '" + (f.previous_name.empty() ? f.name : f.previous_name) + "' is used twice.");
  }

  for (const auto& f : to.fields) {
    const std::string old_name = f.previous_name.empty() ? f.name : f.previous_name;
    auto it = old_by_name.find(old_name);
    if (it == old_by_name.end()) {
      if (!f.previous_name.empty())
        return conflict("Field '" + f.name + "' renames '" + f.previous_name + "', which does not exist.");
      if (old_by_name.count(f.name))
        return conflict("Field '" + f.name + "' is still in use; rename in two steps.");
      if (f.required && !f.default_value)
        return conflict("New field '" + f.name + "' is required: give it a default so existing records stay valid.");
      std::string up = alter("ADD COLUMN " + ColumnDef(f, d));
      if (f.default_value)
        up += ";\nUPDATE " + Quote(table) + " SET " + Quote(f.name) + " = " + d.Literal(f, *f.default_value);
      add_col.push_back({up, alter("DROP COLUMN " + Quote(f.name))});
      if (f.kind == FieldKind::kSecret) {
        const std::string bi = BlindIndexColumn(f.name), ix = BlindIndexName(to, f);
        add_col.push_back({alter("ADD COLUMN " + Quote(bi) + " TEXT"), alter("DROP COLUMN " + Quote(bi))});
        create_idx.push_back({CreateIndex(table, ix, {bi}, false), DropIndex(ix)});
      }
      if (f.unique) {
        const std::string ux = UniqueFieldIndexName(to, f);
        create_idx.push_back({CreateIndex(table, ux, {f.name}, true), DropIndex(ux)});
      }
      continue;
    }
    const FieldSpec& old = *it->second;
    if (old.kind != f.kind) {
      const bool widen_number = old.kind == FieldKind::kInteger && f.kind == FieldKind::kNumber;
      const bool widen_text = f.kind == FieldKind::kText &&
                              (old.kind == FieldKind::kEmail || old.kind == FieldKind::kUrl ||
                               (old.kind == FieldKind::kSelect && !old.multi));
      if (!widen_number && !widen_text)
        return conflict("Changing field '" + old.name + "' from " + std::string(KindName(old.kind)) + " to " +
                        std::string(KindName(f.kind)) +
                        " could lose or invalidate data; only integer -> number and email/url/select -> text are "
                        "allowed. Add a new field and copy the data instead.");
      // SQLite: an INTEGER-affinity column stores reals as they are; no DDL needed.
      if (widen_number && d.kind() == DdlDialect::Kind::kPostgres)
        change_col.push_back({alter("ALTER COLUMN " + Quote(old.name) + " TYPE DOUBLE PRECISION"),
                              alter("ALTER COLUMN " + Quote(old.name) + " TYPE BIGINT")});
    }
    if (f.kind == FieldKind::kSelect && old.kind == FieldKind::kSelect && f.multi != old.multi)
      return conflict("Field '" + old.name + "' cannot switch between single and multi select.");
    if (f.kind == FieldKind::kRelation && (f.collection != old.collection || f.on_delete != old.on_delete))
      return conflict("The target and on_delete of relation field '" + old.name + "' cannot be changed.");
    if (f.name != old.name && old.kind == FieldKind::kSecret)
      return conflict("Secret field '" + old.name +
                      "' cannot be renamed: its values are encrypted and indexed under its name. Add a new "
                      "field and write the values again instead.");
    if (f.name != old.name) {
      if (old_by_name.count(f.name) && kept.count(f.name))
        return conflict("Field '" + old.name + "' cannot be renamed to '" + f.name +
                        "', which is still in use; rename in two steps.");
      change_col.push_back({alter("RENAME COLUMN " + Quote(old.name) + " TO " + Quote(f.name)),
                            alter("RENAME COLUMN " + Quote(f.name) + " TO " + Quote(old.name))});
    }
    const std::string old_ux = UniqueFieldIndexName(from, old), new_ux = UniqueFieldIndexName(to, f);
    if (old.unique && (!f.unique || old_ux != new_ux))
      drop_idx.push_back({DropIndex(old_ux), CreateIndex(table, old_ux, {old.name}, true)});
    if (f.unique && (!old.unique || old_ux != new_ux))
      create_idx.push_back({CreateIndex(table, new_ux, {f.name}, true), DropIndex(new_ux)});
  }
  for (const auto& old : from.fields) {
    if (kept.count(old.name)) continue;
    if (old.unique) {
      const std::string ux = UniqueFieldIndexName(from, old);
      drop_idx.push_back({DropIndex(ux), CreateIndex(table, ux, {old.name}, true)});
    }
    if (old.kind == FieldKind::kRelation && d.kind() == DdlDialect::Kind::kSqlite) {
      // SQLite cannot DROP a column that carries a foreign key, and the 12-step table rebuild
      // needs foreign_keys=OFF outside any transaction (and DROP TABLE would fire ON DELETE
      // actions in the tables that point here). Instead the column is emptied and renamed out of
      // the field namespace (field names start with a letter): the field is gone for every API
      // and its name is free again; the physical column stays, all NULL.
      const std::string hidden = "_dropped_" + old.name + "_" + core::FormatUuid(core::NewUuidV7()).substr(24);
      drop_col.push_back({"UPDATE " + Quote(table) + " SET " + Quote(old.name) + " = NULL;\n" +
                              alter("RENAME COLUMN " + Quote(old.name) + " TO " + Quote(hidden)),
                          alter("RENAME COLUMN " + Quote(hidden) + " TO " + Quote(old.name))});
      continue;
    }
    // Down restores the column empty: dropped data is gone.
    drop_col.push_back({alter("DROP COLUMN " + Quote(old.name)), alter("ADD COLUMN " + ColumnDef(old, d))});
    if (old.kind == FieldKind::kSecret) {
      const std::string bi = BlindIndexColumn(old.name), ix = BlindIndexName(from, old);
      drop_idx.push_back({DropIndex(ix), CreateIndex(table, ix, {bi}, false)});
      drop_col.push_back({alter("DROP COLUMN " + Quote(bi)), alter("ADD COLUMN " + Quote(bi) + " TEXT")});
    }
  }
  // Declared indexes, by name (kept across field renames: RENAME COLUMN carries into indexes).
  std::set<std::string> old_idx, new_idx;
  for (const auto& i : from.indexes) old_idx.insert(i.name);
  for (const auto& i : to.indexes) new_idx.insert(i.name);
  for (const auto& i : from.indexes) {
    if (!new_idx.count(i.name)) drop_idx.push_back({DropIndex(i.name), CreateIndex(table, i.name, i.fields, i.unique)});
  }
  for (const auto& i : to.indexes) {
    if (!old_idx.count(i.name)) create_idx.push_back({CreateIndex(table, i.name, i.fields, i.unique), DropIndex(i.name)});
  }
  DdlChange out;
  for (const auto* phase : {&drop_idx, &drop_col, &change_col, &add_col, &create_idx}) {
    for (const auto& step : *phase) out.up += step.up + ";\n";
  }
  for (const auto* phase : {&create_idx, &add_col, &change_col, &drop_col, &drop_idx}) {
    for (auto it = phase->rbegin(); it != phase->rend(); ++it) out.down += it->down + ";\n";
  }
  return out;
}

}  // namespace basalt::schema
