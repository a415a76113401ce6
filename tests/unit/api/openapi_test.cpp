// The OpenAPI generator: a catalog of two collections gives their schemas and paths, the output
// is deterministic, and only RE2 patterns that ECMA-262 reads alike are carried over.

#include "api/openapi.hpp"

#include <boost/json.hpp>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "schema/catalog.hpp"
#include "schema/collection.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;

std::shared_ptr<const schema::Collection> Make(std::string_view spec_json) {
  auto spec = schema::ParseCollectionSpec(json::parse(spec_json));
  EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message);
  auto c = std::make_shared<schema::Collection>();
  c->spec = std::move(*spec);
  c->created_at = c->updated_at = "2026-01-01T00:00:00.000Z";
  return c;
}

constexpr std::string_view kUsers = R"({"name": "users", "fields": [
  {"name": "name", "type": "text", "required": true, "max_length": 80},
  {"name": "email", "type": "email", "unique": true}],
  "rules": {"list": "", "view": ""}})";

constexpr std::string_view kPosts = R"({"name": "blog_posts", "fields": [
  {"name": "title", "type": "text", "required": true, "min_length": 3, "max_length": 200, "pattern": "[A-Za-z ]+"},
  {"name": "slug", "type": "text", "pattern": "(?i)[a-z]+"},
  {"name": "views", "type": "integer", "min": 0, "default": 0},
  {"name": "score", "type": "number", "max": 2.5},
  {"name": "live", "type": "bool"},
  {"name": "due", "type": "datetime"},
  {"name": "meta", "type": "json"},
  {"name": "status", "type": "select", "values": ["draft", "live"], "required": true, "default": "draft"},
  {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true, "max_length": 2},
  {"name": "author", "type": "relation", "collection": "users"}]})";

schema::Snapshot TwoCollections(bool reversed) {
  schema::Snapshot snap;
  if (reversed) {
    snap.collections.emplace("users", Make(kUsers));
    snap.collections.emplace("blog_posts", Make(kPosts));
  } else {
    snap.collections.emplace("blog_posts", Make(kPosts));
    snap.collections.emplace("users", Make(kUsers));
  }
  return snap;
}

// The object at `path` under `root` (no copies: the result refers into `root`).
const json::object& At(const json::object& root, std::initializer_list<std::string_view> path) {
  const json::object* cur = &root;
  for (auto key : path) {
    const json::value* next = cur->if_contains(key);
    EXPECT_NE(next, nullptr) << "missing " << key;
    if (!next || !next->is_object()) {
      ADD_FAILURE() << key << " is not an object";
      return root;
    }
    cur = &next->as_object();
  }
  return *cur;
}
const json::object& At(const json::value& root, std::initializer_list<std::string_view> path) {
  return At(root.as_object(), path);
}

TEST(OpenApi, DescribesEveryCollection) {
  const schema::Snapshot snap = TwoCollections(false);
  const json::value doc = OpenApiDocument(snap, {.version = "1.2.3", .metrics = true, .batch = true});
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
  EXPECT_EQ(doc.at("info").at("title"), "Basalt");
  EXPECT_EQ(doc.at("info").at("version"), "1.2.3");

  const auto& schemas = At(doc, {"components", "schemas"});
  for (const char* name : {"Problem", "Collection", "Collections", "UsersRecord", "UsersItem", "UsersCreate",
                           "UsersPatch", "UsersList", "BlogPostsRecord", "BlogPostsItem", "BlogPostsCreate",
                           "BlogPostsPatch", "BlogPostsList"})
    EXPECT_TRUE(schemas.contains(name)) << name;

  const auto& paths = At(doc, {"paths"});
  for (const char* p : {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/api/v1/batch",
                        "/api/v1/collections", "/api/v1/collections/{name}", "/api/v1/collections/users/records",
                        "/api/v1/collections/users/records/{id}", "/api/v1/collections/blog_posts/records",
                        "/api/v1/collections/blog_posts/records/{id}"})
    EXPECT_TRUE(paths.contains(p)) << p;

  // Record: every member present, nullable user fields, system fields typed.
  const auto& record = At(doc, {"components", "schemas", "BlogPostsRecord"});
  EXPECT_EQ(record.at("additionalProperties"), false);
  EXPECT_EQ(record.at("required").as_array().size(), 4u + 10u);
  EXPECT_EQ(At(record.at("properties"), {"id"}).at("format"), "uuid");
  EXPECT_EQ(At(record.at("properties"), {"views"}).at("type"), (json::array{"integer", "null"}));
  EXPECT_EQ(At(record.at("properties"), {"tags"}).at("type"), "array");
  EXPECT_EQ(At(record.at("properties"), {"due"}).at("format"), "date-time");
  EXPECT_EQ(At(record.at("properties"), {"expand", "properties", "author"}).at("$ref"),
            "#/components/schemas/UsersRecord");

  // Create: constraints; required = required without default; safe patterns only.
  const auto& create = At(doc, {"components", "schemas", "BlogPostsCreate"});
  EXPECT_EQ(create.at("required"), (json::array{"title"}));
  EXPECT_EQ(create.at("additionalProperties"), false);
  const auto& title = At(create.at("properties"), {"title"});
  EXPECT_EQ(title.at("type"), "string");
  EXPECT_EQ(title.at("minLength"), 3);
  EXPECT_EQ(title.at("maxLength"), 200);
  EXPECT_EQ(title.at("pattern"), "^(?:[A-Za-z ]+)$");
  EXPECT_FALSE(At(create.at("properties"), {"slug"}).contains("pattern"));  // (?i) is not ECMA
  EXPECT_EQ(At(create.at("properties"), {"views"}).at("minimum"), 0);
  EXPECT_EQ(At(create.at("properties"), {"score"}).at("maximum"), 2.5);
  EXPECT_EQ(At(create.at("properties"), {"status"}).at("enum"), (json::array{"draft", "live"}));
  EXPECT_EQ(At(create.at("properties"), {"tags"}).at("maxItems"), 2);

  // Operations: statuses, problem responses, security from the rules.
  const auto& list = At(paths, {"/api/v1/collections/users/records", "get"});
  EXPECT_EQ(list.at("security").as_array().size(), 4u);  // public list rule: anonymous, admin token, bearer, API key
  const auto& create_op = At(paths, {"/api/v1/collections/blog_posts/records", "post"});
  EXPECT_EQ(create_op.at("security").as_array().size(), 3u);  // null create rule: admin token, bearer, API key
  for (const char* status : {"201", "400", "401", "403", "409", "415", "422", "500", "503"})
    EXPECT_TRUE(create_op.at("responses").as_object().contains(status)) << status;
  EXPECT_EQ(At(create_op, {"responses", "422"}).at("$ref"), "#/components/responses/Problem422");
  const auto& get = At(paths, {"/api/v1/collections/users/records/{id}", "get"});
  EXPECT_TRUE(get.at("responses").as_object().contains("304"));
  EXPECT_TRUE(At(paths, {"/api/v1/collections/users/records/{id}"}).contains("patch"));
  EXPECT_TRUE(At(doc, {"components", "responses", "Problem422", "content"}).contains("application/problem+json"));
}

