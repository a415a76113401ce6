// Rate limits against the real binary, with low limits configured per test: headers on every
// counted response, 429 problem+json with Retry-After, recovery after the reset, identities with
// separate buckets, per-route overrides (also for a route that does not exist yet), the built-in
// auth-route rates, exempt probes, and a bad setting refused at start.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

constexpr const char* kToken = "rate-limit-test-admin-token-0123456789";
const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", std::string("Bearer ") + kToken}};

std::string Code(const HttpResponse& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("code")) return "";
  return std::string(v.as_object().at("code").as_string());
}

BasaltProcess Start(std::string default_rate, std::string routes = "") {
  return BasaltProcess(ProcessOptions{{},
                                      {{"BASALT_AUTH__ADMIN_TOKEN", kToken},
                                       {"BASALT_RATE_LIMIT__DEFAULT", std::move(default_rate)},
                                       {"BASALT_RATE_LIMIT__ROUTES", std::move(routes)},
                                       {"BASALT_LOG__ACCESS", "false"}},
                                      true});
}

TEST(RateLimit, RefusesWith429ThenRecoversAfterTheReset) {
  auto server = Start("1/s 3");
  ASSERT_TRUE(server.started()) << server.start_error();
  for (int i = 0; i < 3; ++i) {
    auto r = Get(server.port(), "/api/v1/openapi.json");
    ASSERT_EQ(r.status, 200) << i << " " << r.body;
    EXPECT_EQ(r.Header("RateLimit-Limit").value_or(""), "3");
    EXPECT_EQ(r.Header("RateLimit-Remaining").value_or(""), std::to_string(2 - i));
    EXPECT_FALSE(r.Header("RateLimit-Reset").value_or("").empty());
  }
  auto refused = Get(server.port(), "/api/v1/openapi.json");
  // The three may have spread over more than a second on a loaded machine: refill allowed one.
  if (refused.status == 200) refused = Get(server.port(), "/api/v1/openapi.json");
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.Header("Content-Type").value_or(""), "application/problem+json");
  EXPECT_EQ(Code(refused), "rate_limited");
  EXPECT_EQ(refused.Header("Retry-After").value_or(""), "1");
  EXPECT_EQ(refused.Header("RateLimit-Limit").value_or(""), "3");
  EXPECT_EQ(refused.Header("RateLimit-Remaining").value_or(""), "0");
  EXPECT_FALSE(refused.Header("X-Request-Id").value_or("").empty());
  // Probes are never limited and carry no rate-limit headers.
  auto health = Get(server.port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_FALSE(health.HasHeader("RateLimit-Limit"));
  EXPECT_EQ(Get(server.port(), "/readyz").status, 200);
  EXPECT_EQ(Get(server.port(), "/metrics").status, 200);
  // Recovers once the refill came (Retry-After said 1 s).
  EXPECT_TRUE(WaitUntil([&] { return Get(server.port(), "/api/v1/openapi.json").status == 200; }, 10s));
}

TEST(RateLimit, IdentitiesHaveSeparateBuckets) {
  auto server = Start("1/m 2");
  ASSERT_TRUE(server.started()) << server.start_error();
  // Anonymous (keyed by 127.0.0.1) uses up its bucket...
  EXPECT_NE(Get(server.port(), "/api/v1/openapi.json").status, 429);
  EXPECT_NE(Get(server.port(), "/api/v1/openapi.json").status, 429);
  EXPECT_EQ(Get(server.port(), "/api/v1/openapi.json").status, 429);
  // ...the admin token, from the same address, still has its own.
  auto admin = Get(server.port(), "/api/v1/collections", kAdmin);
  EXPECT_EQ(admin.status, 200) << admin.body;
  EXPECT_EQ(admin.Header("RateLimit-Remaining").value_or(""), "1");
  EXPECT_EQ(Get(server.port(), "/api/v1/collections", kAdmin).status, 200);
  EXPECT_EQ(Get(server.port(), "/api/v1/collections", kAdmin).status, 429);
}

