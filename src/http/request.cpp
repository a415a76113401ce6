#include "http/request.hpp"

#include "http/response.hpp"

namespace basalt::http {

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kGet: return "GET";
    case Method::kHead: return "HEAD";
    case Method::kPost: return "POST";
    case Method::kPut: return "PUT";
    case Method::kPatch: return "PATCH";
    case Method::kDelete: return "DELETE";
    case Method::kOptions: return "OPTIONS";
    case Method::kOther: return "OTHER";
  }
  return "OTHER";
}

Method ParseMethod(std::string_view token) {
  if (token == "GET") return Method::kGet;
  if (token == "HEAD") return Method::kHead;
  if (token == "POST") return Method::kPost;
  if (token == "PUT") return Method::kPut;
  if (token == "PATCH") return Method::kPatch;
  if (token == "DELETE") return Method::kDelete;
  if (token == "OPTIONS") return Method::kOptions;
  return Method::kOther;
}

Request::Request(Method method, std::string_view method_name, std::string_view target, unsigned version,
                 HeaderList headers, std::string body, std::string_view remote_address)
    : method_(method),
      method_name_(method_name),
      target_(target),
      version_(version),
      headers_(std::move(headers)),
      body_(std::move(body)),
      remote_address_(remote_address) {
  const auto q = target_.find('?');
  path_ = target_.substr(0, q);
  if (q != std::string_view::npos) query_ = target_.substr(q + 1);
}

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers_) {
    if (HeaderNameEquals(key, name)) return value;
  }
  return std::nullopt;
}

std::string_view Request::Param(std::string_view name) const {
  for (const auto& p : params_) {
    if (p.name == name) return p.value;
  }
  return {};
}

}  // namespace basalt::http
