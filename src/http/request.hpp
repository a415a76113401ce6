#pragma once
/// The request a handler sees. It does not expose Beast: header and target views point into the
/// parsed message owned by the connection, which outlives the handler call.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace basalt::core {
struct Error;
}

namespace basalt::http {

struct RouteMatch;

/// Request methods the router knows. Anything else is kOther (answered 501 by the server).
enum class Method {
  kGet,      ///< GET.
  kHead,     ///< HEAD: routed to the GET handler, body dropped, headers kept.
  kPost,     ///< POST.
  kPut,      ///< PUT.
  kPatch,    ///< PATCH.
  kDelete,   ///< DELETE.
  kOptions,  ///< OPTIONS: CORS preflight or an `Allow` listing.
  kOther,    ///< Any other token.
};

/// "GET", "HEAD", ...; "OTHER" for kOther.
std::string_view MethodName(Method method);

/// Parses a method token (case-sensitive, as RFC 9110 says).
Method ParseMethod(std::string_view token);

/// A path parameter captured by the router, e.g. {"id", "0192..."}.
struct PathParam {
  std::string_view name;
  std::string_view value;
};

/// Who is calling. The authentication stage (api/) sets it from the request's credentials; a request
/// without credentials stays anonymous. Plain data, so http/ (logs, rate limits) can read it without
/// knowing how it was established.
struct Principal {
  enum class Kind {
    kAnonymous,   ///< No credentials.
    kUser,        ///< A user's access token (JWT).
    kApiKey,      ///< An API key (`bsk_...`), acting for its owner within its scopes.
    kService,     ///< An OAuth2 client-credentials token, within its scopes.
    kAdminToken,  ///< `auth.admin_token`: a superuser for automation.
  };
  Kind kind = Kind::kAnonymous;
  std::string id;                   ///< User id, API key id or OAuth2 client id; "" when anonymous.
  std::string user_id;              ///< The user this acts for (a user, an API key's owner); "" when none.
  std::vector<std::string> roles;   ///< "admin", "user", custom roles.
  std::vector<std::string> scopes;  ///< API keys and service tokens act only within these.
  std::string session_id;           ///< kUser: the login (refresh-token family) the token came from.
  /// What `roles` grant (auth/scopes.hpp vocabulary), filled by the authentication stage.
  std::vector<std::string> permissions;

  bool anonymous() const { return kind == Kind::kAnonymous; }
  bool HasRole(std::string_view role) const {
    for (const auto& r : roles) if (r == role) return true;
    return false;
  }
  bool HasScope(std::string_view scope) const {
    for (const auto& s : scopes) if (s == scope) return true;
    return false;
  }
  /// The admin token; a user holding the built-in `admin` role; an API key of such a user that
  /// carries the `admin` scope; a service token with the `admin` scope. An API key acts only within
  /// its scopes, so an admin's key scoped to `records:read` is not a superuser.
  bool superuser() const {
    switch (kind) {
      case Kind::kAdminToken: return true;
      case Kind::kUser: return HasRole("admin");
      case Kind::kApiKey: return HasRole("admin") && HasScope("admin");
      case Kind::kService: return HasScope("admin");
      case Kind::kAnonymous: break;
    }
    return false;
  }
  /// "user", "api_key", "service", "admin_token" or "anonymous" (logs, audit).
  std::string_view kind_name() const {
    switch (kind) {
      case Kind::kUser: return "user";
      case Kind::kApiKey: return "api_key";
      case Kind::kService: return "service";
      case Kind::kAdminToken: return "admin_token";
      case Kind::kAnonymous: break;
    }
    return "anonymous";
  }
};

/// One HTTP request. Cheap to build: views, plus the body moved out of the parser.
class Request {
 public:
  using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

  Request() = default;
  Request(Method method, std::string_view method_name, std::string_view target, unsigned version,
          HeaderList headers, std::string body, std::string_view remote_address);

  Method method() const { return method_; }
  std::string_view method_name() const { return method_name_; }
  /// The request target as sent: "/api/v1/x?y=1".
  std::string_view target() const { return target_; }
  /// The path part of the target (before '?').
  std::string_view path() const { return path_; }
  /// The query part of the target (after '?', without it), possibly empty.
  std::string_view query() const { return query_; }
  /// 10 for HTTP/1.0, 11 for HTTP/1.1.
  unsigned version() const { return version_; }
  /// First header with this name (case-insensitive), if present.
  std::optional<std::string_view> Header(std::string_view name) const;
  const HeaderList& headers() const { return headers_; }
  const std::string& body() const { return body_; }
  std::string& mutable_body() { return body_; }
  std::string_view remote_address() const { return remote_address_; }

  /// The route template that matched ("/api/v1/collections/{name}"), or "" when none did.
  std::string_view route() const { return route_; }
  /// A captured path parameter by name, or "" when absent.
  std::string_view Param(std::string_view name) const;
  const std::vector<PathParam>& params() const { return params_; }

  /// The request id (validated from X-Request-Id or generated); set by the request-id stage.
  const std::string& request_id() const { return request_id_; }
  void set_request_id(std::string id) { request_id_ = std::move(id); }

  /// Deepest JSON nesting a handler should accept in this request's body (`server.max_json_depth`).
  unsigned max_json_depth() const { return max_json_depth_; }
  void set_max_json_depth(unsigned depth) { max_json_depth_ = depth; }

  /// Who is calling; anonymous until the authentication stage says otherwise.
  const Principal& principal() const { return principal_; }
  void set_principal(Principal principal) { principal_ = std::move(principal); }

  /// Index of the I/O thread serving this request (for sharded state such as metrics).
  unsigned shard() const { return shard_; }

  /// When the pipeline started timing this request: the first call reads the clock, later calls
  /// (the access log and the metrics stage) get the same instant.
  std::chrono::steady_clock::time_point StartClock() {
    if (started_ == std::chrono::steady_clock::time_point{}) started_ = std::chrono::steady_clock::now();
    return started_;
  }

  // Set by the server while routing.
  void set_route(std::string_view route, std::vector<PathParam> params) {
    route_ = route;
    params_ = std::move(params);
  }
  void set_shard(unsigned shard) { shard_ = shard; }
  /// The router's answer for this request; null until routed.
  const RouteMatch* match() const { return match_; }
  void set_match(const RouteMatch* match) { match_ = match; }
  /// Set when the request could not be read (malformed, too large, timed out): the pipeline still
  /// runs, so the answer gets a request id, a log line and metrics, and the terminal answers it.
  const core::Error* early_error() const { return early_error_; }
  void set_early_error(const core::Error* error) { early_error_ = error; }

 private:
  Method method_ = Method::kGet;
  std::string_view method_name_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  unsigned version_ = 11;
  HeaderList headers_;
  std::string body_;
  std::string_view remote_address_;
  std::string_view route_;
  std::vector<PathParam> params_;
  std::string request_id_;
  Principal principal_;
  unsigned shard_ = 0;
  unsigned max_json_depth_ = 64;
  std::chrono::steady_clock::time_point started_{};
  const RouteMatch* match_ = nullptr;
  const core::Error* early_error_ = nullptr;
};

}  // namespace basalt::http