TEST(RateLimit, PerRouteOverrideHasItsOwnBucket) {
  auto server = Start("100/s 100", "/api/v1/openapi.json 1/m 1,/api/v1/not-yet/{id} 1/m 1");
  ASSERT_TRUE(server.started()) << server.start_error();
  auto first = Get(server.port(), "/api/v1/openapi.json");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("RateLimit-Limit").value_or(""), "1");
  EXPECT_EQ(first.Header("RateLimit-Reset").value_or(""), "60");
  auto second = Get(server.port(), "/api/v1/openapi.json");
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(second.Header("Retry-After").value_or(""), "60");
  // Other routes use the default bucket, untouched.
  auto other = Get(server.port(), "/api/v1/collections", kAdmin);
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.Header("RateLimit-Limit").value_or(""), "100");
}

TEST(RateLimit, BuiltInAuthRatesApplyBeforeTheRoutesExist) {
  auto server = Start("100/s 100");  // BASALT_RATE_LIMIT__ROUTES="": the built-in rates stay
  ASSERT_TRUE(server.started()) << server.start_error();
  const std::vector<std::pair<std::string, std::string>> json = {{"Content-Type", "application/json"}};
  // Login: bursts of 10 per client address. One address per attempt, so the per-account lockout
  // (auth.lockout_threshold, 5 failures) does not answer 429 first.
  for (int i = 0; i < 10; ++i) {
    auto r = Request(server.port(), "POST", "/api/v1/auth/login", json,
                     R"({"email":"a)" + std::to_string(i) + R"(@b.c","password":"x"})");
    ASSERT_NE(r.status, 429) << i;
    EXPECT_EQ(r.Header("RateLimit-Limit").value_or(""), "10");
  }
  auto refused = Request(server.port(), "POST", "/api/v1/auth/login", json, R"({"email":"a10@b.c","password":"x"})");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(Code(refused), "rate_limited");
  // Registration has its own, tighter bucket (5).
  auto reg = Request(server.port(), "POST", "/api/v1/auth/register", json, "{}");
  EXPECT_NE(reg.status, 429);
  EXPECT_EQ(reg.Header("RateLimit-Limit").value_or(""), "5");
}

TEST(RateLimit, CanBeTurnedOff) {
  BasaltProcess server(ProcessOptions{{}, {{"BASALT_RATE_LIMIT__ENABLED", "false"},
                                           {"BASALT_RATE_LIMIT__DEFAULT", "1/m 1"}}, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  for (int i = 0; i < 3; ++i) {
    auto r = Get(server.port(), "/api/v1/openapi.json");
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.HasHeader("RateLimit-Limit"));
  }
}

TEST(RateLimit, BadSettingsAreRefusedAtStart) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"BASALT_RATE_LIMIT__DEFAULT", "fast"},
           {"BASALT_RATE_LIMIT__DEFAULT", "0/s"},
           {"BASALT_RATE_LIMIT__DEFAULT", "10/d"},
           {"BASALT_RATE_LIMIT__DEFAULT", "10/s 0"},
           {"BASALT_RATE_LIMIT__ROUTES", "api/v1/x 1/s"},
           {"BASALT_RATE_LIMIT__ROUTES", "/api/v1/x"},
       }) {
    auto r = RunBasalt({"config", "check", "--data-dir", "{tmp}"}, {{key, value}});
    EXPECT_EQ(r.exit_code, 2) << key << "=" << value << "\n" << r.output;
    EXPECT_NE(r.output.find(key == "BASALT_RATE_LIMIT__DEFAULT" ? "rate_limit.default" : "rate_limit.routes"),
              std::string::npos)
        << r.output;
  }
  auto ok = RunBasalt({"config", "check", "--data-dir", "{tmp}"},
                      {{"BASALT_RATE_LIMIT__DEFAULT", "5/m"}, {"BASALT_RATE_LIMIT__ROUTES", "/a 1/h 3, /b/{id} 2/s"}});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

}  // namespace
}  // namespace basalt::testing
