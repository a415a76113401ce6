#include "http/stages.hpp"

#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http/middleware.hpp"
#include "obs/metrics.hpp"
#include "run_task.hpp"

namespace basalt::http {
namespace {

using testing::RunTask;

/// A pipeline around a terminal that records whether it ran and answers `status`.
struct Harness {
  explicit Harness(int status = 200)
      : pipeline([this, status](Request& request) -> Task<Response> {
          terminal_ran = true;
          seen_request_id = request.request_id();
          co_return Response::Json(status, R"({"ok":true})");
        }) {}

  Response Run(Request& request) { return RunTask(pipeline.Run(request)); }

  bool terminal_ran = false;
  std::string seen_request_id;
  Pipeline pipeline;
};

Request Make(Method method, std::string_view name, std::string_view target, Request::HeaderList headers = {}) {
  return Request(method, name, target, 11, std::move(headers), {}, "127.0.0.1");
}

std::string Joined(const Response& r, std::string_view name) {
  std::string out;
  for (const auto& [k, v] : r.headers) {
    if (!HeaderNameEquals(k, name)) continue;
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

std::set<std::string> Tokens(const std::string& list) {
  std::set<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.insert(item);
    start = comma + 1;
  }
  return out;
}

// --- request id

TEST(RequestIdStage, KeepsValidId) {
  Harness h;
  h.pipeline.Use(RequestIdStage());
  auto req = Make(Method::kGet, "GET", "/x", {{"X-Request-Id", "abc-123"}});
  auto resp = h.Run(req);
  EXPECT_EQ(resp.Get("X-Request-Id").value_or(""), "abc-123");
  EXPECT_EQ(h.seen_request_id, "abc-123");
  EXPECT_EQ(req.request_id(), "abc-123");
}

TEST(RequestIdStage, ReplacesInvalidIds) {
  const std::vector<std::string> bad = {"", "has space", "quote\"d", std::string(129, 'a'), "semi;colon", "\xc3\xa9"};
  for (const auto& id : bad) {
    SCOPED_TRACE(id);
    Harness h;
    h.pipeline.Use(RequestIdStage());
    auto req = Make(Method::kGet, "GET", "/x", {{"X-Request-Id", id}});
    auto resp = h.Run(req);
    std::string got(resp.Get("X-Request-Id").value_or(""));
    EXPECT_EQ(got.size(), 36u) << got;
    EXPECT_NE(got, id);
    EXPECT_EQ(h.seen_request_id, got);
  }
}

TEST(RequestIdStage, GeneratesWhenAbsentAndDiffersEachTime) {
  Harness h;
  h.pipeline.Use(RequestIdStage());
  auto a = Make(Method::kGet, "GET", "/x");
  auto b = Make(Method::kGet, "GET", "/x");
  std::string ida(h.Run(a).Get("X-Request-Id").value_or(""));
  std::string idb(h.Run(b).Get("X-Request-Id").value_or(""));
  EXPECT_EQ(ida.size(), 36u);
  EXPECT_EQ(idb.size(), 36u);
  EXPECT_NE(ida, idb);
}

TEST(RequestIdStage, AcceptsMaximumLength) {
  Harness h;
  h.pipeline.Use(RequestIdStage());
  const std::string id(128, 'z');
  auto req = Make(Method::kGet, "GET", "/x", {{"X-Request-Id", id}});
  EXPECT_EQ(h.Run(req).Get("X-Request-Id").value_or(""), id);
}

// --- CORS

CorsOptions Allowing(std::vector<std::string> origins, bool credentials = false) {
  CorsOptions o;
  o.allowed_origins = std::move(origins);
  o.allowed_methods = {"GET", "HEAD", "POST"};
  o.allowed_headers = {"Authorization", "Content-Type"};
  o.exposed_headers = {"ETag"};
  o.allow_credentials = credentials;
  return o;
}

TEST(CorsStage, ClosedByDefault) {
  Harness h;
  h.pipeline.Use(CorsStage(CorsOptions{}));
  auto req = Make(Method::kGet, "GET", "/x", {{"Origin", "https://app.example"}});
  auto resp = h.Run(req);
  EXPECT_TRUE(h.terminal_ran);
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Origin").has_value());
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Credentials").has_value());
}

TEST(CorsStage, AllowedOriginGetsHeadersAndVary) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"https://app.example"})));
  auto req = Make(Method::kGet, "GET", "/x", {{"Origin", "https://app.example"}});
  auto resp = h.Run(req);
  EXPECT_TRUE(h.terminal_ran);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.Get("Access-Control-Allow-Origin").value_or(""), "https://app.example");
  EXPECT_TRUE(Tokens(Joined(resp, "Vary")).contains("Origin")) << Joined(resp, "Vary");
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Credentials").has_value());
}

