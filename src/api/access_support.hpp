#pragma once
/// Private to api/: JSON helpers shared by the access handlers.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "auth/scopes.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace basalt::api::detail {

inline boost::json::value TimeOrNull(std::optional<std::int64_t> ms) {
  if (!ms) return nullptr;
  return boost::json::value(core::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms))));
}

inline boost::json::array ToJsonArray(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

inline core::Error FieldProblem(std::string field, std::string code, std::string message) {
  core::Error e = core::Error::Make(core::ErrorCode::kValidation, "Validation failed.");
  e.fields.push_back({std::move(field), std::move(code), std::move(message)});
  return e;
}

/// A JSON array of valid scopes (auth/scopes.hpp), at most 64, without duplicates.
inline core::Result<std::vector<std::string>> ParseScopeList(const boost::json::value* v, std::string field) {
  if (v == nullptr) return std::unexpected(FieldProblem(field, "required", "A list of scopes is required."));
  if (!v->is_array()) return std::unexpected(FieldProblem(field, "type", "Must be an array of strings."));
  if (v->as_array().size() > 64) return std::unexpected(FieldProblem(field, "too_long", "At most 64 entries."));
  std::vector<std::string> out;
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) return std::unexpected(FieldProblem(field, "type", "Must be an array of strings."));
    std::string s(item.as_string());
    if (!auth::IsValidScope(s)) {
      return std::unexpected(FieldProblem(field, "unknown", "Unknown scope '" + s.substr(0, 80) + "'."));
    }
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

/// A JSON string of 1..max characters.
inline core::Result<std::string> ParseName(const boost::json::value* v, std::string field, std::size_t max) {
  if (v == nullptr) return std::unexpected(FieldProblem(field, "required", "Required."));
  if (!v->is_string() || v->as_string().empty() || v->as_string().size() > max) {
    return std::unexpected(FieldProblem(field, "invalid", "Must be a string of 1 to " + std::to_string(max) + " characters."));
  }
  return std::string(v->as_string());
}

/// Rejects members other than `allowed` (unknown fields are 422, DESIGN.md).
inline std::optional<core::Error> UnknownMembers(const boost::json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, _] : o) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end()) {
      return FieldProblem(std::string(key).substr(0, 64), "unknown", "Unknown field.");
    }
  }
  return std::nullopt;
}

}  // namespace basalt::api::detail
