#pragma once
/// Interfaces the upper layer (schema/) implements so the compiler can turn names into SQL and
/// variables into values. `query/` itself knows nothing about collections.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "query/ast.hpp"

namespace basalt::query {

/// The value type of a resolved field; drives type checks in the compiler.
enum class FieldType {
  kText,      ///< Text; compares with strings, supports `~`.
  kInteger,   ///< 64-bit integer; compares with numbers.
  kNumber,    ///< Decimal number; compares with numbers.
  kBool,      ///< Bool; compares with true/false by `=` and `!=` only.
  kDatetime,  ///< Timestamp; compares with RFC 3339 strings (e.g. `@now`).
  kJson,      ///< JSON document; no type checks.
  kRelation,  ///< Id of a related record (text); compares with strings, supports `~`.
};

/// What a field path means in SQL.
struct ResolvedField {
  /// SQL expression for the value, already quoted, e.g. `"t"."views"` or a correlated scalar
  /// subquery. When `multi_valued`, a SELECT returning one column, one row per value.
  std::string sql;
  FieldType type = FieldType::kText;  ///< The value type.
  bool multi_valued = false;          ///< Many values per record: only `=` / `!=` (any / none).
  std::vector<std::string> joins;     ///< JOIN clauses `sql` needs; deduplicated by the compiler.
  /// Set for a secret (encrypted) field: `sql` is then its blind index column, and a string the
  /// field is compared with is replaced by the blind indexes it may be stored under (any of them
  /// matches; none when no key is configured). Only `=` and `!=` against a string literal, a
  /// variable or null apply to such a field.
  std::function<std::vector<std::string>(std::string_view)> equality_keys;
};

/// Resolves field paths; implemented by the schema layer.
class FieldResolver {
 public:
  virtual ~FieldResolver() = default;
  /// Resolves `path` (e.g. {"author","name"}). Unknown or forbidden paths return an error whose
  /// message names the problem (e.g. "unknown field 'foo'"); the compiler adds the position.
  virtual core::Result<ResolvedField> Resolve(const std::vector<std::string>& path) const = 0;
};

/// Resolves variables to values bound as parameters; implemented by the request layer.
class VariableResolver {
 public:
  virtual ~VariableResolver() = default;
  /// Resolves `path` without the `@`: {"request","auth",...}, {"request","body",...} or {"now"}.
  /// Absent values are null (std::monostate), not errors.
  virtual core::Result<Value> Variable(const std::vector<std::string>& path) const = 0;
};

}  // namespace basalt::query
