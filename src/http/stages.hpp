#pragma once
/// The built-in middleware stages, outermost first in the order app/ installs them:
/// request_id, access_log, metrics, security_headers, cors.

#include <atomic>
#include <string>
#include <vector>

#include "http/middleware.hpp"

namespace basalt::obs {
class HttpMetrics;
}

namespace basalt::http {

/// "request_id": takes a valid `X-Request-Id` (see core::IsValidRequestId) or makes a UUIDv7, and
/// echoes it on the response.
Middleware RequestIdStage();

/// "access_log": one structured line per request at info level, while `*enabled` (when given)
/// is true: the switch a configuration reload flips.
Middleware AccessLogStage(const std::atomic<bool>* enabled = nullptr);

/// "metrics": in-flight gauge, request counter and latency histogram by route template.
Middleware MetricsStage(obs::HttpMetrics& metrics);

/// CORS configuration.
struct CorsOptions {
  std::vector<std::string> allowed_origins;  ///< Exact origins or "*"; empty: CORS closed.
  std::vector<std::string> allowed_methods;
  std::vector<std::string> allowed_headers;
  std::vector<std::string> exposed_headers;
  bool allow_credentials = false;  ///< Never combined with a literal "*" origin in responses.
  unsigned max_age_s = 600;
};

/// "cors": answers preflights (OPTIONS with Origin and Access-Control-Request-Method) and adds
/// Access-Control-* headers for allowed origins. A disallowed origin gets no CORS headers.
Middleware CorsStage(CorsOptions options);

/// Security header configuration.
struct SecurityHeadersOptions {
  std::string referrer_policy = "no-referrer";
  unsigned hsts_max_age_s = 31'536'000;
  bool tls = false;  ///< HSTS only over TLS.
};

/// "security_headers": X-Content-Type-Options: nosniff, Referrer-Policy, X-Frame-Options: DENY,
/// Cache-Control: no-store on errors, Strict-Transport-Security when TLS is on.
Middleware SecurityHeadersStage(SecurityHeadersOptions options);

}  // namespace basalt::http
