#include "obs/metrics.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

namespace basalt::obs {
namespace {

// Upper bounds of the latency histogram; +Inf is the implicit last bucket.
constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,   5,    10};
// The `le` labels exactly as the Go/Python clients print them (shortest round-trip form).
constexpr std::array<std::string_view, kBounds.size() + 1> kBoundLabels = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf"};
constexpr std::size_t kBuckets = kBounds.size() + 1;
// Fixed rather than std::hardware_destructive_interference_size, whose value GCC warns may vary.
constexpr std::size_t kCacheLine = 64;

// Series identity without the status: the histogram key, and the counter key's prefix.
struct RouteKeyView {
  std::string_view method;
  std::string_view route;
};

struct RouteKey {
  std::string method;
  std::string route;
};

// Transparent hash/equality so the hot path looks up with string_views and only allocates the
// first time a (method, route) pair is seen on a shard.
struct RouteKeyHash {
  using is_transparent = void;
  std::size_t operator()(RouteKeyView k) const noexcept {
    const std::size_t h1 = std::hash<std::string_view>{}(k.method);
    const std::size_t h2 = std::hash<std::string_view>{}(k.route);
    return h1 ^ (h2 + 0x9e3779b97f4a7c15ULL + (h1 << 6) + (h1 >> 2));
  }
  std::size_t operator()(const RouteKey& k) const noexcept {
    return (*this)(RouteKeyView{k.method, k.route});
  }
};

struct RouteKeyEq {
  using is_transparent = void;
  static RouteKeyView View(const RouteKey& k) { return {k.method, k.route}; }
  static RouteKeyView View(RouteKeyView k) { return k; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    const RouteKeyView x = View(a), y = View(b);
    return x.method == y.method && x.route == y.route;
  }
};

struct RouteSeries {
  std::array<std::uint64_t, kBuckets> buckets{};  // per-bucket (not cumulative) counts
  double sum = 0;
  std::uint64_t count = 0;
  // Statuses seen for this route: a handful at most, so a linear scan beats a map.
  std::vector<std::pair<int, std::uint64_t>> statuses;
};

std::size_t BucketIndex(double seconds) {
  // Branch-light: the first bound >= seconds; values above 10 s fall into +Inf.
  return static_cast<std::size_t>(std::lower_bound(kBounds.begin(), kBounds.end(), seconds) -
                                  kBounds.begin());
}

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

}  // namespace

// One per recording thread, on its own cache lines so shards never false-share.
// Locking: `mutex` is taken only by this shard's own I/O thread (in Record) and by the scraper
// (in Render), never by another shard, so recording never contends across cores; uncontended it
// costs one atomic exchange pair. The in-flight gauge is a relaxed atomic.
struct alignas(kCacheLine) HttpMetrics::Shard {
  mutable std::mutex mutex;
  std::unordered_map<RouteKey, RouteSeries, RouteKeyHash, RouteKeyEq> series;
  std::atomic<std::int64_t> in_flight{0};
};

HttpMetrics::HttpMetrics(unsigned shards) {
  shards_.reserve(std::max(shards, 1u));
  for (unsigned i = 0; i < std::max(shards, 1u); ++i) shards_.push_back(std::make_unique<Shard>());
}

HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::Record(unsigned shard, std::string_view method, std::string_view route,
                         int status, double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // negative or NaN durations would poison _sum
  const std::size_t bucket = BucketIndex(seconds);
  Shard& s = *shards_[shard % shards_.size()];
  std::lock_guard lock(s.mutex);
  auto it = s.series.find(RouteKeyView{method, route});
  if (it == s.series.end()) {
    it = s.series.emplace(RouteKey{std::string(method), std::string(route)}, RouteSeries{}).first;
  }
  RouteSeries& rs = it->second;
  ++rs.buckets[bucket];
  rs.sum += seconds;
  ++rs.count;
  for (auto& [code, n] : rs.statuses) {
    if (code == status) {
      ++n;
      return;
    }
  }
  rs.statuses.emplace_back(status, 1);
}

void HttpMetrics::AddInFlight(unsigned shard, int delta) {
  shards_[shard % shards_.size()]->in_flight.fetch_add(delta, std::memory_order_relaxed);
}

void HttpMetrics::Render(std::string& out) const {
  struct Agg {
    std::array<std::uint64_t, kBuckets> buckets{};
    double sum = 0;
    std::uint64_t count = 0;
  };
  // Sorted containers give deterministic output regardless of shard or insertion order.
  std::map<std::pair<std::string, std::string>, Agg> histograms;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> counters;
  std::int64_t in_flight = 0;
  for (const auto& shard : shards_) {
    in_flight += shard->in_flight.load(std::memory_order_relaxed);
    std::lock_guard lock(shard->mutex);
    for (const auto& [key, rs] : shard->series) {
      Agg& agg = histograms[{key.method, key.route}];
      for (std::size_t b = 0; b < kBuckets; ++b) agg.buckets[b] += rs.buckets[b];
      agg.sum += rs.sum;
      agg.count += rs.count;
      for (const auto& [code, n] : rs.statuses) counters[{key.method, key.route, code}] += n;
    }
  }

  auto out_it = std::back_inserter(out);
  out += "# HELP http_requests_total Total number of HTTP requests by method, route and status.\n";
  out += "# TYPE http_requests_total counter\n";
  for (const auto& [key, n] : counters) {
    const auto& [method, route, status] = key;
    fmt::format_to(out_it, "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                   EscapeLabelValue(method), EscapeLabelValue(route), status, n);
  }

  out += "# HELP http_request_duration_seconds HTTP request latency in seconds by method and route.\n";
  out += "# TYPE http_request_duration_seconds histogram\n";
  for (const auto& [key, agg] : histograms) {
    const std::string labels =
        fmt::format("method=\"{}\",route=\"{}\"", EscapeLabelValue(key.first),
                    EscapeLabelValue(key.second));
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      cumulative += agg.buckets[b];
      fmt::format_to(out_it, "http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
                     kBoundLabels[b], cumulative);
    }
    fmt::format_to(out_it, "http_request_duration_seconds_sum{{{}}} ", labels);
    AppendNumber(out, agg.sum);
    fmt::format_to(out_it, "\nhttp_request_duration_seconds_count{{{}}} {}\n", labels, agg.count);
  }

  out += "# HELP http_requests_in_flight Number of HTTP requests currently being served.\n";
  out += "# TYPE http_requests_in_flight gauge\n";
  fmt::format_to(out_it, "http_requests_in_flight {}\n", in_flight);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace basalt::obs
