#pragma once
/// Prometheus metrics. Recording is sharded: each I/O thread records into its own shard, so the
/// hot path never takes a lock shared across cores; a scrape sums the shards.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace basalt::obs {

/// HTTP request metrics: http_requests_total{method,route,status}, http_request_duration_seconds
/// {method,route} histogram, http_requests_in_flight gauge.
class HttpMetrics {
 public:
  /// `shards` is the number of recording threads; shard indexes are 0..shards-1.
  explicit HttpMetrics(unsigned shards);
  ~HttpMetrics();
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  /// Records one finished request. `route` is the route template ("/api/v1/x/{id}") or
  /// "unmatched", never the raw path (bounded label cardinality). Only called from shard's thread.
  void Record(unsigned shard, std::string_view method, std::string_view route, int status,
              double seconds);

  /// Adjusts the in-flight gauge of a shard (+1 on start, -1 on finish).
  void AddInFlight(unsigned shard, int delta);

  /// Appends the metric families in Prometheus text format 0.0.4.
  void Render(std::string& out) const;

 private:
  struct Shard;
  std::vector<std::unique_ptr<Shard>> shards_;
};

/// Appends process metrics (process_resident_memory_bytes, process_cpu_seconds_total,
/// process_open_fds, process_max_fds, process_start_time_seconds) and
/// basalt_build_info{version,commit,compiler} 1.
void RenderProcessMetrics(std::string& out, std::string_view version, std::string_view commit);

/// Escapes a label value per the exposition format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

}  // namespace basalt::obs
