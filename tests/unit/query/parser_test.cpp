#include "query/parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace basalt::query {
namespace {

TEST(QueryParser, EmptyTextIsEmptyExpression) {
  auto e = Parse("");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->IsEmpty());
  auto ws = Parse(" \t\r\n ");
  ASSERT_TRUE(ws.has_value());
  EXPECT_TRUE(ws->IsEmpty());
}

TEST(QueryParser, BuildsComparisonWithPositions) {
  auto e = Parse("  author.name ~ 'x'");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  const auto& c = std::get<Comparison>(e->node);
  EXPECT_EQ(c.op, CompareOp::kContains);
  EXPECT_EQ(c.lhs.position, 2u);
  EXPECT_EQ(c.op_position, 14u);
  EXPECT_EQ(c.rhs.position, 16u);
  EXPECT_EQ(std::get<FieldPath>(c.lhs.value).path, (std::vector<std::string>{"author", "name"}));
  EXPECT_EQ(std::get<std::string>(std::get<Literal>(c.rhs.value).value), "x");
}

TEST(QueryParser, AndBindsTighterThanOr) {
  auto e = Parse("a = 1 || b = 2 && c = 3");
  ASSERT_TRUE(e.has_value());
  const auto& top = std::get<Logical>(e->node);
  EXPECT_EQ(top.op, LogicOp::kOr);
  EXPECT_EQ(std::get<Logical>(top.rhs->node).op, LogicOp::kAnd);
}

TEST(QueryParser, ErrorsAreBadRequestWithPositionAndFieldError) {
  auto e = Parse("views > 10 && (title ~ ");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, core::ErrorCode::kBadRequest);
  EXPECT_EQ(e.error().message, "at 23: expected a value after '~'");
  EXPECT_EQ(ErrorPosition(e.error()), 23u);
  ASSERT_EQ(e.error().fields.size(), 1u);
  EXPECT_EQ(e.error().fields[0].field, "filter");
  EXPECT_EQ(e.error().fields[0].code, "syntax");
  EXPECT_EQ(e.error().fields[0].message, e.error().message);
}

TEST(QueryParser, PositionsCountCharactersNotBytes) {
  auto e = Parse("title = \"ééé\" &&");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(ErrorPosition(e.error()), 16u);
}

TEST(QueryParser, ErrorPositionIsAbsentOnForeignErrors) {
  EXPECT_FALSE(ErrorPosition(core::Error::Make(core::ErrorCode::kInternal, "boom")).has_value());
  EXPECT_FALSE(ErrorPosition(core::Error::Make(core::ErrorCode::kBadRequest, "at x: y")).has_value());
}

TEST(QueryParser, DefaultLengthLimitIs4096) {
  std::string ok = "title = \"" + std::string(4096 - 10, 'a') + "\"";
  ASSERT_EQ(ok.size(), 4096u);
  EXPECT_TRUE(Parse(ok).has_value());
  auto e = Parse(ok + " ");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message, "at 4096: filter is longer than 4096 bytes");
  EXPECT_EQ(e.error().fields[0].code, "limit");
}

TEST(QueryParser, DefaultDepthLimitIs32) {
  std::string ok = std::string(32, '(') + "views = 1" + std::string(32, ')');
  EXPECT_TRUE(Parse(ok).has_value());
  std::string deep = std::string(33, '(') + "views = 1" + std::string(33, ')');
  auto e = Parse(deep);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message, "at 32: filter nests deeper than 32 levels");
}

TEST(QueryParser, DefaultNodeLimitIs256) {
  // Each `v = 1` is 3 nodes and each `&&` one: 64 comparisons = 64*3 + 63 = 255 nodes.
  std::string text = "v = 1";
  for (int i = 1; i < 64; ++i) text += " && v = 1";
  EXPECT_TRUE(Parse(text).has_value());
  auto e = Parse(text + " && v = 1");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().fields[0].code, "limit");
  EXPECT_NE(e.error().message.find("more than 256 nodes"), std::string::npos);
}

TEST(QueryParser, ListsHoldAtMost100Items) {
  std::string list = "1";
  for (int i = 1; i < 100; ++i) list += ",1";
  EXPECT_TRUE(Parse("views IN [" + list + "]").has_value());
  EXPECT_FALSE(Parse("views IN [" + list + ",1]").has_value());
}

TEST(QueryParser, DeepInputDoesNotOverflowTheStack) {
  std::string deep = std::string(200000, '!') + "v = 1";
  auto e = Parse(deep, Limits{.max_length = 1 << 20});
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().fields[0].code, "limit");
}

TEST(QueryParser, OpTextNamesEveryOperator) {
  EXPECT_EQ(OpText(CompareOp::kNotIn), "NOT IN");
  EXPECT_EQ(OpText(CompareOp::kNotContains), "!~");
  EXPECT_EQ(OpText(CompareOp::kGe), ">=");
}

}  // namespace
}  // namespace basalt::query
