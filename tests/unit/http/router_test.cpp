#include "http/router.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "run_task.hpp"

namespace basalt::http {
namespace {

using testing::RunTask;

Task<Response> Ok(Request& request) { co_return Response::Text(200, std::string(request.route())); }

Handler Named(std::string name) {
  return [name](Request&) -> Task<Response> { co_return Response::Text(200, name); };
}

std::set<std::string> AllowSet(const std::string& allow) {
  std::set<std::string> out;
  std::size_t start = 0;
  while (start <= allow.size()) {
    std::size_t comma = allow.find(',', start);
    if (comma == std::string::npos) comma = allow.size();
    std::string item = allow.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.insert(item);
    start = comma + 1;
  }
  return out;
}

std::string ParamOf(const RouteMatch& m, std::string_view name) {
  for (const auto& p : m.params) {
    if (p.name == name) return std::string(p.value);
  }
  return "<absent>";
}

TEST(Router, LiteralBeatsParameterWhateverTheOrder) {
  for (bool literal_first : {true, false}) {
    SCOPED_TRACE(literal_first);
    Router r;
    if (literal_first) {
      ASSERT_TRUE(r.Add(Method::kGet, "/a/new", Ok).has_value());
    }
    ASSERT_TRUE(r.Add(Method::kGet, "/a/{id}", Ok).has_value());
    if (!literal_first) {
      ASSERT_TRUE(r.Add(Method::kGet, "/a/new", Ok).has_value());
    }

    auto lit = r.Find(Method::kGet, "/a/new");
    ASSERT_EQ(lit.kind, RouteMatch::Kind::kFound);
    EXPECT_EQ(lit.route->pattern, "/a/new");
    EXPECT_TRUE(lit.params.empty());

    auto param = r.Find(Method::kGet, "/a/123");
    ASSERT_EQ(param.kind, RouteMatch::Kind::kFound);
    EXPECT_EQ(param.route->pattern, "/a/{id}");
    EXPECT_EQ(ParamOf(param, "id"), "123");
  }
}

TEST(Router, CapturesSeveralParameters) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/api/v1/collections/{name}/records/{id}", Ok).has_value());
  const std::string path = "/api/v1/collections/posts/records/0192abc";
  auto m = r.Find(Method::kGet, path);
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(ParamOf(m, "name"), "posts");
  EXPECT_EQ(ParamOf(m, "id"), "0192abc");
  EXPECT_EQ(r.Find(Method::kGet, "/api/v1/collections/posts/records").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(r.Find(Method::kGet, "/api/v1/collections/posts/records/1/extra").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, RootRoute) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/", Ok).has_value());
  EXPECT_EQ(r.Find(Method::kGet, "/").kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(r.Find(Method::kGet, "/x").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, NotFoundVersusMethodNotAllowed) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/healthz", Ok).has_value());
  ASSERT_TRUE(r.Add(Method::kGet, "/items/{id}", Ok).has_value());
  ASSERT_TRUE(r.Add(Method::kDelete, "/items/{id}", Ok).has_value());

  EXPECT_EQ(r.Find(Method::kGet, "/nope").kind, RouteMatch::Kind::kNotFound);

  auto m = r.Find(Method::kPost, "/healthz");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(AllowSet(m.allow), (std::set<std::string>{"GET", "HEAD", "OPTIONS"})) << m.allow;

  auto items = r.Find(Method::kPut, "/items/7");
  EXPECT_EQ(items.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(AllowSet(items.allow), (std::set<std::string>{"GET", "HEAD", "DELETE", "OPTIONS"})) << items.allow;
}

TEST(Router, HeadFallsBackToGet) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/healthz", Ok).has_value());
  auto m = r.Find(Method::kHead, "/healthz");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->method, Method::kGet);

  // An explicit HEAD route wins over the fallback.
  ASSERT_TRUE(r.Add(Method::kHead, "/healthz", Ok).has_value());
  auto explicit_head = r.Find(Method::kHead, "/healthz");
  ASSERT_EQ(explicit_head.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(explicit_head.route->method, Method::kHead);

  // No fallback the other way round, nor from POST.
  Router post_only;
  ASSERT_TRUE(post_only.Add(Method::kPost, "/x", Ok).has_value());
  EXPECT_EQ(post_only.Find(Method::kHead, "/x").kind, RouteMatch::Kind::kMethodNotAllowed);
}

TEST(Router, DuplicateRouteIsAnError) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/a/{id}", Ok).has_value());
  auto dup = r.Add(Method::kGet, "/a/{id}", Ok);
  EXPECT_FALSE(dup.has_value());
  // Same shape, other parameter name: conflicts with the sibling.
  EXPECT_FALSE(r.Add(Method::kPost, "/a/{other}", Ok).has_value());
  // Same pattern, other method: fine.
  EXPECT_TRUE(r.Add(Method::kDelete, "/a/{id}", Ok).has_value());
}

TEST(Router, MalformedPatternIsAnError) {
  for (const char* pattern : {"", "no-leading-slash", "/a/{", "/a/{}", "/a/{id", "/a/id}", "/a/{i{d}"}) {
    SCOPED_TRACE(pattern);
    Router r;
    EXPECT_FALSE(r.Add(Method::kGet, pattern, Ok).has_value());
  }
}

// Decision: a trailing slash is significant. "/a/" does not match the route "/a" (and the other
// way round); no redirect is made.
TEST(Router, TrailingSlashIsSignificant) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/a", Ok).has_value());
  EXPECT_EQ(r.Find(Method::kGet, "/a").kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(r.Find(Method::kGet, "/a/").kind, RouteMatch::Kind::kNotFound);
  ASSERT_TRUE(r.Add(Method::kGet, "/b/{id}", Ok).has_value());
  EXPECT_EQ(r.Find(Method::kGet, "/b/1/").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, ThousandRoutesStillMatchCorrectly) {
  Router r;
  for (int i = 0; i < 1000; ++i) {
    const std::string base = "/r" + std::to_string(i);
    ASSERT_TRUE(r.Add(Method::kGet, base + "/items/{id}", Ok).has_value());
    ASSERT_TRUE(r.Add(Method::kGet, base + "/items/special", Ok).has_value());
    ASSERT_TRUE(r.Add(Method::kPost, base, Ok).has_value());
  }
  for (int i = 0; i < 1000; i += 7) {
    const std::string base = "/r" + std::to_string(i);
    const std::string path = base + "/items/x" + std::to_string(i);
    auto m = r.Find(Method::kGet, path);
    ASSERT_EQ(m.kind, RouteMatch::Kind::kFound) << path;
    EXPECT_EQ(m.route->pattern, base + "/items/{id}");
    EXPECT_EQ(ParamOf(m, "id"), "x" + std::to_string(i));
    auto special = r.Find(Method::kGet, base + "/items/special");
    ASSERT_EQ(special.kind, RouteMatch::Kind::kFound);
    EXPECT_EQ(special.route->pattern, base + "/items/special");
    EXPECT_EQ(r.Find(Method::kPost, base).kind, RouteMatch::Kind::kFound);
    EXPECT_EQ(r.Find(Method::kGet, base).kind, RouteMatch::Kind::kMethodNotAllowed);
  }
  EXPECT_EQ(r.Find(Method::kGet, "/r1000/items/1").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, RouteOptionsAreKept) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kPost, "/small", Ok, RouteOptions{.max_body_bytes = 10}).has_value());
  auto m = r.Find(Method::kPost, "/small");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->options.max_body_bytes, 10u);
}

