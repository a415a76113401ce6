#include "api/data_support.hpp"
#include "api/routes.hpp"
#include "http/problem.hpp"
#include "obs/metrics.hpp"

namespace basalt::api {

std::string_view BuildVersion() { return BASALT_VERSION; }
std::string_view BuildCommit() { return BASALT_COMMIT; }

namespace {


}  // namespace

core::Result<void> RegisterMetrics(http::Router& router, const obs::HttpMetrics& metrics, std::string token,
                                   std::vector<MetricsSource> sources) {
  return router.Add(
      http::Method::kGet, "/metrics",
      [&metrics, token = std::move(token), sources = std::move(sources)](http::Request& req) -> http::Task<http::Response> {
        if (!token.empty()) {
          const auto auth = req.Header("Authorization");
          const bool ok = auth && detail::BearerMatches(*auth, token);
          if (!ok) {
            http::Response res = http::Problem(
                core::Error::Make(core::ErrorCode::kUnauthorized, "A valid bearer token is required for /metrics."),
                req.request_id());
            res.Set("WWW-Authenticate", R"(Bearer realm="metrics")");
            co_return res;
          }
        }
        std::string out;
        out.reserve(16 * 1024);
        metrics.Render(out);
        obs::RenderProcessMetrics(out, BuildVersion(), BuildCommit());
        for (const auto& source : sources) co_await source(req.shard(), out);
        co_return http::Response::Text(200, std::move(out), "text/plain; version=0.0.4; charset=utf-8");
      });
}

}  // namespace basalt::api
