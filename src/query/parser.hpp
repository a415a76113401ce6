#pragma once
/// Parses filter and rule text into an Expr. Hand-written lexer and recursive-descent parser.
///
/// Grammar (one for list filters and access rules):
///   filter     := <empty> | or
///   or         := and ("||" and)*
///   and        := unary ("&&" unary)*
///   unary      := "!" unary | "(" or ")" | comparison      -- `!a = 1` is `!(a = 1)`
///   comparison := operand ("=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~") operand
///               | operand ("IN" | "NOT" "IN") list
///   operand    := field | variable | string | number | "true" | "false" | "null"
///   field      := ident ("." ident)*                       ident := [A-Za-z_][A-Za-z0-9_]*
///   variable   := "@request.auth." path | "@request.body." path | "@now"
///   list       := "[" scalar ("," scalar)* "]"              -- non-null literals only
///   string     := '"' ... '"' | "'" ... "'"  with escapes \" \' \\ \n \t \uXXXX (pairs for
///                 astral characters); raw control characters and NUL are rejected
///   number     := "-"? digits ("." digits)?                  -- int64, or a finite double
/// `IN`, `NOT`, `true`, `false` and `null` are reserved words. Whitespace: space, \t, \r, \n.

#include <cstddef>
#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "query/ast.hpp"

namespace basalt::query {

/// Size limits applied while parsing; every breach is a kBadRequest error with a position.
struct Limits {
  std::size_t max_length = 4096;     ///< Maximum length of the text in bytes.
  std::size_t max_depth = 32;        ///< Maximum nesting of `(` and `!`.
  std::size_t max_nodes = 256;       ///< Maximum comparisons + connectives + `!` + operands.
  std::size_t max_list_items = 100;  ///< Maximum values in one list literal.
};

/// Parses `text` (UTF-8). Empty or all-whitespace text gives an Expr with `IsEmpty()`.
/// Errors are always core::ErrorCode::kBadRequest with a message "at <pos>: <what was expected>"
/// and one FieldError{field="filter", code=<"syntax"|"limit">, message=<same>}; see ErrorPosition.
core::Result<Expr> Parse(std::string_view text, const Limits& limits = {});

/// The 0-based character position carried by an error from Parse or Compile, if it has one.
std::optional<std::size_t> ErrorPosition(const core::Error& error);

}  // namespace basalt::query
