#include "http/response.hpp"

#include <algorithm>

namespace basalt::http {

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

void Response::Set(std::string_view name, std::string value) {
  // `name` may view into a header this call replaces: copy it before anything is erased.
  std::string key(name);
  Remove(key);
  headers.emplace_back(std::move(key), std::move(value));
}

std::optional<std::string_view> Response::Get(std::string_view name) const {
  for (const auto& [key, v] : headers) {
    if (HeaderNameEquals(key, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void Response::Remove(std::string_view name) {
  std::erase_if(headers, [&](const auto& h) { return HeaderNameEquals(h.first, name); });
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.reserve(8);  // the stages add ~6 more; avoid regrowing the vector on every request
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.reserve(8);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

Response Response::Empty(int status) {
  Response r;
  r.status = status;
  return r;
}

}  // namespace basalt::http
