// Fuzzes the whole request path: bytes in, through Beast's parser, the limits, the router, every
// middleware stage and the serializer, bytes out. Invariant: the server either writes nothing or
// writes HTTP/1.x responses, and never crashes, leaks or trips a sanitizer.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/router.hpp"
#include "http/server.hpp"
#include "http/stages.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace {

using namespace basalt;

struct World {
  World() : metrics(1), pipeline(http::Dispatch) {
    obs::InitLogging({.level = obs::LogLevel::kOff});
    auto ok = router.Add(http::Method::kGet, "/healthz", [](http::Request&) -> http::Task<http::Response> {
      co_return http::Response::Json(200, R"({"status":"ok"})");
    });
    ok = router.Add(http::Method::kPost, "/echo", [](http::Request& r) -> http::Task<http::Response> {
      co_return http::Response::Text(200, r.body());
    });
    ok = router.Add(http::Method::kGet, "/items/{id}", [](http::Request& r) -> http::Task<http::Response> {
      co_return http::Response::Text(200, std::string(r.Param("id")));
    });
    ok = router.Add(
        http::Method::kPut, "/small", [](http::Request& r) -> http::Task<http::Response> {
          co_return http::Response::Text(200, r.body());
        },
        {.max_body_bytes = 16});
    if (!ok) std::abort();
    pipeline.Use(http::RequestIdStage());
    pipeline.Use(http::AccessLogStage());
    pipeline.Use(http::MetricsStage(metrics));
    pipeline.Use(http::SecurityHeadersStage({}));
    pipeline.Use(http::CorsStage({.allowed_origins = {"https://app.example"},
                                  .allowed_methods = {"GET", "POST"},
                                  .allowed_headers = {"Content-Type"}}));
    options.max_header_bytes = 2048;
    options.max_request_line_bytes = 512;
    options.max_body_bytes = 4096;
  }
  obs::HttpMetrics metrics;
  http::Router router;
  http::Pipeline pipeline;
  http::ServerOptions options;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  const std::string out = http::ServeBytesForTesting(
      std::string_view(reinterpret_cast<const char*>(data), size), world.options, world.router, world.pipeline);
  if (!out.empty() && out.rfind("HTTP/1.1 ", 0) != 0 && out.rfind("HTTP/1.0 ", 0) != 0) std::abort();
  return 0;
}
