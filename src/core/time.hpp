#pragma once
/// Time formatting shared by logs, records and HTTP.

#include <chrono>
#include <string>

namespace basalt::core {

/// RFC 3339 UTC with millisecond precision: "2026-11-28T04:10:05.123Z".
std::string FormatRfc3339(std::chrono::system_clock::time_point tp);

/// The same for milliseconds since the Unix epoch: covers years 1..9999 (a system_clock
/// time_point in nanoseconds ends in 2262).
std::string FormatRfc3339Millis(std::int64_t ms_since_epoch);

/// IMF-fixdate for HTTP `Date` headers (RFC 9110 §5.6.7): "Sat, 28 Nov 2026 04:10:05 GMT".
std::string FormatHttpDate(std::chrono::system_clock::time_point tp);

}  // namespace basalt::core
