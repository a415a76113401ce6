#pragma once
/// Reading one row value (store::Value) as text or as an integer: the helpers every module that
/// reads rows used to define for itself.

#include <cstdint>
#include <string>
#include <variant>

#include "store/database.hpp"

namespace basalt::store {

/// The text in `v`; "" for NULL or a value of another type.
inline std::string TextOf(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

/// The integer in `v` (a bool as 0 or 1); 0 for NULL or a value of another type.
inline std::int64_t IntOf(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  return 0;
}

}  // namespace basalt::store
