#include <gtest/gtest.h>

#include "api/data_support.hpp"

namespace basalt::api::detail {
namespace {

TEST(Bearer, MatchesOnlyTheExactTokenWithAnyCaseOfTheScheme) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(BearerMatches("Bearer " + token, token));
  EXPECT_TRUE(BearerMatches("bearer " + token, token));
  EXPECT_TRUE(BearerMatches("BEARER " + token, token));
  EXPECT_FALSE(BearerMatches("Bearer " + token + "x", token));
  EXPECT_FALSE(BearerMatches("Bearer " + token.substr(1), token));
  EXPECT_FALSE(BearerMatches("Bearer  " + token, token));  // two spaces
  EXPECT_FALSE(BearerMatches("Basic " + token, token));
  EXPECT_FALSE(BearerMatches(token, token));
  EXPECT_FALSE(BearerMatches("Bearer ", ""));  // an empty token never matches
  EXPECT_FALSE(BearerMatches("Bearer x", ""));
  std::string wrong = token;
  wrong.back() = 'g';
  EXPECT_FALSE(BearerMatches("Bearer " + wrong, token));
}

}  // namespace
}  // namespace basalt::api::detail
