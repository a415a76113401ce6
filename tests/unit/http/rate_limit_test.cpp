/// GCRA math with an injected clock, the memory bound, and the rate_limit stage (keys, buckets,
/// headers, 429 problem, exempt probes).

#include "http/rate_limit.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "run_task.hpp"

namespace basalt::http {
namespace {

using namespace std::chrono_literals;
using testing::RunTask;

constexpr std::int64_t kSec = 1'000'000'000;

/// A limiter on a clock the test moves by hand.
struct Clocked {
  explicit Clocked(GcraOptions options = {}) {
    options.now_ns = [this] { return now; };
    limiter = std::make_shared<GcraLimiter>(std::move(options));
  }
  std::int64_t now = 1000 * kSec;
  std::shared_ptr<GcraLimiter> limiter;
};

TEST(Gcra, BurstThenSteadyRate) {
  Clocked c;
  const Quota q{.count = 10, .period = 1s, .burst = 5};  // one every 100 ms, bursts of 5
  for (std::uint32_t i = 0; i < 5; ++i) {
    const auto d = c.limiter->Check("k", q);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5u);
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.reset, 1s);  // (i+1)*100 ms, rounded up
  }
  auto refused = c.limiter->Check("k", q);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0u);
  EXPECT_EQ(refused.retry_after, 1s);  // 100 ms, rounded up to the 1 s minimum
  EXPECT_EQ(refused.reset, 1s);        // 500 ms until whole again
  // A refused request consumes nothing: 100 ms later exactly one more passes.
  c.now += 100'000'000;
  EXPECT_TRUE(c.limiter->Check("k", q).allowed);
  EXPECT_FALSE(c.limiter->Check("k", q).allowed);
  // After a full period of silence the whole burst is back.
  c.now += kSec;
  const auto d = c.limiter->Check("k", q);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 4u);
}

TEST(Gcra, ALoosenedQuotaTakesOverWithinOneOfItsIntervals) {
  // What a configuration reload does to a key that has state: the key counts as having used the
  // new quota's whole burst, not the old quota's minute-long debt.
  Clocked c;
  const Quota strict{.count = 1, .period = 60s, .burst = 2};
  ASSERT_TRUE(c.limiter->Check("k", strict).allowed);
  ASSERT_TRUE(c.limiter->Check("k", strict).allowed);
  ASSERT_FALSE(c.limiter->Check("k", strict).allowed);  // a minute until the next one
  const Quota loose{.count = 1000, .period = 1s, .burst = 3};  // 1 ms interval
  EXPECT_FALSE(c.limiter->Check("k", loose).allowed);
  c.now += kSec / 1000;
  EXPECT_TRUE(c.limiter->Check("k", loose).allowed);
  EXPECT_FALSE(c.limiter->Check("k", loose).allowed);
  c.now += 3 * kSec / 1000;  // the loose quota's whole burst is back
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(c.limiter->Check("k", loose).allowed) << i;
  EXPECT_FALSE(c.limiter->Check("k", loose).allowed);
  // And back: the stricter quota counts what the key used just now.
  EXPECT_FALSE(c.limiter->Check("k", Quota{.count = 1, .period = 60s, .burst = 1}).allowed);
}

TEST(Gcra, SlowRatesRoundRetryAfterUp) {
  Clocked c;
  const Quota q{.count = 2, .period = 60s, .burst = 1};  // one every 30 s
  EXPECT_TRUE(c.limiter->Check("k", q).allowed);
  auto d = c.limiter->Check("k", q);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 30s);
  c.now += 29 * kSec + 1;
  d = c.limiter->Check("k", q);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 1s);  // 1 s minus 1 ns, rounded up
  c.now += kSec;
  EXPECT_TRUE(c.limiter->Check("k", q).allowed);
}

TEST(Gcra, CostCountsAsSeveralRequests) {
  Clocked c;
  const Quota q{.count = 1, .period = 1s, .burst = 10};
  auto d = c.limiter->Check("k", q, 7);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 3u);
  d = c.limiter->Check("k", q, 4);  // would need 11
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 3u);
  EXPECT_EQ(d.retry_after, 1s);
  EXPECT_TRUE(c.limiter->Check("k", q, 3).allowed);
}

TEST(Gcra, KeysAreIndependent) {
  Clocked c;
  const Quota q{.count = 1, .period = 1s, .burst = 1};
  EXPECT_TRUE(c.limiter->Check("a", q).allowed);
  EXPECT_FALSE(c.limiter->Check("a", q).allowed);
  EXPECT_TRUE(c.limiter->Check("b", q).allowed);
}

TEST(Gcra, MemoryIsBoundedAndIdleKeysGoFirst) {
  Clocked c(GcraOptions{.shards = 1, .max_keys = 64});
  const Quota q{.count = 1, .period = 1s, .burst = 1};
  EXPECT_TRUE(c.limiter->Check("busy", q).allowed);
  for (int i = 0; i < 1000; ++i) {
    c.limiter->Check("k" + std::to_string(i), q);
    c.now += 2 * kSec;  // every earlier key is idle again
    c.limiter->Check("busy", q);  // but "busy" stays busy
    EXPECT_LE(c.limiter->size(), 64u);
  }
  EXPECT_FALSE(c.limiter->Check("busy", q).allowed);  // its state survived the evictions
}

