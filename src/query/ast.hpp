#pragma once
/// The syntax tree of the filter and rule language: what `Parse` produces and `Compile` consumes.
/// Positions are 0-based character (Unicode code point) offsets into the source text.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace basalt::query {

/// A scalar value: a literal in the text, a variable's bound value, or a compiled parameter.
/// Alternatives: null, integer, decimal, string (UTF-8), bool.
using Value = std::variant<std::monostate, std::int64_t, double, std::string, bool>;

/// A comparison operator.
enum class CompareOp {
  kEq,           ///< `=`; with `null` on one side, IS NULL.
  kNe,           ///< `!=`; with `null` on one side, IS NOT NULL.
  kGt,           ///< `>`.
  kGe,           ///< `>=`.
  kLt,           ///< `<`.
  kLe,           ///< `<=`.
  kContains,     ///< `~`: case-insensitive substring; `%` and `_` match literally.
  kNotContains,  ///< `!~`: negation of `~`.
  kIn,           ///< `IN [..]`: equal to one of the listed literals.
  kNotIn,        ///< `NOT IN [..]`: equal to none of the listed literals.
};

/// A logical connective between two sub-expressions.
enum class LogicOp {
  kAnd,  ///< `&&`: both hold; binds tighter than `||`.
  kOr,   ///< `||`: either holds.
};

/// The operator as written in the language, e.g. ">=" or "NOT IN".
std::string_view OpText(CompareOp op);

/// A field path such as `author.name`: identifiers separated by dots, resolved by a FieldResolver.
struct FieldPath {
  std::vector<std::string> path;  ///< At least one segment, each `[A-Za-z_][A-Za-z0-9_]*`.
};

/// A variable such as `@request.auth.id`; never SQL text, always a bound parameter.
struct Variable {
  /// Without the `@`: {"request","auth",...}, {"request","body",...} or {"now"}.
  std::vector<std::string> path;
};

/// A scalar literal: string, number, true, false or null.
struct Literal {
  Value value;  ///< The decoded value (escapes resolved, numbers parsed).
};

/// A list literal `[lit, ...]`, only valid as the right side of IN / NOT IN.
struct ListLiteral {
  std::vector<Value> items;            ///< 1..Limits::max_list_items non-null scalars.
  std::vector<std::size_t> positions;  ///< Position of each item, parallel to `items`.
};

/// One side of a comparison.
struct Operand {
  std::variant<FieldPath, Variable, Literal, ListLiteral> value;  ///< What the operand is.
  std::size_t position = 0;                                         ///< Where it starts.
};

struct Expr;

/// The empty expression: no condition at all.
struct Empty {};

/// `lhs op rhs`.
struct Comparison {
  Operand lhs;                  ///< Left side; never a list.
  CompareOp op = CompareOp::kEq;  ///< The operator.
  std::size_t op_position = 0;  ///< Where the operator starts.
  Operand rhs;                  ///< Right side; a list exactly when `op` is IN / NOT IN.
};

/// `!expr`.
struct Not {
  std::unique_ptr<Expr> operand;  ///< Never null.
};

/// `lhs && rhs` or `lhs || rhs` (left-associative chains nest in `lhs`).
struct Logical {
  LogicOp op = LogicOp::kAnd;  ///< The connective.
  std::unique_ptr<Expr> lhs;   ///< Never null.
  std::unique_ptr<Expr> rhs;   ///< Never null.
};

/// A node of the tree. Move-only; owns its children.
struct Expr {
  std::variant<Empty, Comparison, Not, Logical> node;  ///< What the node is.
  std::size_t position = 0;                            ///< Where the node starts in the text.

  /// True for the empty expression, which means "no condition".
  bool IsEmpty() const { return std::holds_alternative<Empty>(node); }
};

}  // namespace basalt::query
