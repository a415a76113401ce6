// Schema export / import against real SQLite files: round trip, diff planning with the API's
// change rules, dry run, all-or-nothing apply, relation ordering and invalid documents.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "schema/catalog.hpp"
#include "schema/schema_io.hpp"
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

// One SQLite database with its system tables and a loaded catalog.
struct Env {
  store::testing::TempDir dir;
  std::unique_ptr<store::Database> db;
  std::unique_ptr<Catalog> catalog;

  Env() {
    store::SqliteOptions options;
    options.path = (dir.path() / "basalt.db").string();
    auto opened = store::OpenSqlite(options);
    EXPECT_TRUE(opened) << opened.error().message;
    db = std::move(*opened);
    store::Migrator migrator(*db, SystemMigrations());
    auto up = RunTask(migrator.Up());
    EXPECT_TRUE(up) << up.error().message;
    Reload();
  }
  ~Env() { db->Close(); }
  // A fresh catalog read from the database (what a restarted server sees).
  void Reload() {
    catalog = std::make_unique<Catalog>(*db);
    auto loaded = catalog->LoadBlocking();
    EXPECT_TRUE(loaded) << loaded.error().message;
  }
  void Create(const char* spec) {
    auto created = RunTask(catalog->Create(0, Spec(spec)));
    ASSERT_TRUE(created) << created.error().message;
  }
  store::ResultSet Query(std::string sql) {
    auto rows = RunTask(db->Query(0, store::Statement{std::move(sql), {}}));
    EXPECT_TRUE(rows) << rows.error().cause;
    return rows ? *rows : store::ResultSet{};
  }
  core::Result<void> Exec(std::string sql) {
    return RunTask(db->Transact(0, [sql](store::Transaction& tx) { return tx.ExecuteScript(sql); }));
  }
  std::int64_t Count(const std::string& sql) {
    auto rows = Query(sql);
    return rows.rows.empty() ? -1 : std::get<std::int64_t>(rows.rows[0][0]);
  }
  std::string Export() { return schema::Export(*catalog->snapshot()); }
  core::Result<ImportPlan> Plan(const std::string& text, ImportOptions options = {}) {
    auto doc = ParseSchemaDocument(text);
    if (!doc) return std::unexpected(doc.error());
    return PlanImport(*doc, *catalog->snapshot(), db->dialect().Name(), options);
  }
  core::Result<void> Import(const std::string& text, ImportOptions options = {}) {
    auto plan = Plan(text, options);
    if (!plan) return std::unexpected(plan.error());
    auto applied = RunTask(ApplyImport(*db, *plan));
    Reload();
    return applied;
  }
};

constexpr const char* kUsers =
    R"({"name": "users", "fields": [{"name": "name", "type": "text", "unique": true},
        {"name": "age", "type": "integer", "min": 0, "default": 1}], "rules": {"list": ""}})";
constexpr const char* kPosts =
    R"({"name": "posts", "fields": [{"name": "title", "type": "text", "required": true, "max_length": 200},
        {"name": "author", "type": "relation", "collection": "users", "on_delete": "cascade"},
        {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true}],
        "indexes": [{"fields": ["title", "created_at"]}], "rules": {"list": "author.name = 'x'", "view": ""}})";
// Named so that alphabetical order would put it before its target.
constexpr const char* kAComments =
    R"({"name": "a_comments", "fields": [{"name": "post", "type": "relation", "collection": "posts"},
        {"name": "body", "type": "text"}]})";

void CreateSample(Env& env) {
  env.Create(kUsers);
  env.Create(kPosts);
  env.Create(kAComments);
}

std::vector<std::string> Names(const std::string& exported) {
  std::vector<std::string> out;
  const json::value doc = json::parse(exported);
  for (const auto& c : doc.at("collections").as_array())
    out.emplace_back(c.at("name").as_string());
  return out;
}

