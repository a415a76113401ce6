// DDL golden strings for SQLite and PostgreSQL, and which collection changes are allowed.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "schema/ddl.hpp"

namespace basalt::schema {
namespace {

namespace json = boost::json;

CollectionSpec Spec(const char* text) {
  auto spec = ParseCollectionSpec(json::parse(text));
  EXPECT_TRUE(spec) << (spec ? "" : spec.error().message);
  return spec ? *spec : CollectionSpec{};
}

constexpr const char* kPosts = R"({"name": "posts", "fields": [
  {"name": "title", "type": "text", "unique": true}, {"name": "views", "type": "integer"},
  {"name": "score", "type": "number"}, {"name": "live", "type": "bool"}, {"name": "at", "type": "datetime"},
  {"name": "meta", "type": "json"}, {"name": "tags", "type": "select", "values": ["a"], "multi": true},
  {"name": "author", "type": "relation", "collection": "users", "on_delete": "set_null"}],
  "indexes": [{"fields": ["views", "created_at"], "name": "ix_posts_views"}]})";

TEST(Ddl, CreateSqlite) {
  const DdlChange ddl = CreateCollectionDdl(Spec(kPosts), DdlDialect(DdlDialect::Kind::kSqlite));
  EXPECT_EQ(ddl.up,
            "CREATE TABLE \"c_posts\" (\"id\" TEXT PRIMARY KEY NOT NULL, \"created_at\" TEXT NOT NULL, \"updated_at\" "
            "TEXT NOT NULL, \"version\" BIGINT NOT NULL, \"title\" TEXT, \"views\" INTEGER, \"score\" REAL, \"live\" "
            "INTEGER, \"at\" TEXT, \"meta\" TEXT, \"tags\" TEXT, \"author\" TEXT REFERENCES \"c_users\" (\"id\") ON "
            "DELETE SET NULL);\n"
            "CREATE UNIQUE INDEX \"" + IndexName("posts", {"title"}, true) + "\" ON \"c_posts\" (\"title\");\n"
            "CREATE INDEX \"ix_posts_views\" ON \"c_posts\" (\"views\", \"created_at\", \"id\");\n");
  EXPECT_EQ(ddl.down, "DROP TABLE \"c_posts\";\n");
}

TEST(Ddl, CreatePostgres) {
  const DdlChange ddl = CreateCollectionDdl(Spec(kPosts), DdlDialect::FromName("postgres"));
  EXPECT_EQ(ddl.up,
            "CREATE TABLE \"c_posts\" (\"id\" TEXT PRIMARY KEY NOT NULL, \"created_at\" TEXT NOT NULL, \"updated_at\" "
            "TEXT NOT NULL, \"version\" BIGINT NOT NULL, \"title\" TEXT, \"views\" BIGINT, \"score\" DOUBLE PRECISION, "
            "\"live\" BOOLEAN, \"at\" TEXT, \"meta\" TEXT, \"tags\" TEXT, \"author\" TEXT REFERENCES \"c_users\" "
            "(\"id\") ON DELETE SET NULL);\n"
            "CREATE UNIQUE INDEX \"" + IndexName("posts", {"title"}, true) + "\" ON \"c_posts\" (\"title\");\n"
            "CREATE INDEX \"ix_posts_views\" ON \"c_posts\" (\"views\", \"created_at\", \"id\");\n");
}

TEST(Ddl, IndexNamesAreShortAndStable) {
  const std::string long_name(61, 'a');
  const std::string n = IndexName(long_name, {"x", "y"}, false);
  EXPECT_LE(n.size(), 63u);
  EXPECT_EQ(n, IndexName(long_name, {"x", "y"}, false));
  EXPECT_NE(n, IndexName(long_name, {"y", "x"}, false));
}

TEST(Ddl, LiteralsEscapeQuotes) {
  FieldSpec text{.name = "t", .kind = FieldKind::kText};
  FieldSpec flag{.name = "b", .kind = FieldKind::kBool};
  EXPECT_EQ(DdlDialect(DdlDialect::Kind::kSqlite).Literal(text, json::value("it's")), "'it''s'");
  EXPECT_EQ(DdlDialect(DdlDialect::Kind::kSqlite).Literal(flag, json::value(true)), "1");
  EXPECT_EQ(DdlDialect(DdlDialect::Kind::kPostgres).Literal(flag, json::value(true)), "TRUE");
}

