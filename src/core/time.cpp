#include "core/time.hpp"

#include <cstdio>
#include <ctime>

namespace basalt::core {

namespace {

/// The general path (gmtime + snprintf), for years outside 1..9999.
std::string FormatRfc3339Slow(std::int64_t secs, int frac) {
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

void Digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

std::string FormatRfc3339Millis(std::int64_t ms) {
  // Floor division: instants before 1970 keep a non-negative millisecond part.
  std::int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  // Years 1..9999 without gmtime/snprintf (a claim formats two instants per message): days to
  // civil date as in H. Hinnant's chrono-compatible algorithms (days_from_civil inverse).
  constexpr std::int64_t kMinSecs = -62135596800LL;  // 0001-01-01T00:00:00Z
  constexpr std::int64_t kMaxSecs = 253402300799LL;  // 9999-12-31T23:59:59Z
  if (secs < kMinSecs || secs > kMaxSecs) return FormatRfc3339Slow(secs, static_cast<int>(frac));
  std::int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const unsigned year = static_cast<unsigned>(static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0));
  const unsigned sod = static_cast<unsigned>(rem);
  std::string out(24, '\0');
  char* p = out.data();
  Digits(p, year, 4);
  p[4] = '-';
  Digits(p + 5, month, 2);
  p[7] = '-';
  Digits(p + 8, day, 2);
  p[10] = 'T';
  Digits(p + 11, sod / 3600, 2);
  p[13] = ':';
  Digits(p + 14, sod / 60 % 60, 2);
  p[16] = ':';
  Digits(p + 17, sod % 60, 2);
  p[19] = '.';
  Digits(p + 20, static_cast<unsigned>(frac), 3);
  p[23] = 'Z';
  return out;
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