TEST(CorsStage, DisallowedOriginGetsNoCorsHeaders) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"https://app.example"})));
  auto req = Make(Method::kGet, "GET", "/x", {{"Origin", "https://evil.example"}});
  auto resp = h.Run(req);
  EXPECT_TRUE(h.terminal_ran);
  EXPECT_EQ(resp.status, 200);
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Origin").has_value());
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Methods").has_value());
}

TEST(CorsStage, NoOriginNoCorsHeaders) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"https://app.example"})));
  auto req = Make(Method::kGet, "GET", "/x");
  auto resp = h.Run(req);
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Origin").has_value());
}

TEST(CorsStage, PreflightAnsweredByTheStage) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"https://app.example"})));
  auto req = Make(Method::kOptions, "OPTIONS", "/x",
                  {{"Origin", "https://app.example"},
                   {"Access-Control-Request-Method", "POST"},
                   {"Access-Control-Request-Headers", "content-type"}});
  auto resp = h.Run(req);
  EXPECT_FALSE(h.terminal_ran);
  EXPECT_EQ(resp.status, 204);
  EXPECT_EQ(resp.Get("Access-Control-Allow-Origin").value_or(""), "https://app.example");
  auto methods = Tokens(Joined(resp, "Access-Control-Allow-Methods"));
  EXPECT_TRUE(methods.contains("GET") && methods.contains("POST")) << Joined(resp, "Access-Control-Allow-Methods");
  EXPECT_FALSE(Joined(resp, "Access-Control-Allow-Headers").empty());
  EXPECT_EQ(resp.Get("Access-Control-Max-Age").value_or(""), "600");
  EXPECT_TRUE(Tokens(Joined(resp, "Vary")).contains("Origin")) << Joined(resp, "Vary");
}

TEST(CorsStage, PreflightFromDisallowedOriginGetsNoCorsHeaders) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"https://app.example"})));
  auto req = Make(Method::kOptions, "OPTIONS", "/x",
                  {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  auto resp = h.Run(req);
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Origin").has_value());
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Methods").has_value());
}

TEST(CorsStage, CredentialsNeverWithLiteralStar) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"*"}, /*credentials=*/true)));
  auto req = Make(Method::kGet, "GET", "/x", {{"Origin", "https://any.example"}});
  auto resp = h.Run(req);
  EXPECT_EQ(resp.Get("Access-Control-Allow-Origin").value_or(""), "https://any.example");
  EXPECT_EQ(resp.Get("Access-Control-Allow-Credentials").value_or(""), "true");
  EXPECT_TRUE(Tokens(Joined(resp, "Vary")).contains("Origin")) << Joined(resp, "Vary");

  auto pre = Make(Method::kOptions, "OPTIONS", "/x",
                  {{"Origin", "https://any.example"}, {"Access-Control-Request-Method", "GET"}});
  auto presp = h.Run(pre);
  EXPECT_EQ(presp.Get("Access-Control-Allow-Origin").value_or(""), "https://any.example");
  EXPECT_EQ(presp.Get("Access-Control-Allow-Credentials").value_or(""), "true");
}

TEST(CorsStage, StarWithoutCredentialsAllowsAnyOrigin) {
  Harness h;
  h.pipeline.Use(CorsStage(Allowing({"*"})));
  auto req = Make(Method::kGet, "GET", "/x", {{"Origin", "https://any.example"}});
  auto resp = h.Run(req);
  auto acao = resp.Get("Access-Control-Allow-Origin").value_or("");
  EXPECT_TRUE(acao == "*" || acao == "https://any.example") << acao;
  EXPECT_FALSE(resp.Get("Access-Control-Allow-Credentials").has_value());
}

// --- security headers

TEST(SecurityHeadersStage, DefaultsWithoutTls) {
  Harness h;
  h.pipeline.Use(SecurityHeadersStage({}));
  auto req = Make(Method::kGet, "GET", "/x");
  auto resp = h.Run(req);
  EXPECT_EQ(resp.Get("X-Content-Type-Options").value_or(""), "nosniff");
  EXPECT_EQ(resp.Get("Referrer-Policy").value_or(""), "no-referrer");
  EXPECT_EQ(resp.Get("X-Frame-Options").value_or(""), "DENY");
  EXPECT_FALSE(resp.Get("Strict-Transport-Security").has_value());
  EXPECT_NE(resp.Get("Cache-Control").value_or(""), "no-store");
}

