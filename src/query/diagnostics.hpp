#pragma once
/// Private to query/: builds positioned errors.

#include <cstddef>
#include <string>
#include <string_view>
#include <expected>

#include "core/error.hpp"

namespace basalt::query::detail {

/// kBadRequest "at <pos>: <what>" with FieldError{"filter", code, same message}.
inline std::unexpected<core::Error> PositionedError(std::size_t pos, std::string_view code,
                                                    std::string_view what) {
  std::string message = "at " + std::to_string(pos) + ": " + std::string(what);
  core::Error error = core::Error::Make(core::ErrorCode::kBadRequest, message);
  error.fields.push_back(core::FieldError{"filter", std::string(code), std::move(message)});
  return std::unexpected(std::move(error));
}

}  // namespace basalt::query::detail
