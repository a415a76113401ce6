#include "core/hash.hpp"

#include <gtest/gtest.h>

namespace basalt::core {
namespace {

TEST(Hash, Fnv1a64KnownVectors) {
  // Reference values of FNV-1a 64 (the published test suite).
  EXPECT_EQ(Hex64(Fnv1a64("")), "cbf29ce484222325");
  EXPECT_EQ(Hex64(Fnv1a64("a")), "af63dc4c8601ec8c");
  EXPECT_EQ(Hex64(Fnv1a64("foobar")), "85944171f73967e8");
  EXPECT_EQ(Hex64(0), "0000000000000000");
}

}  // namespace
}  // namespace basalt::core