TEST(SecurityHeadersStage, HstsOnlyWithTls) {
  Harness h;
  SecurityHeadersOptions o;
  o.tls = true;
  h.pipeline.Use(SecurityHeadersStage(o));
  auto req = Make(Method::kGet, "GET", "/x");
  auto resp = h.Run(req);
  EXPECT_NE(resp.Get("Strict-Transport-Security").value_or("").find("max-age=31536000"), std::string::npos)
      << resp.Get("Strict-Transport-Security").value_or("<none>");
}

TEST(SecurityHeadersStage, CustomReferrerPolicy) {
  Harness h;
  SecurityHeadersOptions o;
  o.referrer_policy = "strict-origin";
  h.pipeline.Use(SecurityHeadersStage(o));
  auto req = Make(Method::kGet, "GET", "/x");
  EXPECT_EQ(h.Run(req).Get("Referrer-Policy").value_or(""), "strict-origin");
}

TEST(SecurityHeadersStage, NoStoreOnlyOnErrors) {
  for (int status : {200, 204, 302, 399, 400, 404, 500, 503}) {
    SCOPED_TRACE(status);
    Harness h(status);
    h.pipeline.Use(SecurityHeadersStage({}));
    auto req = Make(Method::kGet, "GET", "/x");
    auto resp = h.Run(req);
    const bool no_store = resp.Get("Cache-Control").value_or("").find("no-store") != std::string::npos;
    EXPECT_EQ(no_store, status >= 400);
    EXPECT_EQ(resp.Get("X-Content-Type-Options").value_or(""), "nosniff");
  }
}

// --- metrics and the pipeline itself

TEST(MetricsStage, RecordsRouteTemplateAndStatus) {
  obs::HttpMetrics metrics(1);
  Harness h(201);
  h.pipeline.Use(MetricsStage(metrics));
  auto req = Make(Method::kPost, "POST", "/items/42");
  req.set_route("/items/{id}", {});
  h.Run(req);
  std::string out;
  metrics.Render(out);
  EXPECT_NE(out.find("http_requests_total{method=\"POST\",route=\"/items/{id}\",status=\"201\"} 1"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("/items/42"), std::string::npos) << "raw path used as a label:\n" << out;
}

TEST(Pipeline, StagesRunOutermostFirstAndCanBeRemoved) {
  std::vector<std::string> order;
  Pipeline p([&](Request&) -> Task<Response> {
    order.push_back("terminal");
    co_return Response::Empty(204);
  });
  auto stage = [&](std::string name) {
    return Middleware{name, [&order, name](Request& r, Next next) -> Task<Response> {
                        order.push_back(name + ">");
                        Response resp = co_await next(r);
                        order.push_back("<" + name);
                        co_return resp;
                      }};
  };
  p.Use(stage("a"));
  p.Use(stage("b"));
  auto req = Make(Method::kGet, "GET", "/");
  RunTask(p.Run(req));
  EXPECT_EQ(order, (std::vector<std::string>{"a>", "b>", "terminal", "<b", "<a"}));
  EXPECT_TRUE(p.Remove("a"));
  EXPECT_FALSE(p.Remove("a"));
  order.clear();
  RunTask(p.Run(req));
  EXPECT_EQ(order, (std::vector<std::string>{"b>", "terminal", "<b"}));
}

}  // namespace
}  // namespace basalt::http