// --- Dispatch: the terminal stage.

Request MakeRequest(Method method, std::string_view name, std::string_view target) {
  return Request(method, name, target, 11, {}, {}, "127.0.0.1");
}

Response Routed(const Router& router, Request& request) {
  RouteMatch match = router.Find(request.method(), request.path());
  request.set_match(&match);
  if (match.route != nullptr) request.set_route(match.route->pattern, match.params);
  return RunTask(Dispatch(request));
}

boost::json::object Body(const Response& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  return (!ec && v.is_object()) ? v.as_object() : boost::json::object{};
}

TEST(Dispatch, RunsTheMatchedHandlerWithParams) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/items/{id}", [](Request& req) -> Task<Response> {
    co_return Response::Text(200, std::string(req.Param("id")));
  }).has_value());
  auto req = MakeRequest(Method::kGet, "GET", "/items/42?x=1");
  auto resp = Routed(r, req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "42");
}

TEST(Dispatch, NotFoundAndMethodNotAllowedAreProblems) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/healthz", Named("h")).has_value());
  auto nf_req = MakeRequest(Method::kGet, "GET", "/zzz");
  nf_req.set_request_id("rid-1");
  auto nf = Routed(r, nf_req);
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(Body(nf)["code"], "not_found");
  EXPECT_EQ(Body(nf)["request_id"], "rid-1");

  auto na_req = MakeRequest(Method::kPost, "POST", "/healthz");
  auto na = Routed(r, na_req);
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(Body(na)["code"], "method_not_allowed");
  ASSERT_TRUE(na.Get("Allow").has_value());
  EXPECT_EQ(AllowSet(std::string(*na.Get("Allow"))), (std::set<std::string>{"GET", "HEAD", "OPTIONS"}));
}

TEST(Dispatch, OptionsAnswers204WithAllow) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/healthz", Named("h")).has_value());
  auto req = MakeRequest(Method::kOptions, "OPTIONS", "/healthz");
  auto resp = Routed(r, req);
  EXPECT_EQ(resp.status, 204);
  ASSERT_TRUE(resp.Get("Allow").has_value());
  EXPECT_EQ(AllowSet(std::string(*resp.Get("Allow"))), (std::set<std::string>{"GET", "HEAD", "OPTIONS"}));
}

TEST(Dispatch, ThrowingHandlerIs500WithoutDetail) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/throw", [](Request&) -> Task<Response> {
    throw std::runtime_error("secret detail");
    co_return Response::Empty(204);
  }).has_value());
  auto req = MakeRequest(Method::kGet, "GET", "/throw");
  req.set_request_id("rid-500");
  auto resp = Routed(r, req);
  EXPECT_EQ(resp.status, 500);
  EXPECT_EQ(Body(resp)["code"], "internal_error");
  EXPECT_EQ(Body(resp)["request_id"], "rid-500");
  EXPECT_EQ(resp.body.find("secret detail"), std::string::npos) << resp.body;
}

TEST(Dispatch, EarlyErrorIsAnsweredAsProblem) {
  Router r;
  ASSERT_TRUE(r.Add(Method::kGet, "/healthz", Named("h")).has_value());
  core::Error err = core::Error::Make(core::ErrorCode::kHeadersTooLarge, "header block too large", "beast: header_limit");
  auto req = MakeRequest(Method::kGet, "GET", "/healthz");
  req.set_early_error(&err);
  auto resp = Routed(r, req);
  EXPECT_EQ(resp.status, 431);
  EXPECT_EQ(Body(resp)["code"], "headers_too_large");
  EXPECT_EQ(resp.body.find("beast"), std::string::npos) << resp.body;
}

}  // namespace
}  // namespace basalt::http