TEST(Ddl, ChangeAddDropRenameAndIndexes) {
  const CollectionSpec from = Spec(R"({"name": "p", "fields": [{"name": "a", "type": "text"},
      {"name": "b", "type": "integer"}, {"name": "c", "type": "text"}], "indexes": [{"fields": ["c"], "name": "ix_c"}]})");
  const CollectionSpec to = Spec(R"({"name": "p", "fields": [{"name": "a2", "type": "text", "previous_name": "a"},
      {"name": "b", "type": "number"}, {"name": "d", "type": "integer", "default": 7}],
      "indexes": [{"fields": ["a2"], "name": "ix_a2"}]})");
  auto sqlite = ChangeCollectionDdl(from, to, DdlDialect(DdlDialect::Kind::kSqlite));
  ASSERT_TRUE(sqlite) << sqlite.error().message;
  EXPECT_EQ(sqlite->up,
            "DROP INDEX \"ix_c\";\n"
            "ALTER TABLE \"c_p\" DROP COLUMN \"c\";\n"
            "ALTER TABLE \"c_p\" RENAME COLUMN \"a\" TO \"a2\";\n"
            "ALTER TABLE \"c_p\" ADD COLUMN \"d\" INTEGER;\n"
            "UPDATE \"c_p\" SET \"d\" = 7;\n"
            "CREATE INDEX \"ix_a2\" ON \"c_p\" (\"a2\", \"id\");\n");
  EXPECT_EQ(sqlite->down,
            "DROP INDEX \"ix_a2\";\n"
            "ALTER TABLE \"c_p\" DROP COLUMN \"d\";\n"
            "ALTER TABLE \"c_p\" RENAME COLUMN \"a2\" TO \"a\";\n"
            "ALTER TABLE \"c_p\" ADD COLUMN \"c\" TEXT;\n"
            "CREATE INDEX \"ix_c\" ON \"c_p\" (\"c\", \"id\");\n");
  auto pg = ChangeCollectionDdl(from, to, DdlDialect(DdlDialect::Kind::kPostgres));
  ASSERT_TRUE(pg);
  EXPECT_NE(pg->up.find("ALTER TABLE \"c_p\" ALTER COLUMN \"b\" TYPE DOUBLE PRECISION;\n"), std::string::npos) << pg->up;
}

struct Unsafe {
  const char* name;
  const char* from;
  const char* to;
};

void PrintTo(const Unsafe& c, std::ostream* os) { *os << c.name; }

class UnsafeChanges : public ::testing::TestWithParam<Unsafe> {};

TEST_P(UnsafeChanges, AreConflicts) {
  auto r = ChangeCollectionDdl(Spec(GetParam().from), Spec(GetParam().to), DdlDialect(DdlDialect::Kind::kSqlite));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kConflict);
  EXPECT_FALSE(r.error().message.empty());
}

const Unsafe kUnsafe[] = {
    {"TextToInteger", R"({"name": "p", "fields": [{"name": "a", "type": "text"}]})",
     R"({"name": "p", "fields": [{"name": "a", "type": "integer"}]})"},
    {"NumberToInteger", R"({"name": "p", "fields": [{"name": "a", "type": "number"}]})",
     R"({"name": "p", "fields": [{"name": "a", "type": "integer"}]})"},
    {"TextToEmail", R"({"name": "p", "fields": [{"name": "a", "type": "text"}]})",
     R"({"name": "p", "fields": [{"name": "a", "type": "email"}]})"},
    {"SingleToMulti", R"({"name": "p", "fields": [{"name": "a", "type": "select", "values": ["x"]}]})",
     R"({"name": "p", "fields": [{"name": "a", "type": "select", "values": ["x"], "multi": true}]})"},
    {"RelationTarget", R"({"name": "p", "fields": [{"name": "a", "type": "relation", "collection": "u"}]})",
     R"({"name": "p", "fields": [{"name": "a", "type": "relation", "collection": "v"}]})"},
    {"AddRequiredWithoutDefault", R"({"name": "p", "fields": []})",
     R"({"name": "p", "fields": [{"name": "a", "type": "text", "required": true}]})"},
    {"RenameMissing", R"({"name": "p", "fields": []})",
     R"({"name": "p", "fields": [{"name": "a", "type": "text", "previous_name": "zz"}]})"},
    {"RenameCollection", R"({"name": "p"})", R"({"name": "q"})"},
    {"UsedTwice", R"({"name": "p", "fields": [{"name": "a", "type": "text"}]})",
     R"({"name": "p", "fields": [{"name": "x", "type": "text", "previous_name": "a"}, {"name": "a", "type": "text"}]})"},
    {"SwapNames", R"({"name": "p", "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}]})",
     R"({"name": "p", "fields": [{"name": "b", "type": "text", "previous_name": "a"},
                                 {"name": "a", "type": "text", "previous_name": "b"}]})"},
};

