#pragma once
/// Compiles an Expr into a parameterized SQL predicate for one SQL dialect.

#include <string>
#include <vector>

#include "core/error.hpp"
#include "query/ast.hpp"
#include "query/resolver.hpp"

namespace basalt::query {

/// A bound parameter: null, int64, double, string or bool (same alternatives as Value).
using Param = Value;

/// Plain data describing the dialect differences the compiler needs. Use Sqlite() or Postgres()
/// and adjust `first_param_index` when the filter follows the caller's own parameters.
struct SqlSyntax {
  std::string placeholder_prefix;     ///< "?" (SQLite `?N`) or "$" (PostgreSQL `$N`).
  int first_param_index = 1;          ///< Number of the first placeholder the filter emits.
  std::string contains_op;            ///< Case-insensitive LIKE: "LIKE" or "ILIKE".
  std::string not_contains_op;        ///< Its negation: "NOT LIKE" or "NOT ILIKE".
  std::string like_escape;            ///< Appended after the pattern, e.g. " ESCAPE '\'".
  bool bind_bool_as_integer = false;  ///< Bind bools as int64 1/0 instead of bool.
  std::string true_sql;               ///< Predicate for the empty expression, e.g. "TRUE".
  /// Casts appended to a placeholder whose type the database cannot infer (no column on either
  /// side of the comparison), by bound type; empty when the dialect needs none.
  std::string cast_integer;
  std::string cast_number;  ///< See cast_integer.
  std::string cast_text;    ///< See cast_integer; also used for null.
  std::string cast_bool;    ///< See cast_integer.

  /// SQLite: `?N`, LIKE (ASCII case-insensitive), bools as 1/0, no casts.
  static SqlSyntax Sqlite();
  /// PostgreSQL: `$N`, ILIKE, bools as bool, `::type` casts on column-less comparisons.
  static SqlSyntax Postgres();
};

/// The output of Compile: a predicate to AND into a WHERE clause, plus what it needs.
struct CompiledFilter {
  /// The predicate; "TRUE" (SqlSyntax::true_sql) for the empty expression. A top-level `||` is
  /// parenthesized so the predicate can be ANDed with other conditions as is.
  std::string sql;
  std::vector<Param> params;        ///< Values in placeholder order, from first_param_index.
  std::vector<std::string> joins;   ///< JOIN clauses the resolver asked for, first-seen order.
};

/// Compiles `expr`. Field paths go through `fields` (errors get the position added), variables
/// through `variables` (always bound as parameters). Values are never spliced into SQL.
/// Semantics: `x = null` / `x != null` (literal null) become IS NULL / IS NOT NULL; a variable that
/// resolves to null is bound as SQL NULL, so `author = @request.auth.id` never matches an anonymous
/// request (test presence with `@request.auth.id != null`). `~` binds `%value%` with `%`, `_` and
/// `\` escaped; SQLite's LIKE folds ASCII case only. Multi-valued fields: `=` is "any value
/// equals" (`? IN (subquery)`), `!=` is "no value equals"; other operators are rejected.
/// Type checks: fields against literals and other fields (text, relation and datetime compare
/// with strings; integer and number with numbers; bool with bools by = and != only; json with
/// anything); variables carry request data and are not type-checked except for `~`.
/// Errors: kBadRequest "at <pos>: ..." with FieldError{field="filter", code=<"field"|"variable"|
/// "type">}, except a resolver's kInternal error, which is passed through.
core::Result<CompiledFilter> Compile(const Expr& expr, const FieldResolver& fields,
                                     const VariableResolver& variables, const SqlSyntax& syntax);

}  // namespace basalt::query
