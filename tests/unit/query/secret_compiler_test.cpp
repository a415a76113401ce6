// Secret fields in the compiler: equality becomes a comparison of the blind index column with the
// value's blind indexes (bound, never spliced); every other use is a positioned 400.

#include <gtest/gtest.h>

#include "fake_resolvers.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"

namespace basalt::query {
namespace {

/// `token` is secret with two keys in the ring, `pin` secret with none; `title` is text.
class SecretResolver final : public FieldResolver {
 public:
  core::Result<ResolvedField> Resolve(const std::vector<std::string>& path) const override {
    if (path.size() != 1) return core::Fail(core::ErrorCode::kBadRequest, "unknown field");
    if (path[0] == "title") return ResolvedField{"\"t\".\"title\"", FieldType::kText};
    if (path[0] == "token") {
      ResolvedField f{"\"t\".\"_bi_token\"", FieldType::kText};
      f.equality_keys = [](std::string_view v) {
        return std::vector<std::string>{"A(" + std::string(v) + ")", "B(" + std::string(v) + ")"};
      };
      return f;
    }
    if (path[0] == "pin") {
      ResolvedField f{"\"t\".\"_bi_pin\"", FieldType::kText};
      f.equality_keys = [](std::string_view) { return std::vector<std::string>{}; };
      return f;
    }
    return core::Fail(core::ErrorCode::kBadRequest, "unknown field '" + path[0] + "'");
  }
};

core::Result<CompiledFilter> CompileText(std::string_view text) {
  auto e = Parse(text);
  EXPECT_TRUE(e.has_value()) << text;
  return Compile(*e, SecretResolver{}, testing::FakeVariableResolver{}, SqlSyntax::Postgres());
}

TEST(SecretCompiler, EqualityComparesBlindIndexes) {
  auto eq = CompileText("token = 'abc'");
  ASSERT_TRUE(eq.has_value()) << eq.error().message;
  EXPECT_EQ(eq->sql, "\"t\".\"_bi_token\" IN ($1, $2)");
  EXPECT_EQ(eq->params, (std::vector<Param>{std::string("A(abc)"), std::string("B(abc)")}));
  auto ne = CompileText("'abc' != token");
  ASSERT_TRUE(ne.has_value());
  EXPECT_EQ(ne->sql, "\"t\".\"_bi_token\" NOT IN ($1, $2)");
  auto var = CompileText("token = @request.auth.id");
  ASSERT_TRUE(var.has_value());
  EXPECT_EQ(var->params, (std::vector<Param>{std::string("A(u1)"), std::string("B(u1)")}));
  auto null_var = CompileText("token = @request.auth.missing");
  ASSERT_TRUE(null_var.has_value());
  EXPECT_EQ(null_var->sql, "\"t\".\"_bi_token\" = $1");
  EXPECT_EQ(null_var->params, (std::vector<Param>{std::monostate{}}));
  auto is_null = CompileText("token = null");
  ASSERT_TRUE(is_null.has_value());
  EXPECT_EQ(is_null->sql, "\"t\".\"_bi_token\" IS NULL");
  auto no_keys = CompileText("pin = 'x' || pin != 'y'");
  ASSERT_TRUE(no_keys.has_value());
  EXPECT_EQ(no_keys->sql, "(1 = 0 OR \"t\".\"_bi_pin\" IS NOT NULL)");
}

TEST(SecretCompiler, EverythingElseIsAPositionedError) {
  struct Case {
    const char* text;
    const char* at;
  };
  for (const Case& c : {Case{"token > 'a'", "at 6:"}, Case{"token ~ 'a'", "at 6:"}, Case{"token !~ 'a'", "at 6:"},
                        Case{"token IN ['a']", "at 6:"}, Case{"token = title", "at 8:"},
                        Case{"title = token", "at 0:"}, Case{"token = 5", "at 8:"}, Case{"token = true", "at 8:"},
                        Case{"title = 'x' && token <= 'b'", "at 21:"}}) {
    auto r = CompileText(c.text);
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_EQ(r.error().code, core::ErrorCode::kBadRequest) << c.text;
    EXPECT_TRUE(r.error().message.starts_with(c.at)) << c.text << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("secret"), std::string::npos) << c.text << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace basalt::query
