#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace basalt::core {
namespace {

TEST(Uuid, V7HasVersionVariantAndTimeOrder) {
  const Uuid a = NewUuidV7();
  EXPECT_EQ(a[6] >> 4, 7);
  EXPECT_EQ(a[8] >> 6, 2);
  const std::string text = FormatUuid(a);
  ASSERT_EQ(text.size(), 36u);
  EXPECT_EQ(text[8], '-');
  EXPECT_EQ(text[14], '7');
  // The 48-bit time prefix never decreases between two ids made one after the other.
  const Uuid b = NewUuidV7();
  EXPECT_LE(FormatUuid(a).substr(0, 13), FormatUuid(b).substr(0, 13));
}

TEST(Uuid, ManyAreDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(FormatUuid(NewUuidV7()));
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(RequestId, AcceptsTokensRejectsEverythingElse) {
  EXPECT_TRUE(IsValidRequestId("abc-123_X.y:z"));
  EXPECT_TRUE(IsValidRequestId(std::string(128, 'a')));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidRequestId("has space"));
  EXPECT_FALSE(IsValidRequestId("quote\""));
  EXPECT_FALSE(IsValidRequestId("new\nline"));
  EXPECT_FALSE(IsValidRequestId("ünïcode"));
}

}  // namespace
}  // namespace basalt::core
