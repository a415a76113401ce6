#include "core/time.hpp"

#include <cstdio>
#include <ctime>

namespace basalt::core {

std::string FormatRfc3339Millis(std::int64_t ms) {
  // Floor division: instants before 1970 keep a non-negative millisecond part.
  std::int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac));
  return buf;
}

std::string FormatRfc3339(std::chrono::system_clock::time_point tp) {
  return FormatRfc3339Millis(std::chrono::floor<std::chrono::milliseconds>(tp).time_since_epoch().count());
}

std::string FormatHttpDate(std::chrono::system_clock::time_point tp) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace basalt::core
