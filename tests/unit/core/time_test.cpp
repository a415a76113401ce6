#include "core/time.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

namespace basalt::core {
namespace {

TEST(Time, Rfc3339AndHttpDate) {
  // 2026-11-28T04:10:05.123Z
  const auto tp = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795839005123LL));
  EXPECT_EQ(FormatRfc3339(tp), "2026-11-28T04:10:05.123Z");
  EXPECT_EQ(FormatHttpDate(tp), "Sat, 28 Nov 2026 04:10:05 GMT");
}

/// The reference: gmtime + snprintf (what FormatRfc3339Millis did before its fast path).
std::string Reference(std::int64_t ms) {
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

TEST(Time, Rfc3339MillisMatchesGmtimeOverItsRange) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(951782400000LL), "2000-02-29T00:00:00.000Z");  // leap day of a 400-year
  EXPECT_EQ(FormatRfc3339Millis(-62135596800000LL), "0001-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(253402300799999LL), "9999-12-31T23:59:59.999Z");
  // Edges of every day around the range ends and the epoch, and random instants in years 1..9999
  // and beyond (the fallback path).
  const std::int64_t edges[] = {-62135596800000LL, -86400000LL, 0, 951782400000LL, 4107542400000LL, 253402300799999LL};
  for (std::int64_t base : edges) {
    for (std::int64_t d = -3; d <= 3; ++d) {
      for (std::int64_t off : {-1LL, 0LL, 1LL, 43'200'000LL}) {
        const std::int64_t ms = base + d * 86'400'000LL + off;
        EXPECT_EQ(FormatRfc3339Millis(ms), Reference(ms)) << ms;
      }
    }
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> any(-62135596800000LL - 86'400'000LL * 400, 253402300799999LL + 86'400'000LL * 400);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t ms = any(rng);
    ASSERT_EQ(FormatRfc3339Millis(ms), Reference(ms)) << ms;
  }
}

}  // namespace
}  // namespace basalt::core
