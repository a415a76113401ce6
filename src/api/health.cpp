#include "api/routes.hpp"
#include "http/problem.hpp"

namespace basalt::api {

core::Result<void> RegisterHealth(http::Router& router, const http::Readiness& readiness) {
  auto alive = router.Add(http::Method::kGet, "/healthz", [](http::Request&) -> http::Task<http::Response> {
    co_return http::Response::Json(200, R"({"status":"ok"})");
  });
  if (!alive) return alive;
  return router.Add(http::Method::kGet, "/readyz", [&readiness](http::Request& req) -> http::Task<http::Response> {
    if (readiness.ready()) co_return http::Response::Json(200, R"({"status":"ready"})");
    http::Response res = http::Problem(
        core::Error::Make(core::ErrorCode::kUnavailable, "The server is starting or shutting down."), req.request_id());
    res.Set("Retry-After", "1");
    co_return res;
  });
}

}  // namespace basalt::api
