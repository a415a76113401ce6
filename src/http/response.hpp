#pragma once
/// The response a handler returns. Plain data; the server serialises it.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace basalt::http {

/// One HTTP response. Content-Length and Date are added by the server.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// Sets a header, replacing any with the same name (case-insensitive).
  void Set(std::string_view name, std::string value);
  /// Adds a header without replacing (e.g. Vary, Link).
  void Add(std::string_view name, std::string value) { headers.emplace_back(name, std::move(value)); }
  /// First header with this name (case-insensitive).
  std::optional<std::string_view> Get(std::string_view name) const;
  /// Removes every header with this name.
  void Remove(std::string_view name);

  /// `status` with a JSON body and `Content-Type: application/json`.
  static Response Json(int status, std::string body);
  /// `status` with a plain-text body.
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  /// `status` with no body (204, 304, ...).
  static Response Empty(int status);
};

/// Case-insensitive ASCII comparison for header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);

}  // namespace basalt::http
