// The collection FieldResolver through the real compiler: columns, system fields, relations,
// multi-select, and unknown paths.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "query/compiler.hpp"
#include "query/parser.hpp"
#include "schema/resolver.hpp"

namespace basalt::schema {
namespace {

namespace json = boost::json;

struct Fixture {
  Snapshot snapshot;
  std::shared_ptr<Collection> posts = std::make_shared<Collection>();
  Fixture() {
    auto users = std::make_shared<Collection>();
    users->spec = *ParseCollectionSpec(json::parse(R"({"name": "users", "fields": [{"name": "name", "type": "text"}]})"));
    posts->spec = *ParseCollectionSpec(json::parse(R"({"name": "posts", "fields": [
      {"name": "title", "type": "text"}, {"name": "views", "type": "integer"}, {"name": "live", "type": "bool"},
      {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true},
      {"name": "author", "type": "relation", "collection": "users"},
      {"name": "parent", "type": "relation", "collection": "posts"}]})"));
    snapshot.collections["users"] = users;
    snapshot.collections["posts"] = posts;
  }
  core::Result<query::CompiledFilter> Compile(const char* text, DdlDialect::Kind kind = DdlDialect::Kind::kSqlite) {
    auto expr = query::Parse(text);
    if (!expr) return std::unexpected(expr.error());
    CollectionResolver resolver(snapshot, posts->spec, DdlDialect(kind));
    AnonymousVariables variables;
    return query::Compile(*expr, resolver, variables,
                          kind == DdlDialect::Kind::kSqlite ? query::SqlSyntax::Sqlite() : query::SqlSyntax::Postgres());
  }
};

TEST(Resolver, Columns) {
  Fixture f;
  auto c = f.Compile("views > 3 && title = 'x' && id != null && version >= 1");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->sql, "\"t\".\"views\" > ?1 AND \"t\".\"title\" = ?2 AND \"t\".\"id\" IS NOT NULL AND \"t\".\"version\" >= ?3");
}

TEST(Resolver, RelationPathIsACorrelatedSubquery) {
  Fixture f;
  auto c = f.Compile("author.name = 'ann' && parent.title ~ 'x'");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_NE(c->sql.find("(SELECT \"r_author\".\"name\" FROM \"c_users\" AS \"r_author\" WHERE \"r_author\".\"id\" = "
                        "\"t\".\"author\")"),
            std::string::npos)
      << c->sql;
  EXPECT_NE(c->sql.find("FROM \"c_posts\" AS \"r_parent\""), std::string::npos) << c->sql;
}

TEST(Resolver, MultiSelectPerDialect) {
  Fixture f;
  auto s = f.Compile("tags = 'a'");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_NE(s->sql.find("json_each(\"t\".\"tags\")"), std::string::npos) << s->sql;
  auto p = f.Compile("tags = 'a'", DdlDialect::Kind::kPostgres);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_NE(p->sql.find("jsonb_array_elements_text(\"t\".\"tags\"::jsonb)"), std::string::npos) << p->sql;
}

TEST(Resolver, TypeChecksAndUnknownPaths) {
  Fixture f;
  for (const char* bad : {"nope = 1", "views = 'x'", "author.nope = 1", "title.x = 1", "author.name.x = 1",
                          "c_posts = 1", "live > true"}) {
    auto c = f.Compile(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, core::ErrorCode::kBadRequest) << bad;
  }
}

TEST(Resolver, AnonymousVariablesAreNull) {
  Fixture f;
  auto c = f.Compile("author = @request.auth.id");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->params.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(c->params[0]));
}

}  // namespace
}  // namespace basalt::schema