// The bench's "1000000000/s 1000000": an emission interval of 1 ns, so the whole tolerance (burst
// x interval) is 1 ms. A request whose clock reading is older than one another request already
// recorded (its thread read the clock, then was preempted or waited for the shard's lock while
// another thread went through) must not be refused: that stale reading is not a client sending
// too much. The clock here replays such an interleaving: 2 ms, then a reading from before.
TEST(Gcra, ReadingOlderThanTheLastRecordedOneIsNotRefused) {
  Clocked c;
  const Quota q{.count = 1'000'000'000, .period = 1s, .burst = 1'000'000};
  const std::int64_t start = c.now;
  c.now = start + 2'000'000;
  ASSERT_TRUE(c.limiter->Check("k", q).allowed);
  c.now = start;  // read before the request above, applied after it
  EXPECT_TRUE(c.limiter->Check("k", q).allowed);
  // The limit still holds: the whole burst at one instant passes, one more does not.
  Clocked d;
  for (std::uint32_t i = 0; i < 1'000'000; ++i) ASSERT_TRUE(d.limiter->Check("k", q).allowed) << i;
  EXPECT_FALSE(d.limiter->Check("k", q).allowed);
}

// A cost larger than the burst can never pass; it must not overflow the TAT arithmetic either
// (one request per hour: an interval of 3.6e12 ns times a 32-bit cost exceeds int64).
TEST(Gcra, CostAboveTheBurstIsRefusedWithoutOverflow) {
  Clocked c;
  const Quota q{.count = 1, .period = 3600s, .burst = 1'000'000};
  const auto d = c.limiter->Check("k", q, 4'000'000'000u);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 1'000'000u);
  EXPECT_TRUE(c.limiter->Check("k", q, 1'000'000).allowed);
  EXPECT_FALSE(c.limiter->Check("k", q).allowed);
}

// ---- the stage ----

struct StageHarness {
  explicit StageHarness(RateLimitOptions options)
      : pipeline([this](Request&) -> Task<Response> {
          ++handled;
          co_return Response::Json(200, "{}");
        }) {
    pipeline.Use(RateLimitStage(clock.limiter, std::move(options)));
  }
  Response Run(std::string_view path, std::string_view route = {}, std::string_view ip = "10.0.0.1",
               Principal principal = {}) {
    Request r(Method::kGet, "GET", path, 11, {}, {}, ip);
    r.set_route(route, {});
    r.set_principal(std::move(principal));
    r.set_request_id("rid");
    return RunTask(pipeline.Run(r));
  }
  Clocked clock;
  int handled = 0;
  Pipeline pipeline;
};

std::string H(const Response& r, std::string_view name) { return std::string(r.Get(name).value_or("")); }

RateLimitOptions Tight() {
  RateLimitOptions o;
  o.default_quota = Quota{.count = 1, .period = 1s, .burst = 2};
  o.routes = {{"/api/v1/auth/login", Quota{.count = 1, .period = 60s, .burst = 1}}};
  return o;
}

TEST(RateLimitStage, HeadersThen429ProblemWithRetryAfter) {
  StageHarness h(Tight());
  auto a = h.Run("/api/v1/x", "/api/v1/x");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(H(a, "RateLimit-Limit"), "2");
  EXPECT_EQ(H(a, "RateLimit-Remaining"), "1");
  EXPECT_EQ(H(a, "RateLimit-Reset"), "1");
  EXPECT_EQ(h.Run("/api/v1/y", "/api/v1/y").status, 200);  // same default bucket, other route
  auto refused = h.Run("/api/v1/x", "/api/v1/x");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(H(refused, "Retry-After"), "1");
  EXPECT_EQ(H(refused, "RateLimit-Remaining"), "0");
  EXPECT_EQ(H(refused, "Content-Type"), "application/problem+json");
  const auto body = boost::json::parse(refused.body).as_object();
  EXPECT_EQ(body.at("code").as_string(), "rate_limited");
  EXPECT_EQ(body.at("status").as_int64(), 429);
  EXPECT_EQ(h.handled, 2);
  h.clock.now += kSec;
  EXPECT_EQ(h.Run("/api/v1/x", "/api/v1/x").status, 200);
}

TEST(RateLimitStage, IdentitiesDoNotShareBuckets) {
  StageHarness h(Tight());
  Principal user;
  user.kind = Principal::Kind::kUser;
  user.id = "u1";
  Principal other = user;
  other.id = "u2";
  for (int i = 0; i < 2; ++i) EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1", user).status, 200);
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1", user).status, 429);
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1", other).status, 200);  // same address, other user
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1").status, 200);         // anonymous: keyed by address
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1").status, 200);
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.1").status, 429);
  EXPECT_EQ(h.Run("/a", "/a", "10.0.0.2").status, 200);
}

TEST(RateLimitStage, RouteOverrideHasItsOwnBucketAndAppliesBeforeTheRouteExists) {
  StageHarness h(Tight());
  // No route matched (404 to be): looked up by path.
  auto first = h.Run("/api/v1/auth/login");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(H(first, "RateLimit-Limit"), "1");
  EXPECT_EQ(H(first, "RateLimit-Reset"), "60");
  auto second = h.Run("/api/v1/auth/login", "/api/v1/auth/login");
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(H(second, "Retry-After"), "60");
  EXPECT_EQ(h.Run("/api/v1/other").status, 200);  // the default bucket is untouched
  EXPECT_EQ(H(h.Run("/api/v1/other"), "RateLimit-Limit"), "2");
}

TEST(RateLimitStage, ProbesAreExemptAndCarryNoHeaders) {
  StageHarness h(Tight());
  for (int i = 0; i < 10; ++i) {
    auto r = h.Run("/healthz", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.Get("RateLimit-Limit").has_value());
  }
  EXPECT_EQ(h.Run("/metrics", "/metrics").status, 200);
  EXPECT_EQ(h.Run("/readyz", "/readyz").status, 200);
}

}  // namespace
}  // namespace basalt::http
