#include "http/stages.hpp"

#include <algorithm>
#include <chrono>

#include "core/ids.hpp"
#include "core/strings.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace basalt::http {

Middleware RequestIdStage() {
  Middleware stage{.name = "request_id"};
  stage.before = [](Request& req) {
    const auto given = req.Header("X-Request-Id");
    if (given && core::IsValidRequestId(*given)) {
      req.set_request_id(std::string(*given));
    } else {
      req.set_request_id(core::FormatUuid(core::NewUuidV7()));
    }
  };
  stage.after = [](Request& req, Response& res) { res.Set("X-Request-Id", req.request_id()); };
  return stage;
}

Middleware AccessLogStage(const std::atomic<bool>* enabled) {
  Middleware stage{.name = "access_log"};
  stage.before = [](Request& req) { req.StartClock(); };
  stage.after = [](Request& req, Response& res) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - req.StartClock()).count();
    const std::string_view route = req.route().empty() ? std::string_view("unmatched") : req.route();
    obs::Log(obs::LogLevel::kInfo, "request",
             {{"request_id", std::string_view(req.request_id())},
              {"method", req.method_name()},
              {"route", route},
              {"path", req.path()},
              {"status", static_cast<std::int64_t>(res.status)},
              {"duration_ms", ms},
              {"bytes", static_cast<std::int64_t>(res.body.size())},
              {"remote", req.remote_address()}});
  };
  stage.applies = [enabled](const Request&) {
    return (enabled == nullptr || enabled->load(std::memory_order_relaxed)) && obs::LogEnabled(obs::LogLevel::kInfo);
  };
  return stage;
}

Middleware MetricsStage(obs::HttpMetrics& metrics) {
  Middleware stage{.name = "metrics"};
  stage.before = [&metrics](Request& req) {
    metrics.AddInFlight(req.shard(), 1);
    req.StartClock();
  };
  // Runs for every request whose `before` ran, a throwing handler's included (as a 500).
  stage.after = [&metrics](Request& req, Response& res) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - req.StartClock()).count();
    const std::string_view route = req.route().empty() ? std::string_view("unmatched") : req.route();
    // The label is the known method name, never the raw token (bounded cardinality).
    metrics.Record(req.shard(), MethodName(req.method()), route, res.status, secs);
    metrics.AddInFlight(req.shard(), -1);
  };
  return stage;
}

Middleware CorsStage(CorsOptions options) {
  const bool wildcard = std::ranges::find(options.allowed_origins, "*") != options.allowed_origins.end();
  auto shared = std::make_shared<const CorsOptions>(std::move(options));
  auto methods = std::make_shared<const std::string>(core::Join(shared->allowed_methods, ", "));
  auto headers = std::make_shared<const std::string>(core::Join(shared->allowed_headers, ", "));
  auto exposed = std::make_shared<const std::string>(core::Join(shared->exposed_headers, ", "));
  // Only requests from an allowed origin are touched; the others pass the stage by.
  auto allowed = [shared, wildcard](const Request& req) {
    const auto origin = req.Header("Origin");
    return origin && (wildcard || std::ranges::find(shared->allowed_origins, *origin) != shared->allowed_origins.end());
  };
  return {"cors",
          [shared, wildcard, methods, headers, exposed](Request& req, Next next) -> Task<Response> {
            const auto origin = req.Header("Origin");  // present and allowed: the stage applies
            // With credentials the origin is echoed, never "*" (the Fetch standard forbids it).
            const bool echo = !wildcard || shared->allow_credentials;
            auto decorate = [&](Response& res) {
              res.Set("Access-Control-Allow-Origin", echo ? std::string(*origin) : std::string("*"));
              if (echo) res.Add("Vary", "Origin");
              if (shared->allow_credentials) res.Set("Access-Control-Allow-Credentials", "true");
            };
            const bool preflight =
                req.method() == Method::kOptions && req.Header("Access-Control-Request-Method").has_value();
            if (preflight) {
              Response res = Response::Empty(204);
              decorate(res);
              res.Set("Access-Control-Allow-Methods", *methods);
              res.Set("Access-Control-Allow-Headers", *headers);
              res.Set("Access-Control-Max-Age", std::to_string(shared->max_age_s));
              co_return res;
            }
            Response res = co_await next(req);
            decorate(res);
            if (!exposed->empty()) res.Set("Access-Control-Expose-Headers", *exposed);
            co_return res;
          },
          std::move(allowed)};
}

Middleware SecurityHeadersStage(SecurityHeadersOptions options) {
  std::string hsts;
  if (options.tls && options.hsts_max_age_s > 0) {
    hsts = "max-age=" + std::to_string(options.hsts_max_age_s) + "; includeSubDomains";
  }
  Middleware stage{.name = "security_headers"};
  stage.after = [referrer = std::move(options.referrer_policy), hsts = std::move(hsts)](Request&, Response& res) {
    res.Add("X-Content-Type-Options", "nosniff");
    res.Add("X-Frame-Options", "DENY");
    if (!referrer.empty()) res.Add("Referrer-Policy", referrer);
    if (!hsts.empty()) res.Add("Strict-Transport-Security", hsts);
    if (res.status >= 400 && !res.Get("Cache-Control")) res.Add("Cache-Control", "no-store");
  };
  return stage;
}

}  // namespace basalt::http