TEST(SchemaIoTest, ExportIsDependencyOrderedAndDeterministic) {
  Env env;
  CreateSample(env);
  const std::string text = env.Export();
  EXPECT_EQ(Names(text), (std::vector<std::string>{"users", "posts", "a_comments"}));
  EXPECT_EQ(text, env.Export());
  const json::value doc = json::parse(text);
  EXPECT_EQ(doc.at("basalt_schema").as_int64(), 1);
  // Each entry is the canonical spec the API accepts.
  const auto& posts = doc.at("collections").at(1);
  auto spec = ParseCollectionSpec(posts);
  ASSERT_TRUE(spec);
  EXPECT_EQ(json::serialize(ToJson(*spec)), json::serialize(posts));
  EXPECT_NE(text.find("\n  \"collections\": [\n"), std::string::npos) << "pretty-printed";
  EXPECT_EQ(text.back(), '\n');
}

TEST(SchemaIoTest, RoundTripIntoEmptyDatabaseIsIdentical) {
  Env source;
  CreateSample(source);
  const std::string exported = source.Export();

  Env target;
  auto plan = target.Plan(exported);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->actions.size(), 3u);
  EXPECT_EQ(plan->actions[0].collection, "users");
  EXPECT_EQ(plan->actions[1].collection, "posts");
  EXPECT_EQ(plan->actions[2].collection, "a_comments");
  for (const auto& a : plan->actions) EXPECT_EQ(a.kind, ImportAction::Kind::kCreate);

  auto imported = target.Import(exported);
  ASSERT_TRUE(imported) << imported.error().message << " " << imported.error().cause;
  EXPECT_EQ(target.Export(), exported);
  // Recorded as the API records creations: one migration per collection.
  EXPECT_EQ(target.Count("SELECT COUNT(*) FROM basalt_schema_migrations"), 3);
  // The tables work, foreign keys included.
  ASSERT_TRUE(target.Exec("INSERT INTO c_users (id, created_at, updated_at, version, name) VALUES ('u1','a','a',1,'ann');"
                          "INSERT INTO c_posts (id, created_at, updated_at, version, title, author) VALUES ('p1','a','a',1,'t','u1');"));

  // Importing the same file again is a no-op.
  auto again = target.Plan(exported);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->Empty());
  EXPECT_EQ(again->actions.size(), 3u);
  EXPECT_EQ(again->actions[0].kind, ImportAction::Kind::kUnchanged);
}

TEST(SchemaIoTest, AddingAFieldKeepsData) {
  Env env;
  env.Create(kUsers);
  ASSERT_TRUE(env.Exec("INSERT INTO c_users (id, created_at, updated_at, version, name, age) VALUES ('u1','a','a',1,'ann',7)"));
  const std::string doc = R"({"basalt_schema": 1, "collections": [{"name": "users", "fields": [
      {"name": "name", "type": "text", "unique": true}, {"name": "age", "type": "integer", "min": 0, "default": 1},
      {"name": "bio", "type": "text", "default": "none"}], "rules": {"list": ""}}]})";
  auto plan = env.Plan(doc);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->actions.size(), 1u);
  EXPECT_EQ(plan->actions[0].kind, ImportAction::Kind::kChange);
  EXPECT_NE(plan->actions[0].ddl.up.find("ADD COLUMN \"bio\""), std::string::npos);
  auto imported = env.Import(doc);
  ASSERT_TRUE(imported) << imported.error().message;
  auto rows = env.Query("SELECT name, age, bio FROM c_users WHERE id = 'u1'");
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(rows.rows[0][0], store::Value(std::string("ann")));
  EXPECT_EQ(rows.rows[0][1], store::Value(std::int64_t{7}));
  EXPECT_EQ(rows.rows[0][2], store::Value(std::string("none")));
  EXPECT_EQ(env.catalog->snapshot()->Find("users")->version, 2);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM basalt_schema_migrations WHERE collection = 'users'"), 2);
}