TEST(OpenApi, IsDeterministic) {
  const OpenApiOptions options{.version = "1.0.0", .metrics = false, .batch = false};
  const std::string a = json::serialize(OpenApiDocument(TwoCollections(false), options));
  const std::string b = json::serialize(OpenApiDocument(TwoCollections(true), options));
  const std::string c = json::serialize(OpenApiDocument(TwoCollections(false), options));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a.find("/metrics"), std::string::npos);
  EXPECT_EQ(a.find("/api/v1/batch"), std::string::npos);
  // Collections in name order.
  EXPECT_LT(a.find("/api/v1/collections/blog_posts/records"), a.find("/api/v1/collections/users/records"));
}

TEST(OpenApi, EmptyCatalog) {
  const json::value doc = OpenApiDocument(schema::Snapshot{}, {});
  EXPECT_TRUE(doc.at("paths").as_object().contains("/api/v1/collections"));
  EXPECT_EQ(doc.at("components").at("schemas").as_object().size(), 29u);  // incl. AuditEntry, AuditLog, TokenPair, AuthUser and 17 access schemas
  EXPECT_TRUE(doc.at("paths").as_object().contains("/api/v1/audit-log"));
}

TEST(OpenApi, SchemaBaseNameIsOneToOne) {
  EXPECT_EQ(SchemaBaseName("posts"), "Posts");
  EXPECT_EQ(SchemaBaseName("blog_posts"), "BlogPosts");
  EXPECT_EQ(SchemaBaseName("a1_b"), "A1B");
  EXPECT_EQ(SchemaBaseName("a_1"), "A_1");
  EXPECT_EQ(SchemaBaseName("ab_"), "Ab_");
  EXPECT_NE(SchemaBaseName("ab_"), SchemaBaseName("ab"));
  EXPECT_NE(SchemaBaseName("a_bc"), SchemaBaseName("ab_c"));
}

TEST(OpenApi, EcmaPatternOnlyWhenSafe) {
  EXPECT_EQ(EcmaPattern("[a-z]+"), "^(?:[a-z]+)$");
  EXPECT_EQ(EcmaPattern("a|b"), "^(?:a|b)$");
  EXPECT_EQ(EcmaPattern("\\d{3}-\\d{2,}"), "^(?:\\d{3}-\\d{2,})$");
  EXPECT_EQ(EcmaPattern("(?:ab)+c\\.d"), "^(?:(?:ab)+c\\.d)$");
  EXPECT_EQ(EcmaPattern("[\\w\\-]+"), "^(?:[\\w\\-]+)$");
  for (const char* unsafe : {"(?i)abc", "(?P<x>a)", "\\pL+", "\\Aabc\\z", "[[:alpha:]]", "\\Qa.b\\E", "a{", "a}",
                             "a{,3}", "(ab", "ab)", "[ab", "\\x{41}", "a\\-b", "caf\xc3\xa9", "[]a]"})
    EXPECT_EQ(EcmaPattern(unsafe), "") << unsafe;
}

}  // namespace
}  // namespace basalt::api