namespace basalt::http {
namespace {

TEST(Pipeline, AStageThatDoesNotApplyIsPassedOverAndSeesWhatOuterStagesSet) {
  std::vector<std::string> order;
  Pipeline p([&](Request&) -> Task<Response> {
    order.push_back("terminal");
    co_return Response::Empty(204);
  });
  // The outer stage sets the request id the inner stage's predicate looks at.
  p.Use(Middleware{"outer", [&order](Request& r, Next next) -> Task<Response> {
                     order.push_back("outer");
                     r.set_request_id(std::string(r.Header("X-Mark").value_or("")));
                     co_return co_await next(r);
                   }});
  p.Use(Middleware{"marked", [&order](Request& r, Next next) -> Task<Response> {
                      order.push_back("marked");
                      Response res = co_await next(r);
                      res.Set("X-Marked", "yes");
                      co_return res;
                    },
                    [](const Request& r) { return r.request_id() == "on"; }});
  p.Use(Middleware{"inner", [&order](Request& r, Next next) -> Task<Response> {
                     order.push_back("inner");
                     co_return co_await next(r);
                   }});

  auto off = Make(Method::kGet, "GET", "/", {{"X-Mark", "off"}});
  const Response skipped = RunTask(p.Run(off));
  EXPECT_EQ(order, (std::vector<std::string>{"outer", "inner", "terminal"}));
  EXPECT_FALSE(skipped.Get("X-Marked"));

  order.clear();
  auto on = Make(Method::kGet, "GET", "/", {{"X-Mark", "on"}});
  const Response ran = RunTask(p.Run(on));
  EXPECT_EQ(order, (std::vector<std::string>{"outer", "marked", "inner", "terminal"}));
  EXPECT_EQ(ran.Get("X-Marked"), "yes");
}

}  // namespace
}  // namespace basalt::http

namespace basalt::http {
namespace {

// An inline stage (hooks, no coroutine) that records its way in and out, with the status it saw.
Middleware Inline(std::vector<std::string>& order, std::string name,
                  std::function<bool(const Request&)> applies = nullptr) {
  Middleware m{.name = name};
  m.before = [&order, name](Request&) { order.push_back(name + ">"); };
  m.after = [&order, name](Request&, Response& res) { order.push_back("<" + name + std::to_string(res.status)); };
  m.applies = std::move(applies);
  return m;
}

TEST(Pipeline, InlineStagesKeepOnionOrderAroundCoroutineStagesAndSeeAThrowAsA500) {
  std::vector<std::string> order;
  Pipeline p([&](Request& r) -> Task<Response> {
    order.push_back("terminal");
    if (r.Header("X-Throw")) throw std::runtime_error("handler bug: secret detail");
    co_return Response::Empty(204);
  });
  p.Use(Inline(order, "a"));
  p.Use(Middleware{"b", [&order](Request& r, Next next) -> Task<Response> {
                     order.push_back("b>");
                     Response res = co_await next(r);
                     order.push_back("<b" + std::to_string(res.status));
                     co_return res;
                   }});
  p.Use(Inline(order, "c", [](const Request& r) { return r.Header("X-C").has_value(); }));
  p.Use(Inline(order, "d"));

  auto plain = Make(Method::kGet, "GET", "/");
  EXPECT_EQ(RunTask(p.Run(plain)).status, 204);
  EXPECT_EQ(order, (std::vector<std::string>{"a>", "b>", "d>", "terminal", "<d204", "<b204", "<a204"}));

  order.clear();
  auto with_c = Make(Method::kGet, "GET", "/", {{"X-C", "1"}});
  RunTask(p.Run(with_c));
  EXPECT_EQ(order, (std::vector<std::string>{"a>", "b>", "c>", "d>", "terminal", "<d204", "<c204", "<b204", "<a204"}));

  // The throw becomes a 500 in the innermost inline frame: every stage outside sees the 500, and
  // the response carries no detail of the exception.
  order.clear();
  auto throws = Make(Method::kGet, "GET", "/", {{"X-Throw", "1"}});
  const Response res = RunTask(p.Run(throws));
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.body.find("secret detail"), std::string::npos) << res.body;
  EXPECT_EQ(order, (std::vector<std::string>{"a>", "b>", "d>", "terminal", "<d500", "<b500", "<a500"}));
}

TEST(MetricsStage, AThrowingHandlerIsCountedAsA500AndLeavesNothingInFlight) {
  obs::HttpMetrics metrics(1);
  Pipeline p([](Request&) -> Task<Response> {
    throw std::runtime_error("boom");
    co_return Response::Empty(204);
  });
  p.Use(RequestIdStage());
  p.Use(MetricsStage(metrics));
  auto req = Make(Method::kGet, "GET", "/x");
  req.set_route("/x", {});
  const Response res = RunTask(p.Run(req));
  EXPECT_EQ(res.status, 500);
  EXPECT_TRUE(res.Get("X-Request-Id").has_value()) << "the outer stage did not see the 500";
  std::string out;
  metrics.Render(out);
  EXPECT_NE(out.find("http_requests_total{method=\"GET\",route=\"/x\",status=\"500\"} 1"), std::string::npos) << out;
  EXPECT_NE(out.find("\nhttp_requests_in_flight 0\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace basalt::http