TEST(SchemaIoTest, DryRunChangesNothingAndPrintsThePlan) {
  Env env;
  env.Create(kUsers);
  env.Create(R"({"name": "legacy"})");
  const std::string doc = std::string(R"({"basalt_schema": 1, "collections": [)") +
                          R"({"name": "users", "fields": [{"name": "name", "type": "text", "unique": true},
                              {"name": "age", "type": "number", "min": 0, "default": 1}], "rules": {"list": ""}},)" +
                          kPosts + "]}";
  const std::string before = env.Export();
  const std::int64_t migrations = env.Count("SELECT COUNT(*) FROM basalt_schema_migrations");
  auto plan = env.Plan(doc);
  ASSERT_TRUE(plan) << plan.error().message;
  const std::string text = FormatPlan(*plan);
  EXPECT_NE(text.find("Schema import plan (sqlite):"), std::string::npos) << text;
  EXPECT_NE(text.find("  create     posts\n      CREATE TABLE \"c_posts\""), std::string::npos) << text;
  EXPECT_NE(text.find("  change     users (version 1)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  keep       legacy (not in the file; --prune would drop it)"), std::string::npos) << text;
  EXPECT_NE(text.find("1 to create, 1 to change, 0 to drop, 0 unchanged, 1 kept."), std::string::npos) << text;
  // Planning (the dry run) changed nothing.
  env.Reload();
  EXPECT_EQ(env.Export(), before);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM basalt_schema_migrations"), migrations);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'c_posts'"), 0);
}

TEST(SchemaIoTest, PruneDropsAbsentCollectionsReferencingFirst) {
  Env env;
  CreateSample(env);
  env.Create(R"({"name": "legacy"})");
  const std::string doc = R"({"basalt_schema": 1, "collections": [)" + std::string(kUsers) + "]}";
  auto kept = env.Plan(doc);
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->Empty());
  auto plan = env.Plan(doc, {.prune = true});
  ASSERT_TRUE(plan) << plan.error().message;
  std::vector<std::string> drops;
  for (const auto& a : plan->actions)
    if (a.kind == ImportAction::Kind::kDrop) drops.push_back(a.collection);
  EXPECT_EQ(drops, (std::vector<std::string>{"a_comments", "posts", "legacy"}));
  auto imported = env.Import(doc, {.prune = true});
  ASSERT_TRUE(imported) << imported.error().message;
  EXPECT_EQ(Names(env.Export()), (std::vector<std::string>{"users"}));
}

TEST(SchemaIoTest, UnsafeChangeIsRefusedByPlanAndNothingApplied) {
  Env env;
  env.Create(R"({"name": "aa", "fields": [{"name": "x", "type": "text"}]})");
  env.Create(R"({"name": "bb", "fields": [{"name": "x", "type": "text"}]})");
  env.Create(R"({"name": "cc", "fields": [{"name": "x", "type": "text"}]})");
  const std::string before = env.Export();
  // aa and bb gain a field (safe); cc changes text -> integer (unsafe).
  const std::string doc = R"({"basalt_schema": 1, "collections": [
      {"name": "aa", "fields": [{"name": "x", "type": "text"}, {"name": "y", "type": "text"}]},
      {"name": "bb", "fields": [{"name": "x", "type": "text"}, {"name": "y", "type": "text"}]},
      {"name": "cc", "fields": [{"name": "x", "type": "integer"}]}]})";
  auto plan = env.Plan(doc);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->Refused());
  EXPECT_NE(FormatPlan(*plan).find("REFUSED: Changing field 'x' from text to integer"), std::string::npos)
      << FormatPlan(*plan);
  auto applied = RunTask(ApplyImport(*env.db, *plan));
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, core::ErrorCode::kConflict);
  EXPECT_NE(applied.error().message.find("collection 'cc'"), std::string::npos) << applied.error().message;
  env.Reload();
  EXPECT_EQ(env.Export(), before);
}