INSTANTIATE_TEST_SUITE_P(All, UnsafeChanges, ::testing::ValuesIn(kUnsafe),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Ddl, RenameOntoADroppedFieldDropsFirst) {
  auto r = ChangeCollectionDdl(
      Spec(R"({"name": "p", "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}]})"),
      Spec(R"({"name": "p", "fields": [{"name": "b", "type": "text", "previous_name": "a"}]})"),
      DdlDialect(DdlDialect::Kind::kSqlite));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->up, "ALTER TABLE \"c_p\" DROP COLUMN \"b\";\nALTER TABLE \"c_p\" RENAME COLUMN \"a\" TO \"b\";\n");
}

TEST(Ddl, DroppingARelationEmptiesAndHidesItsColumnOnSqliteAndDropsItOnPostgres) {
  const CollectionSpec from = Spec(R"({"name": "p", "fields": [{"name": "a", "type": "relation", "collection": "u",
      "unique": true}, {"name": "b", "type": "text"}]})");
  const CollectionSpec to = Spec(R"({"name": "p", "fields": [{"name": "b", "type": "text"}]})");
  auto sqlite = ChangeCollectionDdl(from, to, DdlDialect(DdlDialect::Kind::kSqlite));
  ASSERT_TRUE(sqlite) << sqlite.error().message;
  const std::string step = "\";\nUPDATE \"c_p\" SET \"a\" = NULL;\nALTER TABLE \"c_p\" RENAME COLUMN \"a\" TO \"_dropped_a_";
  EXPECT_TRUE(sqlite->up.starts_with("DROP INDEX \"")) << sqlite->up;
  EXPECT_NE(sqlite->up.find(step), std::string::npos) << sqlite->up;
  EXPECT_EQ(sqlite->up.find("DROP COLUMN"), std::string::npos) << sqlite->up;
  // Down renames the column back (empty, like any dropped field) and restores the index.
  EXPECT_NE(sqlite->down.find("\" TO \"a\";\n"), std::string::npos) << sqlite->down;
  EXPECT_NE(sqlite->down.find("CREATE UNIQUE INDEX"), std::string::npos) << sqlite->down;
  // Two drops of the same name never collide.
  auto again = ChangeCollectionDdl(from, to, DdlDialect(DdlDialect::Kind::kSqlite));
  ASSERT_TRUE(again);
  EXPECT_NE(again->up, sqlite->up);

  auto pg = ChangeCollectionDdl(from, to, DdlDialect(DdlDialect::Kind::kPostgres));
  ASSERT_TRUE(pg) << pg.error().message;
  EXPECT_NE(pg->up.find("ALTER TABLE \"c_p\" DROP COLUMN \"a\";\n"), std::string::npos) << pg->up;
}

TEST(Ddl, SafeWidenings) {
  for (const char* kind : {"email", "url"}) {
    const std::string from = std::string(R"({"name": "p", "fields": [{"name": "a", "type": ")") + kind + "\"}]}";
    auto r = ChangeCollectionDdl(Spec(from.c_str()), Spec(R"({"name": "p", "fields": [{"name": "a", "type": "text"}]})"),
                                 DdlDialect(DdlDialect::Kind::kSqlite));
    ASSERT_TRUE(r) << kind;
    EXPECT_EQ(r->up, "");
  }
}

}  // namespace
}  // namespace basalt::schema
