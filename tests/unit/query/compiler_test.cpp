#include "query/compiler.hpp"

#include <gtest/gtest.h>

#include "fake_resolvers.hpp"
#include "query/parser.hpp"

namespace basalt::query {
namespace {

core::Result<CompiledFilter> CompileText(std::string_view text, const SqlSyntax& syntax) {
  auto e = Parse(text);
  if (!e) return std::unexpected(e.error());
  return Compile(*e, testing::FakeFieldResolver{}, testing::FakeVariableResolver{}, syntax);
}

TEST(QueryCompiler, PlaceholdersStartAtTheCallersIndex) {
  auto s = SqlSyntax::Postgres();
  s.first_param_index = 3;
  auto out = CompileText("views > 1 && title = 'a'", s);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->sql, R"("t"."views" > $3 AND "t"."title" = $4)");
  ASSERT_EQ(out->params.size(), 2u);
}

TEST(QueryCompiler, SqliteBindsBoolsAsIntegersPostgresAsBools) {
  auto lite = CompileText("published = true", SqlSyntax::Sqlite());
  auto pg = CompileText("published = true", SqlSyntax::Postgres());
  ASSERT_TRUE(lite && pg);
  EXPECT_EQ(std::get<std::int64_t>(lite->params[0]), 1);
  EXPECT_EQ(std::get<bool>(pg->params[0]), true);
}

TEST(QueryCompiler, JoinsAreDeduplicated) {
  auto out = CompileText("author.email = 'a' && author.email != 'b'", SqlSyntax::Sqlite());
  ASSERT_TRUE(out.has_value());
  ASSERT_EQ(out->joins.size(), 1u);
}

TEST(QueryCompiler, UnknownFieldErrorCarriesPositionAndCode) {
  auto out = CompileText("views > 1 && nope = 2", SqlSyntax::Sqlite());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, core::ErrorCode::kBadRequest);
  EXPECT_EQ(out.error().message, "at 13: unknown field 'nope'");
  EXPECT_EQ(ErrorPosition(out.error()), 13u);
  EXPECT_EQ(out.error().fields.at(0).code, "field");
}

TEST(QueryCompiler, TypeErrorMatchesTheDocumentedExample) {
  auto out = CompileText("views > \"abc\"", SqlSyntax::Sqlite());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().message, "at 8: views is an integer; cannot compare with a string");
  EXPECT_EQ(out.error().fields.at(0).code, "type");
}

class FailingResolver final : public FieldResolver {
 public:
  core::Result<ResolvedField> Resolve(const std::vector<std::string>&) const override {
    return core::Fail(core::ErrorCode::kInternal, "schema unavailable", "cache miss");
  }
};

TEST(QueryCompiler, InternalResolverErrorsPassThrough) {
  auto e = Parse("x = 1");
  ASSERT_TRUE(e.has_value());
  auto out = Compile(*e, FailingResolver{}, testing::FakeVariableResolver{}, SqlSyntax::Sqlite());
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, core::ErrorCode::kInternal);
  EXPECT_EQ(out.error().cause, "cache miss");
}

TEST(QueryCompiler, EmptyExpressionIsTrueWithoutParams) {
  auto out = CompileText("", SqlSyntax::Postgres());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->sql, "TRUE");
  EXPECT_TRUE(out->params.empty());
}

TEST(QueryCompiler, LongChainsCompile) {
  std::string text = "views = 1";
  for (int i = 1; i < 64; ++i) text += " || views = 1";
  auto out = CompileText(text, SqlSyntax::Sqlite());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->params.size(), 64u);
  EXPECT_EQ(out->sql.front(), '(');
}

}  // namespace
}  // namespace basalt::query