TEST(SchemaIoTest, FailureInsideTheTransactionRollsBackEveryCollection) {
  Env env;
  env.Create(R"({"name": "aa", "fields": [{"name": "x", "type": "text"}]})");
  env.Create(R"({"name": "bb", "fields": [{"name": "x", "type": "text"}]})");
  env.Create(R"({"name": "cc", "fields": [{"name": "x", "type": "text"}]})");
  // Duplicates in cc.x: a new unique constraint there only fails when its index is built.
  ASSERT_TRUE(env.Exec("INSERT INTO c_cc (id, created_at, updated_at, version, x) VALUES ('1','a','a',1,'d');"
                       "INSERT INTO c_cc (id, created_at, updated_at, version, x) VALUES ('2','a','a',1,'d');"));
  const std::string before = env.Export();
  const std::int64_t migrations = env.Count("SELECT COUNT(*) FROM basalt_schema_migrations");
  const std::string doc = R"({"basalt_schema": 1, "collections": [
      {"name": "aa", "fields": [{"name": "x", "type": "text"}, {"name": "y", "type": "text"}]},
      {"name": "bb", "fields": [{"name": "x", "type": "text"}, {"name": "y", "type": "text"}]},
      {"name": "cc", "fields": [{"name": "x", "type": "text", "unique": true}]},
      {"name": "dd", "fields": [{"name": "z", "type": "bool"}]}]})";
  auto plan = env.Plan(doc);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_FALSE(plan->Refused());
  auto applied = RunTask(ApplyImport(*env.db, *plan));
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, core::ErrorCode::kConflict);
  EXPECT_NE(applied.error().message.find("Collection 'cc'"), std::string::npos) << applied.error().message;
  env.Reload();
  EXPECT_EQ(env.Export(), before);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM basalt_schema_migrations"), migrations);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM pragma_table_info('c_aa') WHERE name = 'y'"), 0);
  EXPECT_EQ(env.Count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'c_dd'"), 0);
}

TEST(SchemaIoTest, ChangeBreakingAnotherCollectionsRuleIsRefused) {
  Env env;
  env.Create(kUsers);
  env.Create(kPosts);  // rule: author.name = 'x'
  // users.name dropped while posts (kept, not in the file) still uses it.
  const std::string doc = R"({"basalt_schema": 1, "collections": [{"name": "users", "fields": [
      {"name": "age", "type": "integer", "min": 0, "default": 1}], "rules": {"list": ""}}]})";
  auto plan = env.Plan(doc);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(plan->Refused());
  EXPECT_NE(FormatPlan(*plan).find("The rules of collection 'posts'"), std::string::npos) << FormatPlan(*plan);
}

TEST(SchemaIoTest, InvalidDocumentsReportEveryProblem) {
  auto not_json = ParseSchemaDocument("{nope");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().code, core::ErrorCode::kValidation);
  ASSERT_EQ(not_json.error().fields.size(), 1u);
  EXPECT_EQ(not_json.error().fields[0].code, "json");

  auto wrong_version = ParseSchemaDocument(R"({"basalt_schema": 2, "collections": []})");
  ASSERT_FALSE(wrong_version);
  EXPECT_EQ(wrong_version.error().fields.at(0).field, "basalt_schema");

  auto missing = ParseSchemaDocument(R"({"collections": []})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().fields.at(0).code, "required");

  auto bad = ParseSchemaDocument(R"({"basalt_schema": 1, "extra": 1, "collections": [
      {"name": "ok"}, {"name": "Bad!", "fields": [{"name": "a", "type": "nope"}]}, {"name": "ok"},
      {"name": "r", "fields": [{"name": "b", "type": "text", "previous_name": "a"}]}]})");
  ASSERT_FALSE(bad);
  std::set<std::string> fields;
  for (const auto& f : bad.error().fields) fields.insert(f.field);
  EXPECT_TRUE(fields.count("extra"));
  EXPECT_TRUE(fields.count("collections[1].name"));
  EXPECT_TRUE(fields.count("collections[1].fields[0].type"));
  EXPECT_TRUE(fields.count("collections[2].name"));  // duplicate
  EXPECT_TRUE(fields.count("collections[3].fields[0].previous_name"));

  // Parses, but does not fit: unknown relation target and a rule on an unknown field.
  Env env;
  auto plan = env.Plan(R"({"basalt_schema": 1, "collections": [
      {"name": "p", "fields": [{"name": "o", "type": "relation", "collection": "ghost"}]},
      {"name": "q", "fields": [{"name": "a", "type": "text"}], "rules": {"list": "nope = 1"}}]})");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, core::ErrorCode::kValidation);
  fields.clear();
  for (const auto& f : plan.error().fields) fields.insert(f.field);
  EXPECT_TRUE(fields.count("collections[0].fields[0].collection"));
  EXPECT_TRUE(fields.count("collections[1].rules.list"));
}

}  // namespace
}  // namespace basalt::schema
