// Cost of the per-request observability hot path: HttpMetrics::Record, AddInFlight, LogEnabled.
#include <benchmark/benchmark.h>

#include <string>

#include "obs/log.hpp"
#include "obs/metrics.hpp"

namespace {

using basalt::obs::HttpMetrics;

// Steady state: the series already exists, so Record does one hash lookup and no allocation.
void BM_RecordExistingSeries(benchmark::State& state) {
  HttpMetrics metrics(1);
  const std::string route = "/api/v1/collections/{collection}/records/{id}";
  metrics.Record(0, "GET", route, 200, 0.001);
  double seconds = 0.0001;
  for (auto _ : state) {
    metrics.Record(0, "GET", route, 200, seconds);
    seconds = seconds < 1 ? seconds * 1.7 : 0.0001;  // walk across buckets
  }
}
BENCHMARK(BM_RecordExistingSeries);

// A realistic mix: a few routes and statuses on one shard.
void BM_RecordMixed(benchmark::State& state) {
  HttpMetrics metrics(1);
  const char* routes[] = {"/healthz", "/api/v1/items/{id}", "/api/v1/items", "unmatched"};
  const int statuses[] = {200, 200, 201, 404, 500};
  unsigned i = 0;
  for (auto _ : state) {
    metrics.Record(0, (i & 1) != 0 ? "GET" : "POST", routes[i % 4], statuses[i % 5], 0.002);
    ++i;
  }
}
BENCHMARK(BM_RecordMixed);

// One shard per benchmark thread: shows there is no cross-shard contention.
void BM_RecordPerThreadShard(benchmark::State& state) {
  static HttpMetrics* metrics = nullptr;
  if (state.thread_index() == 0) metrics = new HttpMetrics(static_cast<unsigned>(state.threads()));
  // Google Benchmark synchronises threads before and after the timed loop.
  for (auto _ : state) {
    metrics->AddInFlight(static_cast<unsigned>(state.thread_index()), 1);
    metrics->Record(static_cast<unsigned>(state.thread_index()), "GET", "/healthz", 200, 0.001);
    metrics->AddInFlight(static_cast<unsigned>(state.thread_index()), -1);
  }
  if (state.thread_index() == 0) {
    delete metrics;
    metrics = nullptr;
  }
}
BENCHMARK(BM_RecordPerThreadShard)->Threads(1)->Threads(2);

void BM_LogEnabledFalse(benchmark::State& state) {
  basalt::obs::InitLogging({.level = basalt::obs::LogLevel::kInfo, .json = true, .file = "/dev/null"});
  for (auto _ : state) benchmark::DoNotOptimize(basalt::obs::LogEnabled(basalt::obs::LogLevel::kDebug));
}
BENCHMARK(BM_LogEnabledFalse);

void BM_LogJsonLine(benchmark::State& state) {
  basalt::obs::InitLogging({.level = basalt::obs::LogLevel::kInfo, .json = true, .file = "/dev/null"});
  for (auto _ : state) {
    basalt::obs::Log(basalt::obs::LogLevel::kInfo, "request",
                     {{"method", std::string_view("GET")},
                      {"path", std::string_view("/api/v1/items/42")},
                      {"status", std::int64_t{200}},
                      {"seconds", 0.00123}});
  }
  basalt::obs::FlushLogs();
}
BENCHMARK(BM_LogJsonLine);

void BM_Render(benchmark::State& state) {
  HttpMetrics metrics(4);
  for (unsigned s = 0; s < 4; ++s) {
    for (int r = 0; r < 20; ++r) metrics.Record(s, "GET", "/api/v1/r" + std::to_string(r), 200, 0.01);
  }
  for (auto _ : state) {
    std::string out;
    metrics.Render(out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_Render);

}  // namespace
