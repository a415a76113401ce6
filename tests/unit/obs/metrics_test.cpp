#include "obs/metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace basalt::obs {
namespace {

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// Value of the sample whose line starts with `series` followed by a space; -1 when absent.
double SampleValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

TEST(HttpMetricsTest, HelpAndTypeOncePerFamily) {
  HttpMetrics m(3);
  m.Record(0, "GET", "/healthz", 200, 0.001);
  m.Record(1, "GET", "/healthz", 200, 0.002);
  m.Record(2, "POST", "/api/v1/x", 201, 0.3);
  m.Record(2, "GET", "/healthz", 503, 0.004);
  std::string out;
  m.Render(out);
  for (const char* family :
       {"http_requests_total", "http_request_duration_seconds", "http_requests_in_flight"}) {
    EXPECT_EQ(CountOccurrences(out, std::string("# HELP ") + family + " "), 1) << family;
    EXPECT_EQ(CountOccurrences(out, std::string("# TYPE ") + family + " "), 1) << family;
  }
  EXPECT_NE(out.find("# TYPE http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE http_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE http_requests_in_flight gauge\n"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
}

TEST(HttpMetricsTest, CountsAreSummedAcrossShards) {
  HttpMetrics m(4);
  for (unsigned s = 0; s < 4; ++s) {
    for (unsigned i = 0; i <= s; ++i) m.Record(s, "GET", "/healthz", 200, 0.001);
  }
  m.Record(3, "GET", "/healthz", 404, 0.001);
  std::string out;
  m.Render(out);
  EXPECT_EQ(SampleValue(out, R"(http_requests_total{method="GET",route="/healthz",status="200"})"),
            10);
  EXPECT_EQ(SampleValue(out, R"(http_requests_total{method="GET",route="/healthz",status="404"})"),
            1);
  EXPECT_EQ(SampleValue(out, R"(http_request_duration_seconds_count{method="GET",route="/healthz"})"),
            11);
  EXPECT_NEAR(SampleValue(out, R"(http_request_duration_seconds_sum{method="GET",route="/healthz"})"),
              0.011, 1e-9);
  // A single series line per status, not one per shard.
  EXPECT_EQ(CountOccurrences(out, "status=\"200\""), 1);
}

TEST(HttpMetricsTest, BucketsAreCumulativeWithPrometheusLabels) {
  HttpMetrics m(1);
  m.Record(0, "GET", "/r", 200, 0.0005);  // exactly on a bound: le is inclusive
  m.Record(0, "GET", "/r", 200, 0.003);
  m.Record(0, "GET", "/r", 200, 0.2);
  m.Record(0, "GET", "/r", 200, 60);  // only +Inf
  std::string out;
  m.Render(out);
  const std::string p = R"(http_request_duration_seconds_bucket{method="GET",route="/r",le=")";
  const std::vector<std::pair<std::string, double>> expected = {
      {"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 2}, {"0.01", 2},
      {"0.025", 2},  {"0.05", 2},  {"0.1", 2},    {"0.25", 3},  {"0.5", 3},
      {"1", 3},      {"2.5", 3},   {"5", 3},      {"10", 3},    {"+Inf", 4}};
  for (const auto& [le, n] : expected) EXPECT_EQ(SampleValue(out, p + le + "\"}"), n) << le;
  EXPECT_EQ(CountOccurrences(out, "http_request_duration_seconds_bucket{"), 15);
  // Buckets appear in increasing order, +Inf last, followed by _sum and _count.
  EXPECT_LT(out.find(p + "0.0005\"}"), out.find(p + "10\"}"));
  EXPECT_LT(out.find(p + "10\"}"), out.find(p + "+Inf\"}"));
  EXPECT_LT(out.find(p + "+Inf\"}"), out.find("http_request_duration_seconds_sum{"));
}

TEST(HttpMetricsTest, OutputIsSortedAndDeterministic) {
  HttpMetrics a(2), b(2);
  a.Record(0, "POST", "/b", 201, 0.01);
  a.Record(1, "GET", "/a", 200, 0.01);
  b.Record(1, "GET", "/a", 200, 0.01);
  b.Record(0, "POST", "/b", 201, 0.01);
  std::string out_a, out_b;
  a.Render(out_a);
  b.Render(out_b);
  EXPECT_EQ(out_a, out_b);
  EXPECT_LT(out_a.find(R"(route="/a",status)"), out_a.find(R"(route="/b",status)"));
}

TEST(HttpMetricsTest, RouteLabelIsEscaped) {
  HttpMetrics m(1);
  m.Record(0, "GET", "/a\"b\\c\nd", 200, 0.01);
  std::string out;
  m.Render(out);
  EXPECT_NE(out.find(R"(http_requests_total{method="GET",route="/a\"b\\c\nd",status="200"} 1)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("c\nd"), std::string::npos);  // no raw newline inside a label
}

TEST(HttpMetricsTest, InFlightIsSumOfShards) {
  HttpMetrics m(3);
  m.AddInFlight(0, 1);
  m.AddInFlight(1, 1);
  m.AddInFlight(2, 1);
  m.AddInFlight(2, 1);
  m.AddInFlight(0, -1);
  std::string out;
  m.Render(out);
  EXPECT_EQ(SampleValue(out, "http_requests_in_flight"), 3);
}

TEST(HttpMetricsTest, EmptyRenderHasFamiliesAndNoSamples) {
  HttpMetrics m(2);
  std::string out;
  m.Render(out);
  EXPECT_EQ(CountOccurrences(out, "http_requests_total{"), 0);
  EXPECT_EQ(SampleValue(out, "http_requests_in_flight"), 0);
}

TEST(EscapeLabelValueTest, EscapesBackslashQuoteNewline) {
  EXPECT_EQ(EscapeLabelValue("plain/path"), "plain/path");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeLabelValue("tab\tstays"), "tab\tstays");
}

// Each thread owns one shard and records while a scraper renders repeatedly. Run under
// ASan/UBSan (dev preset) and, if available, TSan; totals must be exact at the end.
TEST(HttpMetricsTest, ConcurrentRecordingWhileRendering) {
  constexpr unsigned kThreads = 4;
  constexpr int kPerThread = 20000;
  HttpMetrics m(kThreads);
  std::atomic<bool> done{false};
  std::atomic<int> renders{0};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string out;
      m.Render(out);
      EXPECT_EQ(CountOccurrences(out, "# TYPE http_requests_total "), 1);
      renders.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < kThreads; ++t) {
    workers.emplace_back([&m, t] {
      const char* routes[] = {"/healthz", "/api/v1/items/{id}", "unmatched"};
      for (int i = 0; i < kPerThread; ++i) {
        m.AddInFlight(t, 1);
        m.Record(t, (i % 2) != 0 ? "GET" : "POST", routes[i % 3], (i % 5) != 0 ? 200 : 500,
                 0.001 * (i % 7));
        m.AddInFlight(t, -1);
      }
    });
  }
  for (auto& w : workers) w.join();
  done.store(true);
  scraper.join();
  EXPECT_GT(renders.load(), 0);

