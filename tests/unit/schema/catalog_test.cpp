// The catalog against a real SQLite file: create, change (data kept), drop, reload, and the
// checks that need other collections (relation targets, rules).

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "schema/catalog.hpp"
#include "store_test_support.hpp"

namespace basalt::schema {
namespace {

namespace json = boost::json;
using store::testing::RunTask;

CollectionSpec Spec(const char* text) {
  auto spec = ParseCollectionSpec(json::parse(text));
  EXPECT_TRUE(spec) << (spec ? "" : spec.error().message);
  return spec ? *spec : CollectionSpec{};
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions options;
    options.path = (dir_.path() / "basalt.db").string();
    auto db = store::OpenSqlite(options);
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    store::Migrator migrator(*db_, SystemMigrations());
    auto up = RunTask(migrator.Up());
    ASSERT_TRUE(up) << up.error().message;
  }
  void TearDown() override {
    if (db_) db_->Close();
  }
  store::ResultSet Query(std::string sql) {
    auto rows = RunTask(db_->Query(0, store::Statement{std::move(sql), {}}));
    EXPECT_TRUE(rows) << rows.error().cause;
    return rows ? *rows : store::ResultSet{};
  }
  core::Result<void> Exec(std::string sql) {
    return RunTask(db_->Transact(0, [sql](store::Transaction& tx) { return tx.ExecuteScript(sql); }));
  }

  store::testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
};

TEST_F(CatalogTest, CreateChangeDropAndReload) {
  Catalog catalog(*db_);
  ASSERT_TRUE(catalog.LoadBlocking());
  auto users = RunTask(catalog.Create(0, Spec(R"({"name": "users", "fields": [{"name": "name", "type": "text"}]})")));
  ASSERT_TRUE(users) << users.error().message;
  auto posts = RunTask(catalog.Create(0, Spec(R"({"name": "posts", "fields": [{"name": "title", "type": "text"},
      {"name": "author", "type": "relation", "collection": "users", "on_delete": "cascade"}],
      "rules": {"list": "author.name = 'x'"}})")));
  ASSERT_TRUE(posts) << posts.error().message;
  EXPECT_TRUE(catalog.snapshot()->Find("posts"));

  auto dup = RunTask(catalog.Create(0, Spec(R"({"name": "users"})")));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, core::ErrorCode::kConflict);

  ASSERT_TRUE(Exec("INSERT INTO c_users (id, created_at, updated_at, version, name) VALUES ('u1', 'a', 'a', 1, 'ann');"
                   "INSERT INTO c_posts (id, created_at, updated_at, version, title, author) VALUES ('p1', 'a', 'a', 1, 'hi', 'u1');"));

  // Rename + add with default keeps data.
  auto changed = RunTask(catalog.Update(0, Spec(R"({"name": "posts", "fields": [
      {"name": "headline", "type": "text", "previous_name": "title"},
      {"name": "author", "type": "relation", "collection": "users", "on_delete": "cascade"},
      {"name": "views", "type": "integer", "default": 3}]})"), std::nullopt));
  ASSERT_TRUE(changed) << changed.error().message << " " << changed.error().cause;
  EXPECT_EQ((*changed)->version, 2);
  auto rows = Query("SELECT headline, views FROM c_posts WHERE id = 'p1'");
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(rows.rows[0][0], store::Value(std::string("hi")));
  EXPECT_EQ(rows.rows[0][1], store::Value(std::int64_t{3}));
  EXPECT_EQ(Query("SELECT COUNT(*) FROM basalt_schema_migrations").rows[0][0], store::Value(std::int64_t{3}));

  // Stale version.
  auto stale = RunTask(catalog.Update(0, Spec(R"({"name": "posts"})"), 1));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, core::ErrorCode::kPreconditionFailed);

  // Unsafe change.
  auto unsafe = RunTask(catalog.Update(0, Spec(R"({"name": "posts", "fields": [
      {"name": "headline", "type": "integer"},
      {"name": "author", "type": "relation", "collection": "users", "on_delete": "cascade"}]})"), std::nullopt));
  ASSERT_FALSE(unsafe);
  EXPECT_EQ(unsafe.error().code, core::ErrorCode::kConflict);

  // users is referenced by posts.
  auto blocked = RunTask(catalog.Drop(0, "users"));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, core::ErrorCode::kConflict);

  // A fresh catalog sees the same state.
  Catalog reloaded(*db_);
  ASSERT_TRUE(reloaded.LoadBlocking());
  const Collection* p = reloaded.snapshot()->Find("posts");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 2);
  ASSERT_TRUE(p->spec.Find("headline"));
  EXPECT_TRUE(p->spec.Find("headline")->previous_name.empty());

  ASSERT_TRUE(RunTask(catalog.Drop(0, "posts")));
  ASSERT_TRUE(RunTask(catalog.Drop(0, "users")));
  EXPECT_TRUE(catalog.snapshot()->collections.empty());
  auto missing = RunTask(catalog.Drop(0, "users"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
}

TEST_F(CatalogTest, RefusesChangesThatBreakAnotherCollectionsRules) {
  Catalog catalog(*db_);
  ASSERT_TRUE(RunTask(catalog.Create(0, Spec(R"({"name": "users", "fields": [{"name": "name", "type": "text"}]})"))));
  ASSERT_TRUE(RunTask(catalog.Create(0, Spec(R"({"name": "posts", "fields": [
      {"name": "author", "type": "relation", "collection": "users"}], "rules": {"list": "author.name = 'x'"}})"))));
  auto r = RunTask(catalog.Update(0, Spec(R"({"name": "users", "fields": [{"name": "nick", "type": "text", "previous_name": "name"}]})"),
                                  std::nullopt));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kConflict);
  ASSERT_FALSE(r.error().fields.empty());
  EXPECT_EQ(r.error().fields[0].field, "posts.rules.list");
}

TEST_F(CatalogTest, ValidatesRelationTargetsAndRules) {
  Catalog catalog(*db_);
  auto r = RunTask(catalog.Create(0, Spec(R"({"name": "posts", "fields": [
      {"name": "author", "type": "relation", "collection": "ghosts"}]})")));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields.at(0).field, "fields[0].collection");
  auto rules = RunTask(catalog.Create(0, Spec(R"({"name": "posts", "fields": [{"name": "views", "type": "integer"}],
      "rules": {"list": "views >", "view": "nope = 1", "update": "views = 'x'"}})")));
  ASSERT_FALSE(rules);
  ASSERT_EQ(rules.error().fields.size(), 3u);
  EXPECT_EQ(rules.error().fields[0].field, "rules.list");
  EXPECT_EQ(rules.error().fields[1].field, "rules.view");
  EXPECT_EQ(rules.error().fields[2].field, "rules.update");
  // Self relation is fine.
  auto self = RunTask(catalog.Create(0, Spec(R"({"name": "nodes", "fields": [
      {"name": "parent", "type": "relation", "collection": "nodes", "on_delete": "set_null"}]})")));
  ASSERT_TRUE(self) << self.error().message;
}

}  // namespace
}  // namespace basalt::schema
