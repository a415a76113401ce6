#pragma once
/// Path router: a segment trie, so the cost of a match depends on the path's depth, not on the
/// number of routes. Literal segments win over parameters (`/a/new` before `/a/{id}`).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "http/task.hpp"

namespace basalt::http {

/// A request handler.
using Handler = std::function<Task<Response>(Request&)>;

/// Per-route settings.
struct RouteOptions {
  std::optional<std::uint64_t> max_body_bytes;  ///< Overrides the server's body limit.
};

/// A registered route.
struct Route {
  Method method;
  std::string pattern;  ///< The template, e.g. "/api/v1/collections/{name}"; used as a metric label.
  Handler handler;
  RouteOptions options;
};

/// The outcome of a lookup.
struct RouteMatch {
  /// What the router found.
  enum class Kind {
    kFound,             ///< `route` handles this method and path.
    kNotFound,          ///< No route has this path.
    kMethodNotAllowed,  ///< The path exists, the method does not; `allow` lists methods.
  };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::vector<PathParam> params;  ///< Views into the looked-up path.
  std::string allow;              ///< "GET, HEAD, OPTIONS" for 405 and OPTIONS.
};

/// Routes requests to handlers. Build it fully before the server starts; lookups are then
/// read-only and safe from every thread.
class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  /// Adds a route. Pattern segments are literals or `{name}`. Returns an error for a duplicate
  /// route, a malformed pattern, or a parameter name that conflicts with a sibling's.
  core::Result<void> Add(Method method, std::string_view pattern, Handler handler, RouteOptions options = {});

  /// Finds the route for a method and path. HEAD falls back to GET.
  RouteMatch Find(Method method, std::string_view path) const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
};

/// The terminal stage of every pipeline: answers an early error as problem+json, runs the matched
/// handler (a thrown exception becomes a 500 without detail, logged with the request id), or
/// answers 404, 405 + `Allow`, or OPTIONS 204 + `Allow`.
Task<Response> Dispatch(Request& request);

}  // namespace basalt::http
