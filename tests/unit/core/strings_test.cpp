#include "core/strings.hpp"

#include <gtest/gtest.h>

namespace basalt::core {
namespace {

TEST(Strings, JoinPutsTheSeparatorOnlyBetweenItemsAndKeepsEmptyOnes) {
  EXPECT_EQ(Join({}, ", "), "");
  EXPECT_EQ(Join({"a"}, ", "), "a");
  EXPECT_EQ(Join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(Join({"a", "b"}, ""), "ab");
  // An empty item still takes its place: the audit log's '\n'-joined changes split back exactly.
  EXPECT_EQ(Join({"", "a", ""}, "\n"), "\na\n");
}

}  // namespace
}  // namespace basalt::core