  std::string out;
  m.Render(out);
  std::istringstream in(out);
  std::string line;
  double total = 0, count_total = 0, inf_total = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) continue;
    const double v = std::stod(line.substr(line.rfind(' ') + 1));
    if (line.starts_with("http_requests_total{")) total += v;
    if (line.starts_with("http_request_duration_seconds_count{")) count_total += v;
    if (line.starts_with("http_request_duration_seconds_bucket{") &&
        line.find("le=\"+Inf\"") != std::string::npos) {
      inf_total += v;
    }
  }
  EXPECT_EQ(total, double{kThreads} * kPerThread);
  EXPECT_EQ(count_total, double{kThreads} * kPerThread);
  EXPECT_EQ(inf_total, double{kThreads} * kPerThread);
  EXPECT_EQ(SampleValue(out, "http_requests_in_flight"), 0);
  // Exact per-series check: GET (odd i) on "/healthz" (i%3==0) → i ≡ 3 (mod 6); status 200 unless
  // i%5==0.
  int expected = 0;
  for (int i = 0; i < kPerThread; ++i) {
    if (i % 2 == 1 && i % 3 == 0 && i % 5 != 0) ++expected;
  }
  EXPECT_EQ(SampleValue(out, R"(http_requests_total{method="GET",route="/healthz",status="200"})"),
            double{kThreads} * expected);
}

}  // namespace
}  // namespace basalt::obs
