#pragma once
/// HTTP handlers, one file per resource. Each Register* adds its routes to the router.

#include <functional>
#include <string>
#include <vector>

#include "http/router.hpp"
#include "http/server.hpp"

namespace basalt::obs {
class HttpMetrics;
}

namespace basalt::api {

/// GET /healthz (alive) and GET /readyz (ready; 503 problem while starting or draining).
core::Result<void> RegisterHealth(http::Router& router, const http::Readiness& readiness);

/// Appends more metrics to a scrape, sampled at scrape time on the scraping request's shard.
using MetricsSource = std::function<http::Task<void>(unsigned shard, std::string& out)>;

/// GET /metrics in Prometheus text format. When `token` is not empty the scrape must send
/// `Authorization: Bearer <token>` (compared in constant time). `sources` append their families
/// after the HTTP and process metrics.
core::Result<void> RegisterMetrics(http::Router& router, const obs::HttpMetrics& metrics, std::string token,
                                   std::vector<MetricsSource> sources = {});

/// The version and commit this binary was built from.
std::string_view BuildVersion();
std::string_view BuildCommit();

}  // namespace basalt::api
