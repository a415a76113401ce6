#pragma once
/// Parses filter and rule text into an Expr. Hand-written lexer and recursive-descent parser.

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
