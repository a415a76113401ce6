#include "core/time.hpp"

#include <gtest/gtest.h>

namespace basalt::core {
namespace {

TEST(Time, Rfc3339AndHttpDate) {
  // 2026-11-28T04:10:05.123Z
  const auto tp = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795839005123LL));
  EXPECT_EQ(FormatRfc3339(tp), "2026-11-28T04:10:05.123Z");
  EXPECT_EQ(FormatHttpDate(tp), "Sat, 28 Nov 2026 04:10:05 GMT");
}

}  // namespace
}  // namespace basalt::core
