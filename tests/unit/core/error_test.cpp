#include "core/error.hpp"

#include <gtest/gtest.h>

namespace basalt::core {
namespace {

TEST(Error, CodeNamesAreStable) {
  EXPECT_EQ(CodeName(ErrorCode::kValidation), "validation_failed");
  EXPECT_EQ(CodeName(ErrorCode::kNotFound), "not_found");
  EXPECT_EQ(CodeName(ErrorCode::kHeadersTooLarge), "headers_too_large");
  EXPECT_EQ(CodeName(ErrorCode::kInternal), "internal_error");
}

TEST(Error, FailCarriesPublicAndPrivateParts) {
  Result<int> r = Fail(ErrorCode::kConflict, "already exists", "UNIQUE constraint failed: t.x");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(r.error().message, "already exists");
  EXPECT_EQ(r.error().cause, "UNIQUE constraint failed: t.x");
}

}  // namespace
}  // namespace basalt::core
