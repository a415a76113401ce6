#include "http/router.hpp"

#include <array>
#include <exception>
#include <unordered_map>

#include "http/problem.hpp"
#include "obs/log.hpp"

namespace basalt::http {
namespace {

constexpr std::size_t kMethodCount = static_cast<std::size_t>(Method::kOther);

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Splits "/a/b/c" into "a", "b", "c" lazily.
class Segments {
 public:
  explicit Segments(std::string_view path) : rest_(path.empty() ? path : path.substr(1)) {}
  bool Next(std::string_view& out) {
    if (done_) return false;
    const auto slash = rest_.find('/');
    if (slash == std::string_view::npos) {
      out = rest_;
      done_ = true;
    } else {
      out = rest_.substr(0, slash);
      rest_ = rest_.substr(slash + 1);
    }
    return true;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

// "{name}" where name is [A-Za-z_][A-Za-z0-9_]*.
bool IsParam(std::string_view seg) {
  if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}') return false;
  const std::string_view name = seg.substr(1, seg.size() - 2);
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace

struct Router::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> literals;
  std::unique_ptr<Node> param;
  std::string param_name;
  std::array<const Route*, kMethodCount> methods{};

  bool HasAnyMethod() const {
    for (const Route* r : methods) {
      if (r) return true;
    }
    return false;
  }
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

core::Result<void> Router::Add(Method method, std::string_view pattern, Handler handler, RouteOptions options) {
  using core::ErrorCode;
  if (method == Method::kOther) return core::Fail(ErrorCode::kInternal, "route method must be a known method");
  if (pattern.empty() || pattern.front() != '/') {
    return core::Fail(ErrorCode::kInternal, "route pattern must start with '/': " + std::string(pattern));
  }
  Node* node = root_.get();
  Segments segs(pattern);
  std::string_view seg;
  std::vector<std::string_view> seen_params;
  while (segs.Next(seg)) {
    if (seg.find_first_of("{}") != std::string_view::npos && !IsParam(seg)) {
      return core::Fail(ErrorCode::kInternal, "malformed route segment '" + std::string(seg) + "'");
    }
    if (IsParam(seg)) {
      const std::string_view name = seg.substr(1, seg.size() - 2);
      for (auto n : seen_params) {
        if (n == name) return core::Fail(ErrorCode::kInternal, "duplicate parameter '" + std::string(name) + "'");
      }
      seen_params.push_back(name);
      if (!node->param) {
        node->param = std::make_unique<Node>();
        node->param_name = name;
      } else if (node->param_name != name) {
        return core::Fail(ErrorCode::kInternal, "parameter '{" + std::string(name) + "}' conflicts with '{" +
                                                    node->param_name + "}' at the same position");
      }
      node = node->param.get();
    } else {
      auto it = node->literals.find(seg);
      if (it == node->literals.end()) it = node->literals.emplace(std::string(seg), std::make_unique<Node>()).first;
      node = it->second.get();
    }
  }
  auto& slot = node->methods[static_cast<std::size_t>(method)];
  if (slot) {
    return core::Fail(ErrorCode::kInternal,
                      "duplicate route " + std::string(MethodName(method)) + " " + std::string(pattern));
  }
  routes_.push_back(std::make_unique<Route>(Route{method, std::string(pattern), std::move(handler), options}));
  slot = routes_.back().get();
  return {};
}

namespace {

// Depth-first match preferring literals; params collected on the way down.
template <class NodeT>
const NodeT* MatchNode(const NodeT* node, std::string_view rest, bool at_end, std::vector<PathParam>& params) {
  if (at_end) return node->HasAnyMethod() ? node : nullptr;
  const auto slash = rest.find('/');
  const std::string_view seg = slash == std::string_view::npos ? rest : rest.substr(0, slash);
  const std::string_view next = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  const bool next_end = slash == std::string_view::npos;
  if (auto it = node->literals.find(seg); it != node->literals.end()) {
    if (const NodeT* found = MatchNode(it->second.get(), next, next_end, params)) return found;
  }
  if (node->param && !seg.empty()) {
    params.push_back(PathParam{node->param_name, seg});
    if (const NodeT* found = MatchNode(node->param.get(), next, next_end, params)) return found;
    params.pop_back();
  }
  return nullptr;
}

std::string AllowList(const std::array<const Route*, kMethodCount>& methods) {
  std::string allow;
  auto add = [&](std::string_view m) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  };
  for (std::size_t i = 0; i < kMethodCount; ++i) {
    const auto m = static_cast<Method>(i);
    if (!methods[i] || m == Method::kHead || m == Method::kOptions) continue;
    add(MethodName(m));
    if (m == Method::kGet) add("HEAD");
  }
  if (methods[static_cast<std::size_t>(Method::kHead)] && !methods[static_cast<std::size_t>(Method::kGet)]) add("HEAD");
  add("OPTIONS");
  return allow;
}

}  // namespace

RouteMatch Router::Find(Method method, std::string_view path) const {
  RouteMatch match;
  if (path.empty() || path.front() != '/') return match;
  const Node* node = MatchNode(root_.get(), path.substr(1), false, match.params);
  if (!node) {
    match.params.clear();
    return match;
  }
  const Route* route = nullptr;
  if (method != Method::kOther) route = node->methods[static_cast<std::size_t>(method)];
  if (!route && method == Method::kHead) route = node->methods[static_cast<std::size_t>(Method::kGet)];
  if (route) {
    match.kind = RouteMatch::Kind::kFound;
    match.route = route;
    return match;
  }
  match.kind = RouteMatch::Kind::kMethodNotAllowed;
  match.allow = AllowList(node->methods);
  return match;
}

Task<Response> Dispatch(Request& request) {
  using core::ErrorCode;
  if (const core::Error* early = request.early_error()) co_return Problem(*early, request.request_id());
  const RouteMatch* match = request.match();
  if (!match || match->kind == RouteMatch::Kind::kNotFound) {
    co_return Problem(core::Error::Make(ErrorCode::kNotFound, "No resource at this path."), request.request_id());
  }
  if (match->kind == RouteMatch::Kind::kMethodNotAllowed) {
    if (request.method() == Method::kOptions) {
      Response r = Response::Empty(204);
      r.headers.emplace_back("Allow", match->allow);
      co_return r;
    }
    Response r = Problem(core::Error::Make(ErrorCode::kMethodNotAllowed,
                                           "Method " + std::string(request.method_name()) +
                                               " is not allowed here; allowed: " + match->allow + "."),
                         request.request_id());
    r.headers.emplace_back("Allow", match->allow);
    co_return r;
  }
  std::exception_ptr failure;
  try {
    co_return co_await match->route->handler(request);
  } catch (const std::exception& e) {
    obs::Log(obs::LogLevel::kError, "handler failed",
             {{"request_id", request.request_id()}, {"route", request.route()}, {"error", e.what()}});
  } catch (...) {
    obs::Log(obs::LogLevel::kError, "handler failed",
             {{"request_id", request.request_id()}, {"route", request.route()}, {"error", "unknown exception"}});
  }
  co_return Problem(core::Error::Make(ErrorCode::kInternal, "The server failed to handle this request."),
                    request.request_id());
}

}  // namespace basalt::http
