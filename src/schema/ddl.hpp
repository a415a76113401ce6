#pragma once
/// DDL for collections, per backend. With store/, the only place allowed to differ by backend:
/// everything that does is in DdlDialect.
///
/// Column types: text, email, url, select, relation, datetime and json are TEXT on both backends
/// (datetime as normalised RFC 3339 UTC with milliseconds, which sorts lexically; json as JSON
/// text); integer is INTEGER (SQLite) / BIGINT (PostgreSQL); number REAL / DOUBLE PRECISION; bool
/// INTEGER 0/1 / BOOLEAN. System columns: id TEXT PRIMARY KEY, created_at and updated_at TEXT,
/// version BIGINT. A secret field is two TEXT columns: the sealed value under the field's name and
/// its blind index (BlindIndexColumn), with a plain index on the latter.

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "schema/collection.hpp"

namespace basalt::schema {

/// The SQL text differences between backends that schema/ needs.
class DdlDialect {
 public:
  /// Which backend.
  enum class Kind {
    kSqlite,    ///< SQLite 3.35+ (ADD/DROP/RENAME COLUMN, RETURNING, NULLS FIRST).
    kPostgres,  ///< PostgreSQL 15.
  };
  explicit DdlDialect(Kind kind) : kind_(kind) {}
  /// From store::Dialect::Name(): "postgres" gives kPostgres, anything else kSqlite.
  static DdlDialect FromName(std::string_view name);

  Kind kind() const { return kind_; }
  /// The column type of a field kind.
  std::string_view ColumnType(FieldKind kind) const;
  /// A SQL literal for a default value (validated for its field); strings with quotes doubled.
  std::string Literal(const FieldSpec& field, const boost::json::value& value) const;
  /// Where NULL sorts: true on PostgreSQL (larger than every value: ASC NULLS LAST, DESC NULLS
  /// FIRST), false on SQLite (smaller than every value). Each backend's own default, so plain
  /// ASC / DESC keeps using indexes; keyset cursors follow the same rule.
  bool NullsSortLast() const { return kind_ == Kind::kPostgres; }
  /// A SELECT listing the elements of a JSON text array column `column_sql` as rows (multi-select).
  std::string JsonArrayElements(std::string_view column_sql) const;

 private:
  Kind kind_;
};

/// Double-quoted identifier with embedded quotes doubled (same on both backends).
std::string Quote(std::string_view identifier);

/// An up/down pair of SQL scripts (statements separated by ";\n").
struct DdlChange {
  std::string up;
  std::string down;
};

/// CREATE TABLE plus indexes for a new collection; `down` drops the table.
DdlChange CreateCollectionDdl(const CollectionSpec& spec, const DdlDialect& dialect);

/// DROP TABLE; `down` recreates it empty.
DdlChange DropCollectionDdl(const CollectionSpec& spec, const DdlDialect& dialect);

/// The DDL turning `from` into `to` (same collection name). Fields are matched by name, or by
/// `previous_name` for a rename. Supported: add field (nullable, or filled with its default),
/// drop field (not a relation), rename field, option changes (no DDL except unique), add/drop
/// index, rules. Type changes: integer → number, and email/url/select(single) → text.
/// Errors: kConflict with a reason for anything else (other type changes, changing a relation's
/// target or on_delete, making a field multi, dropping a relation field, renaming a collection).
core::Result<DdlChange> ChangeCollectionDdl(const CollectionSpec& from, const CollectionSpec& to,
                                            const DdlDialect& dialect);

}  // namespace basalt::schema
