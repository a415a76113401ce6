#pragma once
/// Private to api/: helpers shared by collections.cpp and records.cpp.

#include <openssl/crypto.h>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "core/error.hpp"
#include "http/problem.hpp"
#include "http/request.hpp"
#include "http/response.hpp"

namespace basalt::api::detail {

/// Who is calling, as far as the record rules know.
struct Caller {
  /// A superuser (the admin token, or the `admin` role): rules do not apply. Otherwise the
  /// collection's rules decide, with the variables below.
  bool admin = false;
  bool authenticated = false;  ///< Any valid credentials (an admin-only rule then answers 403, not 401).
  std::string user_id;  ///< `@request.auth.id`: the user the caller acts for; "" (null) when none.
  std::string role;     ///< `@request.auth.role`: its first role; "" (null) when none.
};

/// True when `authorization` is `Bearer <token>` for this non-empty token. The scheme is
/// case-insensitive (RFC 9110 §11.1); the comparison takes constant time for a given length.
inline bool BearerMatches(std::string_view authorization, const std::string& token) {
  constexpr std::string_view kBearer = "bearer ";
  if (token.empty() || authorization.size() != kBearer.size() + token.size()) return false;
  for (std::size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kBearer[i]) return false;
  }
  return CRYPTO_memcmp(authorization.data() + kBearer.size(), token.data(), token.size()) == 0;
}

/// The caller as set by the authentication stage (api/authn.hpp).
inline Caller Identify(const http::Request& req) {
  const http::Principal& p = req.principal();
  Caller c;
  c.admin = p.superuser();
  c.authenticated = !p.anonymous();
  c.user_id = p.user_id;
  if (!p.roles.empty()) c.role = p.roles.front();
  return c;
}

/// 401 problem with `WWW-Authenticate: Bearer`.
inline http::Response Unauthorized(const http::Request& req, std::string message) {
  http::Response res = http::Problem(core::Error::Make(core::ErrorCode::kUnauthorized, std::move(message)),
                                     req.request_id());
  res.Set("WWW-Authenticate", R"(Bearer realm="basalt")");
  return res;
}

inline http::Response Fail(const http::Request& req, const core::Error& error) {
  if (error.code == core::ErrorCode::kUnauthorized) return Unauthorized(req, error.message);
  return http::Problem(error, req.request_id());
}

/// Checks Content-Type (application/json, or also application/merge-patch+json when
/// `merge_patch`) and parses the body with the request's depth limit (`server.max_json_depth`).
/// 415 / 400 errors.
inline core::Result<boost::json::value> ParseBody(const http::Request& req, bool merge_patch = false) {
  std::string_view type = req.Header("Content-Type").value_or("");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower(type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "application/json" && !(merge_patch && lower == "application/merge-patch+json")) {
    return core::Fail(core::ErrorCode::kUnsupportedMediaType,
                      merge_patch ? "Send application/merge-patch+json or application/json."
                                  : "Send application/json.");
  }
  boost::json::parse_options options;
  options.max_depth = req.max_json_depth();
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(req.body(), ec, {}, options);
  if (ec) return core::Fail(core::ErrorCode::kBadRequest, "The body is not valid JSON (or nests too deeply).", ec.message());
  return value;
}

/// Percent-decodes a query component ('+' is a space). nullopt for a malformed escape.
inline std::optional<std::string> DecodeComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// True when an If-Match / If-None-Match value matches the strong entity tag `etag` ("\"3\"").
/// `*` matches any. Weak tags (W/) match only when `weak_ok` (If-None-Match uses weak comparison).
inline bool EtagMatches(std::string_view header, std::string_view etag, bool weak_ok) {
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(pos, end - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.starts_with("W/")) {
      if (weak_ok && item.substr(2) == etag) return true;
    } else if (item == etag) {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

}  // namespace basalt::api::detail
