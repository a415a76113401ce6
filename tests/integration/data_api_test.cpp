// The data API against the real binary: collections (admin token), record CRUD with conditional
// requests, validation errors, rules, lists (filter, sort, fields, limit, keyset cursors under
// concurrent inserts), schema changes that keep data, injection attempts, and a restart on the
// same data directory. Each test starts its own process on port 0 in a fresh temp dir.

#include <signal.h>

#include <boost/json.hpp>
#include <atomic>
#include <thread>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kToken = kTestAdminToken;



using Api = ApiClient;

std::string Code(const HttpResponse& r) {
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("code")) return "";
  return std::string(v.as_object().at("code").as_string());
}

/// The (field, code) pairs of a problem's errors.
std::set<std::pair<std::string, std::string>> FieldErrors(const HttpResponse& r) {
  std::set<std::pair<std::string, std::string>> out;
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("errors")) return out;
  for (const auto& e : v.as_object().at("errors").as_array()) {
    out.emplace(std::string(e.as_object().at("field").as_string()), std::string(e.as_object().at("code").as_string()));
  }
  return out;
}

ProcessOptions WithToken() { return ProcessOptions{{}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, true}; }

constexpr const char* kUsers = R"({"name": "members", "fields": [{"name": "name", "type": "text", "required": true}],
  "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})";
constexpr const char* kPosts = R"({
  "name": "posts",
  "fields": [
    {"name": "title",  "type": "text", "required": true, "max_length": 200},
    {"name": "body",   "type": "text"},
    {"name": "views",  "type": "integer", "min": 0, "default": 0},
    {"name": "status", "type": "select", "values": ["draft", "live"]},
    {"name": "author", "type": "relation", "collection": "members", "on_delete": "cascade"}
  ],
  "indexes": [{"fields": ["views"]}, {"fields": ["author", "created_at"]}, {"fields": ["title"], "unique": true}],
  "rules": {"list": "status = 'live'", "view": "status = 'live'", "create": "@request.auth.id != null",
            "update": "author = @request.auth.id", "delete": null}
})";

void CreateCollections(const Api& api) {
  auto u = api.Call("POST", "/api/v1/collections", kUsers);
  ASSERT_EQ(u.status, 201) << u.body;
  auto p = api.Call("POST", "/api/v1/collections", kPosts);
  ASSERT_EQ(p.status, 201) << p.body;
  EXPECT_EQ(p.Header("Location").value_or(""), "/api/v1/collections/posts");
}

std::string CreateUser(const Api& api, const std::string& name) {
  auto r = api.Call("POST", "/api/v1/collections/members/records", R"({"name": ")" + name + "\"}");
  EXPECT_EQ(r.status, 201) << r.body;
  return std::string(ParseJson(r.body).as_object().at("id").as_string());
}

TEST(DataApi, CollectionManagementNeedsTheAdminToken) {
  BasaltProcess none;  // no token configured
  ASSERT_TRUE(none.started()) << none.start_error();
  auto r = Api{none.port()}.Call("POST", "/api/v1/collections", kUsers);
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.Header("WWW-Authenticate").value_or("").starts_with("Bearer"));

  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  for (const char* auth : {"", "Bearer wrong", "Bearer test-admin-token-0123456789abcdef0124", "Basic x"}) {
    Headers h;
    if (*auth) h.emplace_back("Authorization", auth);
    auto denied = api.Anonymous().Call("GET", "/api/v1/collections", {}, h);
    EXPECT_EQ(denied.status, 401) << auth;
    EXPECT_TRUE(denied.HasHeader("WWW-Authenticate"));
  }
  auto listed = api.Call("GET", "/api/v1/collections");
  EXPECT_EQ(listed.status, 200);
  // A fresh server has only the built-in users collection.
  auto items = ParseJson(listed.body).as_object().at("items").as_array();
  ASSERT_EQ(items.size(), 1u) << listed.body;
  EXPECT_EQ(items[0].as_object().at("name").as_string(), "users");
}

TEST(DataApi, CrudAndConditionalRequests) {
  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  CreateCollections(api);
  const std::string ann = CreateUser(api, "ann");

  auto created = api.Call("POST", "/api/v1/collections/posts/records",
                          R"({"title": "Hello", "status": "live", "author": ")" + ann + "\"}");
  ASSERT_EQ(created.status, 201) << created.body;
  const json::object rec = ParseJson(created.body).as_object();
  const std::string id(rec.at("id").as_string());
  EXPECT_EQ(created.Header("Location").value_or(""), "/api/v1/collections/posts/records/" + id);
  EXPECT_EQ(created.Header("ETag").value_or(""), "\"1\"");
  EXPECT_EQ(rec.at("version").as_int64(), 1);
  EXPECT_EQ(rec.at("views").as_int64(), 0);  // default
  EXPECT_TRUE(rec.at("created_at").as_string().ends_with("Z"));
  const std::string path = "/api/v1/collections/posts/records/" + id;

  auto got = api.Call("GET", path);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(ParseJson(got.body), json::value(rec));
  EXPECT_EQ(api.Call("GET", path, {}, {{"If-None-Match", "\"1\""}}).status, 304);
  EXPECT_EQ(api.Call("GET", path, {}, {{"If-None-Match", "W/\"1\", \"7\""}}).status, 304);
  EXPECT_EQ(api.Call("GET", path, {}, {{"If-None-Match", "\"2\""}}).status, 200);

  // PATCH (merge patch) with a stale If-Match, then the right one.
  auto stale = api.Call("PATCH", path, R"({"views": 5})",
                        {{"If-Match", "\"9\""}, {"Content-Type", "application/merge-patch+json"}});
  EXPECT_EQ(stale.status, 412) << stale.body;
  auto patched = api.Call("PATCH", path, R"({"views": 5, "body": "text"})",
                          {{"If-Match", "\"1\""}, {"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.Header("ETag").value_or(""), "\"2\"");
  auto p = ParseJson(patched.body).as_object();
  EXPECT_EQ(p.at("views").as_int64(), 5);
  EXPECT_EQ(p.at("title").as_string(), "Hello");
  EXPECT_EQ(p.at("created_at"), rec.at("created_at"));
  // null removes: back to the default / null.
  auto removed = api.Call("PATCH", path, R"({"views": null, "body": null})");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(ParseJson(removed.body).as_object().at("views").as_int64(), 0);
  EXPECT_TRUE(ParseJson(removed.body).as_object().at("body").is_null());

  // PUT replaces: fields not sent become default / null.
  auto put = api.Call("PUT", path, R"({"title": "Replaced", "status": "live"})", {{"If-Match", "\"3\""}});
  ASSERT_EQ(put.status, 200) << put.body;
  auto q = ParseJson(put.body).as_object();
  EXPECT_EQ(q.at("version").as_int64(), 4);
  EXPECT_TRUE(q.at("author").is_null());

  // Wrong media type, bad JSON, too deep JSON.
  EXPECT_EQ(api.Call("PATCH", path, R"({"views": 1})", {{"Content-Type", "text/plain"}}).status, 415);
  EXPECT_EQ(api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "x"})",
                     {{"Content-Type", "application/merge-patch+json"}}).status, 415);
  EXPECT_EQ(api.Call("POST", "/api/v1/collections/posts/records", R"({"title": )").status, 400);
  EXPECT_EQ(api.Call("POST", "/api/v1/collections/posts/records", std::string(70, '[') + std::string(70, ']')).status, 400);

  // Unique violation, missing relation target, unknown collection, unknown record.
  auto dup = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "Replaced"})");
  EXPECT_EQ(dup.status, 409) << dup.body;
  auto ghost = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "G", "author": "no-such-user"})");
  EXPECT_EQ(ghost.status, 422) << ghost.body;
  EXPECT_TRUE(FieldErrors(ghost).count({"author", "relation"})) << ghost.body;
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/nope/records").status, 404);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/posts/records/nope").status, 404);

  // DELETE: stale If-Match, then success, then gone.
  EXPECT_EQ(api.Call("DELETE", path, {}, {{"If-Match", "\"1\""}}).status, 412);
  EXPECT_EQ(api.Call("DELETE", path, {}, {{"If-Match", "\"4\""}}).status, 204);
  EXPECT_EQ(api.Call("GET", path).status, 404);

  // on_delete cascade.
  auto child = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "Child", "author": ")" + ann + "\"}");
  ASSERT_EQ(child.status, 201);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/members/records/" + ann).status, 204);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/posts/records/" +
                                std::string(ParseJson(child.body).as_object().at("id").as_string())).status,
            404);
}

TEST(DataApi, RulesAreSqlPredicates) {
  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  CreateCollections(api);
  auto live = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "L", "status": "live"})");
  auto draft = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "D", "status": "draft"})");
  ASSERT_EQ(live.status, 201);
  ASSERT_EQ(draft.status, 201);
  const Api anon = api.Anonymous();
  auto list = anon.Call("GET", "/api/v1/collections/posts/records?count=true");
  ASSERT_EQ(list.status, 200) << list.body;
  auto body = ParseJson(list.body).as_object();
  EXPECT_EQ(body.at("items").as_array().size(), 1u);
  EXPECT_EQ(body.at("total").as_int64(), 1);
  EXPECT_TRUE(body.at("next_cursor").is_null());
  const std::string draft_id(ParseJson(draft.body).as_object().at("id").as_string());
  const std::string live_id(ParseJson(live.body).as_object().at("id").as_string());
  EXPECT_EQ(anon.Call("GET", "/api/v1/collections/posts/records/" + draft_id).status, 404);
  EXPECT_EQ(anon.Call("GET", "/api/v1/collections/posts/records/" + live_id).status, 200);
  // create rule needs a user: anonymous is refused; update rule never matches anonymous: 404;
  // delete rule is null (admins only): 401.
  EXPECT_EQ(anon.Call("POST", "/api/v1/collections/posts/records", R"({"title": "A"})").status, 403);
  EXPECT_EQ(anon.Call("PATCH", "/api/v1/collections/posts/records/" + live_id, R"({"title": "A"})").status, 404);
  auto del = anon.Call("DELETE", "/api/v1/collections/posts/records/" + live_id);
  EXPECT_EQ(del.status, 401);
  EXPECT_TRUE(del.HasHeader("WWW-Authenticate"));
  // A wrong token is not anonymous.
  EXPECT_EQ(anon.Call("GET", "/api/v1/collections/posts/records", {}, {{"Authorization", "Bearer nope"}}).status, 401);
  // Admin sees everything.
  auto all = api.Call("GET", "/api/v1/collections/posts/records");
  EXPECT_EQ(ParseJson(all.body).as_object().at("items").as_array().size(), 2u);
}

struct Invalid {
  const char* name;
  const char* body;
  const char* field;
  const char* code;
};
void PrintTo(const Invalid& c, std::ostream* os) { *os << c.name; }

class DataApiValidation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new BasaltProcess(WithToken());
    ASSERT_TRUE(server_->started()) << server_->start_error();
    const Api api{server_->port()};
    auto r = api.Call("POST", "/api/v1/collections", R"({"name": "things", "fields": [
      {"name": "title", "type": "text", "required": true, "min_length": 2, "max_length": 5},
      {"name": "code", "type": "text", "pattern": "^[A-Z]{3}$"},
      {"name": "n", "type": "integer", "min": 0, "max": 10},
      {"name": "x", "type": "number"}, {"name": "ok", "type": "bool"}, {"name": "at", "type": "datetime"},
      {"name": "meta", "type": "json"}, {"name": "mail", "type": "email"}, {"name": "site", "type": "url"},
      {"name": "kind", "type": "select", "values": ["a", "b"]},
      {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static BasaltProcess* server_;
};
BasaltProcess* DataApiValidation::server_ = nullptr;

TEST_F(DataApiValidation, EveryRecordErrorIs422WithItsField) {
  const Invalid cases[] = {
      {"NotObject", R"([])", "", "type"},
      {"Unknown", R"({"title": "ab", "zzz": 1})", "zzz", "unknown_field"},
      {"ReadOnly", R"({"title": "ab", "id": "x"})", "id", "read_only"},
      {"ReadOnlyUpdated", R"({"title": "ab", "updated_at": "x"})", "updated_at", "read_only"},
      {"Required", R"({})", "title", "required"},
      {"Type", R"({"title": 1})", "title", "type"},
      {"MinLength", R"({"title": "a"})", "title", "min_length"},
      {"MaxLength", R"({"title": "abcdef"})", "title", "max_length"},
      {"Pattern", R"({"title": "ab", "code": "abc"})", "code", "pattern"},
      {"Min", R"({"title": "ab", "n": -1})", "n", "min"},
      {"Max", R"({"title": "ab", "n": 11})", "n", "max"},
      {"IntegerType", R"({"title": "ab", "n": 2.5})", "n", "type"},
      {"NumberType", R"({"title": "ab", "x": "2"})", "x", "type"},
      {"BoolType", R"({"title": "ab", "ok": "yes"})", "ok", "type"},
      {"Datetime", R"({"title": "ab", "at": "2026-02-30T00:00:00Z"})", "at", "datetime"},
      {"Email", R"({"title": "ab", "mail": "nobody"})", "mail", "email"},
      {"Url", R"({"title": "ab", "site": "ftp://x"})", "site", "url"},
      {"Select", R"({"title": "ab", "kind": "c"})", "kind", "select"},
      {"MultiSelect", R"({"title": "ab", "tags": ["a", "c"]})", "tags", "select"},
  };
  const Api api{server_->port()};
  for (const auto& c : cases) {
    auto r = api.Call("POST", "/api/v1/collections/things/records", c.body);
    EXPECT_EQ(r.status, 422) << c.name << ": " << r.body;
    EXPECT_EQ(Code(r), "validation_failed") << c.name;
    EXPECT_TRUE(FieldErrors(r).count({c.field, c.code})) << c.name << ": " << r.body;
  }
  // A valid record echoes typed values.
  auto ok = api.Call("POST", "/api/v1/collections/things/records",
                     R"({"title": "ab", "code": "XYZ", "n": 3, "x": 1.5, "ok": true, "at": "2026-01-02T03:04:05+01:00",
                         "meta": {"k": [1, null]}, "mail": "a@b.co", "site": "https://x.org", "kind": "a", "tags": ["b"]})");
  ASSERT_EQ(ok.status, 201) << ok.body;
  auto o = ParseJson(ok.body).as_object();
  EXPECT_EQ(o.at("ok"), json::value(true));
  EXPECT_EQ(o.at("x"), json::value(1.5));
  EXPECT_EQ(o.at("at"), json::value("2026-01-02T02:04:05.000Z"));
  EXPECT_EQ(o.at("meta"), ParseJson(R"({"k": [1, null]})"));
  EXPECT_EQ(o.at("tags"), ParseJson(R"(["b"])"));
  auto again = api.Call("GET", "/api/v1/collections/things/records/" + std::string(o.at("id").as_string()));
  EXPECT_EQ(ParseJson(again.body), json::value(o));
  // Filters over typed fields.
  for (const char* f : {"ok = true", "x > 1", "tags = 'b'", "at >= '2026-01-01T00:00:00.000Z'", "meta != null"}) {
    auto l = api.Call("GET", "/api/v1/collections/things/records?filter=" + UrlEncode(f));
    ASSERT_EQ(l.status, 200) << f << ": " << l.body;
    EXPECT_EQ(ParseJson(l.body).as_object().at("items").as_array().size(), 1u) << f;
  }
}

TEST_F(DataApiValidation, EveryCollectionErrorIs422) {
  const Api api{server_->port()};
  const std::pair<const char*, const char*> cases[] = {
      {R"({"name": "Bad"})", "name"},
      {R"({"name": "things2", "fields": [{"name": "id", "type": "text"}]})", "fields[0].name"},
      {R"({"name": "things2", "fields": [{"name": "a", "type": "blob"}]})", "fields[0].type"},
      {R"({"name": "things2", "fields": [{"name": "a", "type": "relation", "collection": "ghosts"}]})", "fields[0].collection"},
      {R"({"name": "things2", "rules": {"list": "nope = 1"}})", "rules.list"},
      {R"({"name": "things2", "indexes": [{"fields": ["zz"]}]})", "indexes[0].fields[0]"},
  };
  for (const auto& [body, field] : cases) {
    auto r = api.Call("POST", "/api/v1/collections", body);
    EXPECT_EQ(r.status, 422) << body << ": " << r.body;
    bool found = false;
    for (const auto& [f, _] : FieldErrors(r)) found = found || f == field;
    EXPECT_TRUE(found) << body << ": " << r.body;
  }
  EXPECT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": "things"})").status, 409);
}

TEST(DataApi, ListsPageWithKeysetCursorsUnderConcurrentInserts) {
  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  auto c = api.Call("POST", "/api/v1/collections", R"({"name": "items", "fields": [
      {"name": "title", "type": "text"}, {"name": "views", "type": "integer"}],
      "indexes": [{"fields": ["views"]}], "rules": {"list": "", "view": "", "create": ""}})");
  ASSERT_EQ(c.status, 201) << c.body;
  // 10,000 rows through /api/v1/batch (100 operations per request) over one keep-alive
  // connection; views repeat (ties) and some are null.
  constexpr int kRows = 10000;
  std::set<std::string> originals;
  {
    RawConnection conn(server.port());
    ASSERT_TRUE(conn.connected());
    for (int batch = 0; batch < kRows / 100; ++batch) {
      std::string ops = R"({"operations": [)";
      for (int j = 0; j < 100; ++j) {
        const int i = batch * 100 + j;
        const std::string record = i % 10 == 0 ? R"({"title": "t)" + std::to_string(i) + "\"}"
                                               : R"({"title": "t)" + std::to_string(i) + R"(", "views": )" +
                                                     std::to_string(i % 37) + "}";
        if (j > 0) ops += ",";
        ops += R"({"method": "POST", "path": "/api/v1/collections/items/records", "body": )" + record + "}";
      }
      ops += "]}";
      ASSERT_TRUE(conn.Send(BuildRequest("POST", "/api/v1/batch", {{"Content-Type", "application/json"}}, ops)));
      auto r = conn.ReadResponse();
      ASSERT_EQ(r.status, 200) << r.body;
      const auto doc = ParseJson(r.body);  // keep the document alive for the loop
      for (const auto& result : doc.as_object().at("results").as_array()) {
        ASSERT_EQ(result.as_object().at("status").as_int64(), 201);
        originals.insert(std::string(result.as_object().at("body").as_object().at("id").as_string()));
      }
    }
  }
  ASSERT_EQ(originals.size(), static_cast<std::size_t>(kRows));

  for (const std::string sort : {"-views,title", "views", "title", "", "-created_at", "-id,views"}) {
    std::vector<std::string> seen;
    std::string cursor;
    int pages = 0, inserted = 0;
    std::optional<std::int64_t> previous_views;
    while (true) {
      std::string target = "/api/v1/collections/items/records?limit=200&count=true&fields=id,views";
      if (!sort.empty()) target += "&sort=" + UrlEncode(sort);
      if (!cursor.empty()) target += "&cursor=" + cursor;
      auto r = api.Anonymous().Call("GET", target);
      ASSERT_EQ(r.status, 200) << r.body;
      auto body = ParseJson(r.body).as_object();
      EXPECT_GE(body.at("total").as_int64(), kRows + inserted);
      EXPECT_EQ(body.at("items").as_array().size(), body.at("next_cursor").is_null() ? body.at("items").as_array().size() : 200u);
      for (const auto& item : body.at("items").as_array()) {
        EXPECT_EQ(item.as_object().size(), 2u);  // projection
        seen.emplace_back(item.as_object().at("id").as_string());
        if (sort == "views" && item.as_object().at("views").is_int64()) {
          const auto v = item.as_object().at("views").as_int64();
          if (previous_views) EXPECT_LE(*previous_views, v);
          previous_views = v;
        }
      }
      ++pages;
      // Concurrent inserts between pages, sorting both before and after the cursor.
      auto ins = api.Call("POST", "/api/v1/collections/items/records",
                          R"({"title": "new)" + std::to_string(pages) + R"(", "views": )" + std::to_string(pages % 40) + "}");
      ASSERT_EQ(ins.status, 201);
      ++inserted;
      if (body.at("next_cursor").is_null()) {
        EXPECT_FALSE(r.HasHeader("Link"));
        break;
      }
      cursor = std::string(body.at("next_cursor").as_string());
      const std::string link = r.Header("Link").value_or("");
      EXPECT_NE(link.find("cursor=" + cursor + ">; rel=\"next\""), std::string::npos) << link;
      ASSERT_LT(pages, 100);
    }
    std::set<std::string> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), seen.size()) << "a row repeated with sort=" << sort;
    for (const auto& id : originals) EXPECT_TRUE(unique.count(id)) << "row skipped with sort=" << sort;
  }

  // Limits and bad parameters.
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/items/records?limit=501").status, 400);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/items/records?limit=0").status, 400);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/items/records?limit=x").status, 400);
  auto max = api.Call("GET", "/api/v1/collections/items/records?limit=500");
  EXPECT_EQ(ParseJson(max.body).as_object().at("items").as_array().size(), 500u);
  auto def = api.Call("GET", "/api/v1/collections/items/records");
  EXPECT_EQ(ParseJson(def.body).as_object().at("items").as_array().size(), 50u);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/items/records?cursor=garbage!").status, 400);
  // A cursor from another sort is refused.
  auto first = ParseJson(api.Call("GET", "/api/v1/collections/items/records?sort=title&limit=2").body);
  const std::string other(first.as_object().at("next_cursor").as_string());
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/items/records?sort=views&cursor=" + other).status, 400);
  // Filter errors carry a position.
  auto bad = api.Call("GET", "/api/v1/collections/items/records?filter=" + UrlEncode("views > "));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("at "), std::string::npos) << bad.body;
}

TEST(DataApi, SchemaChangesKeepData) {
  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  CreateCollections(api);
  auto r = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "Keep", "views": 7, "status": "live"})");
  ASSERT_EQ(r.status, 201);
  const std::string path = "/api/v1/collections/posts/records/" + std::string(ParseJson(r.body).as_object().at("id").as_string());
  // Rename title -> headline, integer views -> number, add a field with a default, drop body, change a rule.
  auto patched = api.Call("PATCH", "/api/v1/collections/posts", R"({"fields": [
      {"name": "headline", "type": "text", "required": true, "previous_name": "title"},
      {"name": "views", "type": "number", "min": 0},
      {"name": "status", "type": "select", "values": ["draft", "live"]},
      {"name": "author", "type": "relation", "collection": "members", "on_delete": "cascade"},
      {"name": "featured", "type": "bool", "default": false}],
      "indexes": [{"fields": ["views"]}, {"fields": ["headline"], "unique": true}],
      "rules": {"list": ""}})", {{"If-Match", "\"1\""}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.Header("ETag").value_or(""), "\"2\"");
  auto got = api.Call("GET", path);
  ASSERT_EQ(got.status, 200) << got.body;
  auto o = ParseJson(got.body).as_object();
  EXPECT_EQ(o.at("headline"), json::value("Keep"));
  EXPECT_EQ(o.at("views").to_number<double>(), 7.0);
  EXPECT_EQ(o.at("featured"), json::value(false));
  EXPECT_FALSE(o.contains("title"));
  EXPECT_FALSE(o.contains("body"));
  // Unsafe change, stale version, rename of a collection.
  auto unsafe = api.Call("PATCH", "/api/v1/collections/posts", R"({"fields": [
      {"name": "headline", "type": "integer"}, {"name": "views", "type": "number"},
      {"name": "status", "type": "select", "values": ["draft", "live"]},
      {"name": "author", "type": "relation", "collection": "members", "on_delete": "cascade"},
      {"name": "featured", "type": "bool"}], "indexes": []})");
  EXPECT_EQ(unsafe.status, 409) << unsafe.body;
  EXPECT_EQ(api.Call("PATCH", "/api/v1/collections/posts", R"({"rules": {}})", {{"If-Match", "\"1\""}}).status, 412);
  EXPECT_EQ(api.Call("PATCH", "/api/v1/collections/posts", R"({"name": "other"})").status, 409);
  // The members collection is still referenced.
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/members").status, 409);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/posts").status, 204);
  EXPECT_EQ(api.Call("GET", path).status, 404);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/members").status, 204);
}

TEST(DataApi, InjectionAttemptsAreRefusedOrLiteral) {
  BasaltProcess server(WithToken());
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  CreateCollections(api);
  const std::string weird = "x' OR 1=1 --\"; DROP TABLE c_posts; /* é ☃ */";
  json::object body{{"title", weird}, {"status", "live"}};
  auto created = api.Call("POST", "/api/v1/collections/posts/records", json::serialize(body));
  ASSERT_EQ(created.status, 201) << created.body;
  ASSERT_EQ(api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "plain", "status": "live"})").status, 201);

  // Literal matches: exactly the weird record.
  json::string quoted = json::serialize(json::value(weird)).c_str();
  for (const std::string filter : {"title = " + std::string(quoted.c_str()), std::string("title ~ 'DROP TABLE'"),
                                   std::string("title ~ '☃'"), std::string("\"x' OR 1=1 --\\\"; DROP TABLE c_posts; /* é ☃ */\" = title")}) {
    auto r = api.Call("GET", "/api/v1/collections/posts/records?filter=" + UrlEncode(filter));
    ASSERT_EQ(r.status, 200) << filter << ": " << r.body;
    EXPECT_EQ(ParseJson(r.body).as_object().at("items").as_array().size(), 1u) << filter;
  }
  // Refused with 4xx, never 500.
  const std::vector<std::string> filters = {
      "title = 'a' OR 1=1", "1 = 1; DROP TABLE c_posts", "title = 'a' -- ", "title = \"a", "title /* x */ = 'a'",
      std::string("title = 'a\0b'", 13), "title = 'a' || c_posts.id = 'x'", "title.x = 1",
      "sqlite_master = 1", "@request.auth.id = 1 || 1", "title = 'é' && (((((((((((((((((((((((((((((((((((x = 1)))))))))))))))))))))))))))))))))"};
  for (const auto& f : filters) {
    auto r = api.Call("GET", "/api/v1/collections/posts/records?filter=" + UrlEncode(f));
    EXPECT_GE(r.status, 400) << f << ": " << r.body;
    EXPECT_LT(r.status, 500) << f << ": " << r.body;
  }
  for (const std::string param : {"sort=" + UrlEncode("title;DROP TABLE c_posts"), "sort=" + UrlEncode("\"title\""),
                                   "sort=" + UrlEncode("title desc"), "sort=" + UrlEncode("-"), "sort=" + UrlEncode("title,title"),
                                   "sort=" + UrlEncode("(SELECT 1)"), "fields=" + UrlEncode("id,\"x\""),
                                   "fields=" + UrlEncode("*"), "fields=" + UrlEncode("id;--"), std::string("filter=%ZZ"),
                                   "cursor=" + UrlEncode("W1siJyBPUiAxPTEgLS0iXV0")}) {
    auto r = api.Call("GET", "/api/v1/collections/posts/records?" + param);
    EXPECT_GE(r.status, 400) << param << ": " << r.body;
    EXPECT_LT(r.status, 500) << param << ": " << r.body;
  }
  for (const std::string name : {UrlEncode("posts\""), UrlEncode("posts'--"), UrlEncode("pöst"), UrlEncode("c_posts"),
                                 UrlEncode("basalt_collections"), UrlEncode(std::string_view("posts\0x", 7)), UrlEncode("POSTS")}) {
    auto r = api.Call("GET", "/api/v1/collections/" + name + "/records");
    EXPECT_GE(r.status, 400) << name;
    EXPECT_LT(r.status, 500) << name;
  }
  auto bad_name = api.Call("POST", "/api/v1/collections", R"({"name": "x\"; DROP TABLE basalt_collections; --"})");
  EXPECT_EQ(bad_name.status, 422);
  // Everything is still there.
  auto all = api.Call("GET", "/api/v1/collections/posts/records");
  EXPECT_EQ(ParseJson(all.body).as_object().at("items").as_array().size(), 2u);
}

std::uint16_t WaitPort(const std::string& log_path) {
  std::uint16_t port = 0;
  WaitUntil(
      [&] {
        const std::string log = ReadFile(log_path);
        const auto at = log.find("\"msg\":\"listening\"");
        if (at == std::string::npos) return false;
        const auto p = log.find("\"port\":", at);
        if (p == std::string::npos) return false;
        port = static_cast<std::uint16_t>(std::stoi(log.substr(p + 7)));
        return true;
      },
      20s);
  return port;
}

TEST(DataApi, DataSurvivesARestart) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const Env env{{"BASALT_AUTH__ADMIN_TOKEN", kToken}};
  std::string id;
  for (int run = 0; run < 2; ++run) {
    const std::string log = dir.path() + "/run" + std::to_string(run) + ".log";
    const pid_t pid = Spawn({BinaryPath(), "serve", "--port", "0", "--data-dir", data}, env, log);
    ASSERT_GT(pid, 0);
    const std::uint16_t port = WaitPort(log);
    ASSERT_NE(port, 0) << ReadFile(log);
    const Api api{port};
    if (run == 0) {
      CreateCollections(api);
      auto r = api.Call("POST", "/api/v1/collections/posts/records", R"({"title": "Durable", "status": "live"})");
      ASSERT_EQ(r.status, 201);
      id = std::string(ParseJson(r.body).as_object().at("id").as_string());
    } else {
      auto r = api.Call("GET", "/api/v1/collections/posts/records/" + id);
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(ParseJson(r.body).as_object().at("title"), json::value("Durable"));
      auto c = api.Call("GET", "/api/v1/collections/posts");
      EXPECT_EQ(c.status, 200);
      EXPECT_EQ(ParseJson(c.body).as_object().at("rules").as_object().at("list"), json::value("status = 'live'"));
    }
    kill(pid, SIGTERM);
    EXPECT_EQ(WaitPid(pid, 20s), 0) << ReadFile(log);
  }
}

// The same data API on each backend: SQLite always, PostgreSQL when BASALT_TEST_POSTGRES_URL is
// set (e.g. from scripts/pg-test-cluster.sh). Collection names are unique per run because a
// PostgreSQL database outlives the test.
class DataApiBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_.emplace_back("BASALT_AUTH__ADMIN_TOKEN", kToken);
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }
  Env env_;
  std::string suffix_;
};

TEST_P(DataApiBackend, CrudListCursorAndSchemaChange) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string users = "u" + suffix_, posts = "p" + suffix_;
  const std::string base = "/api/v1/collections/" + posts + "/records";
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + users + R"(", "fields": [{"name": "name", "type": "text"}]})").status, 201);
  auto c = api.Call("POST", "/api/v1/collections", R"({"name": ")" + posts + R"(", "fields": [
      {"name": "title", "type": "text", "unique": true}, {"name": "views", "type": "integer"},
      {"name": "live", "type": "bool"}, {"name": "score", "type": "number"},
      {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true},
      {"name": "author", "type": "relation", "collection": ")" + users + R"(", "on_delete": "set_null"}],
      "rules": {"list": "live = true", "view": ""}})");
  ASSERT_EQ(c.status, 201) << c.body;
  auto u = api.Call("POST", "/api/v1/collections/" + users + "/records", R"({"name": "ann"})");
  ASSERT_EQ(u.status, 201);
  const std::string ann(ParseJson(u.body).as_object().at("id").as_string());
  std::set<std::string> live_ids;
  for (int i = 0; i < 120; ++i) {
    json::object rec{{"title", "t" + std::to_string(i)}, {"live", i % 3 != 0}, {"tags", json::array{i % 2 ? "a" : "b"}}};
    if (i % 4) rec["views"] = i % 7;
    if (i % 5) rec["score"] = i / 10.0;
    if (i % 2) rec["author"] = ann;
    auto r = api.Call("POST", base, json::serialize(rec));
    ASSERT_EQ(r.status, 201) << r.body;
    if (i % 3 != 0) live_ids.insert(std::string(ParseJson(r.body).as_object().at("id").as_string()));
  }
  EXPECT_EQ(api.Call("POST", base, R"({"title": "t1"})").status, 409);
  EXPECT_EQ(api.Call("POST", base, R"({"title": "x", "author": "nobody"})").status, 422);
  for (const std::string sort : {"-views,score", "live,-title", "score", "-author,views"}) {
    std::set<std::string> seen;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      std::string target = base + "?limit=9&sort=" + UrlEncode(sort) + (cursor.empty() ? "" : "&cursor=" + cursor);
      auto r = api.Anonymous().Call("GET", target);
      ASSERT_EQ(r.status, 200) << r.body;
      auto body = ParseJson(r.body).as_object();
      for (const auto& item : body.at("items").as_array()) {
        EXPECT_TRUE(seen.insert(std::string(item.as_object().at("id").as_string())).second) << sort;
      }
      ASSERT_EQ(api.Call("POST", base, R"({"title": "n)" + sort + std::to_string(page) + R"(", "live": false})").status, 201);
      if (body.at("next_cursor").is_null()) break;
      cursor = std::string(body.at("next_cursor").as_string());
    }
    EXPECT_EQ(seen, live_ids) << sort;
  }
  auto f = api.Anonymous().Call("GET", base + "?count=true&filter=" + UrlEncode("tags = 'a' && author.name = 'ann' && score >= 1"));
  ASSERT_EQ(f.status, 200) << f.body;
  EXPECT_GT(ParseJson(f.body).as_object().at("total").as_int64(), 0);
  auto patched = api.Call("PATCH", "/api/v1/collections/" + posts, R"({"fields": [
      {"name": "headline", "type": "text", "unique": true, "previous_name": "title"}, {"name": "views", "type": "number"},
      {"name": "live", "type": "bool"}, {"name": "score", "type": "number"},
      {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true},
      {"name": "author", "type": "relation", "collection": ")" + users + R"(", "on_delete": "set_null"},
      {"name": "flag", "type": "bool", "default": true}]})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  auto one = api.Anonymous().Call("GET", base + "?limit=1&filter=" + UrlEncode("headline = 't1'"));
  ASSERT_EQ(one.status, 200) << one.body;
  auto item = ParseJson(one.body).as_object().at("items").as_array().at(0).as_object();
  EXPECT_EQ(item.at("flag"), json::value(true));
  EXPECT_EQ(item.at("author"), json::value(ann));
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/" + users + "/records/" + ann).status, 204);
  auto after = api.Call("GET", base + "/" + std::string(item.at("id").as_string()));
  EXPECT_TRUE(ParseJson(after.body).as_object().at("author").is_null()) << after.body;  // set_null
  // Dropping the relation field keeps every other value; its name is free again for a new field.
  auto bob = api.Call("POST", "/api/v1/collections/" + users + "/records", R"({"name": "bob"})");
  ASSERT_EQ(bob.status, 201);
  const std::string bob_id(ParseJson(bob.body).as_object().at("id").as_string());
  const std::string item_url = base + "/" + std::string(item.at("id").as_string());
  ASSERT_EQ(api.Call("PATCH", item_url, R"({"author": ")" + bob_id + R"("})").status, 200);
  const std::string without_author = R"({"fields": [
      {"name": "headline", "type": "text", "unique": true}, {"name": "views", "type": "number"},
      {"name": "live", "type": "bool"}, {"name": "score", "type": "number"},
      {"name": "tags", "type": "select", "values": ["a", "b"], "multi": true}, {"name": "flag", "type": "bool"})";
  auto dropped = api.Call("PATCH", "/api/v1/collections/" + posts, without_author + "]}");
  ASSERT_EQ(dropped.status, 200) << dropped.body;
  auto kept = api.Call("GET", item_url);
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_FALSE(ParseJson(kept.body).as_object().contains("author")) << kept.body;
  EXPECT_EQ(ParseJson(kept.body).as_object().at("headline"), json::value("t1")) << kept.body;
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/" + users + "/records/" + bob_id).status, 204);
  EXPECT_EQ(api.Call("GET", item_url).status, 200);  // no foreign key left to cascade or block
  auto readded = api.Call("PATCH", "/api/v1/collections/" + posts,
                          without_author + R"(, {"name": "author", "type": "text"}]})");
  ASSERT_EQ(readded.status, 200) << readded.body;
  EXPECT_TRUE(ParseJson(api.Call("GET", item_url).body).as_object().at("author").is_null());
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/" + posts).status, 204);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/collections/" + users).status, 204);
}

TEST_P(DataApiBackend, AnotherProcessSeesNewCollections) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::vector<pid_t> pids;
  std::vector<Api> apis;
  for (int i = 0; i < 2; ++i) {
    const std::string log = dir.path() + "/p" + std::to_string(i) + ".log";
    pids.push_back(Spawn({BinaryPath(), "serve", "--port", "0", "--data-dir", data}, env_, log));
    ASSERT_GT(pids.back(), 0);
    const std::uint16_t port = WaitPort(log);
    ASSERT_NE(port, 0) << ReadFile(log);
    apis.push_back(Api{port});
  }
  const std::string name = "shared" + suffix_;
  ASSERT_EQ(apis[0].Call("POST", "/api/v1/collections", R"({"name": ")" + name +
                                                            R"(", "fields": [{"name": "n", "type": "integer"}], "rules": {"list": ""}})").status,
            201);
  // The second process has never seen it: its first lookup refreshes the catalog.
  auto created = apis[1].Call("POST", "/api/v1/collections/" + name + "/records", R"({"n": 1})");
  EXPECT_EQ(created.status, 201) << created.body;
  auto list = apis[0].Anonymous().Call("GET", "/api/v1/collections/" + name + "/records");
  EXPECT_EQ(ParseJson(list.body).as_object().at("items").as_array().size(), 1u) << list.body;
  EXPECT_EQ(apis[1].Call("GET", "/api/v1/collections/" + name).status, 200);
  // A field added by the second process becomes writable through the first one within its
  // refresh interval (about a second), while the first one keeps serving.
  ASSERT_EQ(apis[1].Call("PATCH", "/api/v1/collections/" + name, R"({"fields": [{"name": "n", "type": "integer"},
      {"name": "extra", "type": "text"}]})").status, 200);
  EXPECT_TRUE(WaitUntil([&] {
    return apis[0].Call("POST", "/api/v1/collections/" + name + "/records", R"({"n": 2, "extra": "x"})").status == 201;
  }, 20s));
  // A drop there becomes a 404 here, not a database error.
  EXPECT_EQ(apis[1].Call("DELETE", "/api/v1/collections/" + name).status, 204);
  EXPECT_TRUE(WaitUntil([&] {
    return apis[0].Anonymous().Call("GET", "/api/v1/collections/" + name + "/records").status == 404;
  }, 20s));
  for (pid_t pid : pids) {
    kill(pid, SIGTERM);
    EXPECT_EQ(WaitPid(pid, 20s), 0);
  }
}

// ---- batch ---------------------------------------------------------------------------------------

json::object Op(std::string method, std::string path, std::optional<json::object> body = std::nullopt,
                std::optional<std::string> if_match = std::nullopt) {
  json::object op{{"method", method}, {"path", path}};
  if (body) op["body"] = *body;
  if (if_match) op["headers"] = json::object{{"If-Match", *if_match}};
  return op;
}

std::string BatchOf(const json::array& ops) { return json::serialize(json::object{{"operations", ops}}); }

std::int64_t Total(const Api& api, const std::string& base, const std::string& filter = {}) {
  auto r = api.Call("GET", base + "?count=true&limit=1" + (filter.empty() ? "" : "&filter=" + UrlEncode(filter)));
  EXPECT_EQ(r.status, 200) << r.body;
  return ParseJson(r.body).as_object().at("total").as_int64();
}

/// The problem's "operation" member, -1 when absent.
std::int64_t OperationOf(const HttpResponse& r) {
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("operation")) return -1;
  return v.as_object().at("operation").as_int64();
}

TEST_P(DataApiBackend, ConcurrentPatchesOfOneRecordLoseNoUpdate) {
  // Eight clients PATCH different fields of one record at once. Every PATCH that answered 200
  // must be in the final record, and the version must count each of them exactly once: a write
  // that read the record before another committed must not overwrite it (or vanish) unnoticed.
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string name = "cp" + suffix_;
  constexpr int kClients = 8, kRounds = 12;
  std::string fields;
  for (int t = 0; t < kClients; ++t) fields += std::string(t ? "," : "") + R"({"name": "f)" + std::to_string(t) + R"(", "type": "integer"})";
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + name + R"(", "fields": [)" + fields + "]}").status, 201);
  const std::string base = "/api/v1/collections/" + name + "/records";
  auto created = api.Call("POST", base, "{}");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string path = base + "/" + std::string(ParseJson(created.body).as_object().at("id").as_string());

  std::atomic<int> ok{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      const Api mine{server.port()};
      for (int i = 1; i <= kRounds; ++i) {
        auto r = mine.Call("PATCH", path, R"({"f)" + std::to_string(t) + R"(": )" + std::to_string(i) + "}");
        (r.status == 200 ? ok : other)++;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(other.load(), 0);
  auto final_record = api.Call("GET", path);
  ASSERT_EQ(final_record.status, 200);
  const auto record = ParseJson(final_record.body).as_object();
  EXPECT_EQ(record.at("version").as_int64(), 1 + ok.load()) << final_record.body;
  for (int t = 0; t < kClients; ++t) {
    EXPECT_EQ(record.at("f" + std::to_string(t)), json::value(kRounds)) << "field f" << t << ": " << final_record.body;
  }
}

TEST_P(DataApiBackend, BatchIsOneTransactionAllOrNothing) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string items = "bi" + suffix_;
  const std::string base = "/api/v1/collections/" + items + "/records";
  auto c = api.Call("POST", "/api/v1/collections", R"({"name": ")" + items + R"(", "fields": [
      {"name": "title", "type": "text", "unique": true}, {"name": "n", "type": "integer", "min": 0}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})");
  ASSERT_EQ(c.status, 201) << c.body;

  // 100 creates: all applied, results in order.
  json::array ops;
  for (int i = 0; i < 100; ++i) ops.push_back(Op("POST", base, json::object{{"title", "a" + std::to_string(i)}, {"n", i}}));
  auto ok = api.Call("POST", "/api/v1/batch", BatchOf(ops));
  ASSERT_EQ(ok.status, 200) << ok.body;
  const json::array results = ParseJson(ok.body).as_object().at("results").as_array();
  ASSERT_EQ(results.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    const auto& r = results[i].as_object();
    EXPECT_EQ(r.at("status").as_int64(), 201);
    EXPECT_EQ(r.at("body").as_object().at("n").as_int64(), i);
    const std::string id(r.at("body").as_object().at("id").as_string());
    if (i % 33 == 0) EXPECT_EQ(api.Call("GET", base + "/" + id).status, 200);
  }
  EXPECT_EQ(Total(api, base), 100);

  // Operation 57 (index 56) fails: a unique violation (409), then a validation error (422);
  // nothing of operations 1-56 is stored.
  for (const auto& [bad, status] : std::vector<std::pair<json::object, int>>{
           {json::object{{"title", "a5"}}, 409}, {json::object{{"title", "bad"}, {"n", -1}}, 422}}) {
    json::array batch;
    for (int i = 0; i < 56; ++i) batch.push_back(Op("POST", base, json::object{{"title", "b" + std::to_string(i)}}));
    batch.push_back(Op("POST", base, bad));
    for (int i = 57; i < 60; ++i) batch.push_back(Op("POST", base, json::object{{"title", "b" + std::to_string(i)}}));
    auto failed = api.Call("POST", "/api/v1/batch", BatchOf(batch));
    EXPECT_EQ(failed.status, status) << failed.body;
    EXPECT_EQ(OperationOf(failed), 56) << failed.body;
    EXPECT_EQ(failed.Header("Content-Type").value_or(""), "application/problem+json");
    EXPECT_EQ(Total(api, base), 100);
    EXPECT_EQ(Total(api, base, "title ~ 'b%'"), 0);
  }

  // Mixed create / update / delete with If-Match, two writes to one record in order.
  const std::string id0(results[0].as_object().at("body").as_object().at("id").as_string());
  const std::string id1(results[1].as_object().at("body").as_object().at("id").as_string());
  const std::string id2(results[2].as_object().at("body").as_object().at("id").as_string());
  json::array mixed{Op("POST", base, json::object{{"title", "m"}}),
                    Op("PATCH", base + "/" + id0, json::object{{"n", 7}}, "\"1\""),
                    Op("PATCH", base + "/" + id0, json::object{{"title", "patched"}}, "\"2\""),
                    Op("PUT", base + "/" + id1, json::object{{"title", "replaced"}}, "\"1\""),
                    Op("DELETE", base + "/" + id2, std::nullopt, "\"1\"")};
  auto m = api.Call("POST", "/api/v1/batch", BatchOf(mixed));
  ASSERT_EQ(m.status, 200) << m.body;
  const json::array mr = ParseJson(m.body).as_object().at("results").as_array();
  ASSERT_EQ(mr.size(), 5u);
  EXPECT_EQ(mr[0].as_object().at("status").as_int64(), 201);
  EXPECT_EQ(mr[1].as_object().at("status").as_int64(), 200);
  EXPECT_EQ(mr[2].as_object().at("body").as_object().at("version").as_int64(), 3);
  EXPECT_EQ(mr[3].as_object().at("body").as_object().at("n"), json::value(nullptr));  // PUT replaces
  EXPECT_EQ(mr[4].as_object().at("status").as_int64(), 204);
  EXPECT_FALSE(mr[4].as_object().contains("body"));
  auto got0 = ParseJson(api.Call("GET", base + "/" + id0).body).as_object();
  EXPECT_EQ(got0.at("title"), json::value("patched"));
  EXPECT_EQ(got0.at("n").as_int64(), 7);
  EXPECT_EQ(api.Call("GET", base + "/" + id2).status, 404);
  EXPECT_EQ(Total(api, base), 100);

  // A stale If-Match (412) at index 1 undoes the create at index 0; a missing record is 404.
  json::array stale{Op("POST", base, json::object{{"title", "never"}}),
                    Op("PATCH", base + "/" + id0, json::object{{"n", 8}}, "\"1\"")};
  auto s = api.Call("POST", "/api/v1/batch", BatchOf(stale));
  EXPECT_EQ(s.status, 412) << s.body;
  EXPECT_EQ(OperationOf(s), 1);
  EXPECT_EQ(Total(api, base, "title = 'never'"), 0);
  json::array missing{Op("PATCH", base + "/" + id0, json::object{{"n", 9}}), Op("DELETE", base + "/" + id2)};
  auto gone = api.Call("POST", "/api/v1/batch", BatchOf(missing));
  EXPECT_EQ(gone.status, 404) << gone.body;
  EXPECT_EQ(OperationOf(gone), 1);
  EXPECT_EQ(ParseJson(api.Call("GET", base + "/" + id0).body).as_object().at("n").as_int64(), 7);

  // Rules: a forbidden operation fails the batch (anonymous caller; the other collection's create
  // rule needs a user, its delete rule is admin-only).
  const std::string locked = "bl" + suffix_;
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + locked + R"(", "fields": [
      {"name": "title", "type": "text"}], "rules": {"list": "", "view": "", "create": "@request.auth.id != null"}})").status,
            201);
  const std::string lbase = "/api/v1/collections/" + locked + "/records";
  auto lrec = api.Call("POST", lbase, R"({"title": "x"})");
  ASSERT_EQ(lrec.status, 201);
  const std::string lid(ParseJson(lrec.body).as_object().at("id").as_string());
  json::array forbidden{Op("POST", base, json::object{{"title", "anon"}}), Op("POST", lbase, json::object{{"title", "y"}})};
  auto f = api.Anonymous().Call("POST", "/api/v1/batch", BatchOf(forbidden));
  EXPECT_EQ(f.status, 403) << f.body;
  EXPECT_EQ(OperationOf(f), 1);
  json::array admin_only{Op("POST", base, json::object{{"title", "anon"}}), Op("DELETE", lbase + "/" + lid)};
  auto a = api.Anonymous().Call("POST", "/api/v1/batch", BatchOf(admin_only));
  EXPECT_EQ(a.status, 401) << a.body;
  EXPECT_EQ(OperationOf(a), 1);
  EXPECT_TRUE(a.HasHeader("WWW-Authenticate"));
  EXPECT_EQ(Total(api, base, "title = 'anon'"), 0);
  EXPECT_EQ(api.Call("GET", lbase + "/" + lid).status, 200);
}

TEST_P(DataApiBackend, MalformedBatchesAreProblems) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string items = "bm" + suffix_;
  const std::string base = "/api/v1/collections/" + items + "/records";
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + items + R"(", "fields": [
      {"name": "title", "type": "text"}], "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status,
            201);
  struct Case {
    std::string body;
    int status;
    std::int64_t operation;  // -1: no operation member
  };
  const std::string good = json::serialize(Op("POST", base, json::object{{"title", "ok"}}));
  json::array too_many;
  for (int i = 0; i < 101; ++i) too_many.push_back(Op("POST", base, json::object{{"title", "x"}}));
  const std::vector<Case> cases = {
      {"[]", 400, -1},
      {"{}", 400, -1},
      {R"({"operations": {}})", 400, -1},
      {R"({"operations": []})", 400, -1},
      {R"({"operations": [], "extra": 1})", 400, -1},
      {BatchOf(too_many), 413, -1},
      {"{\"operations\": [" + good + ", 5]}", 400, 1},
      {"{\"operations\": [" + good + R"(, {"method": "GET", "path": ")" + base + "\"}]}", 400, 1},
      {"{\"operations\": [" + good + R"(, {"method": "FETCH", "path": ")" + base + "\"}]}", 400, 1},
      {"{\"operations\": [" + good + R"(, {"method": "post", "path": ")" + base + R"(", "body": {}}]})", 400, 1},
      {R"({"operations": [{"method": "POST", "path": "/api/v1/collections/)" + items + R"(/records/", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "POST", "path": "/api/v1/collections/)" + items + R"(/records?x=1", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "POST", "path": "/api/v1/things", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "POST", "path": "/api/v1/collections//records", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "DELETE", "path": "/api/v1/collections/)" + items + R"(/records/a/b"}]})", 400, 0},
      {R"({"operations": [{"method": "POST", "path": "/api/v1/collections/)" + items + R"(/records/abc", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "PATCH", "path": "/api/v1/collections/)" + items + R"(/records", "body": {}}]})", 400, 0},
      {"{\"operations\": [" + good + R"(, {"method": "POST", "path": "/api/v1/collections/nosuch)" + suffix_ + R"(/records", "body": {}}]})", 404, 1},
      {"{\"operations\": [" + good + R"(, {"method": "POST", "path": ")" + base + R"(", "body": [1]}]})", 400, 1},
      {"{\"operations\": [" + good + R"(, {"method": "POST", "path": ")" + base + R"("}]})", 400, 1},
      {R"({"operations": [{"method": "DELETE", "path": ")" + base + R"(/x", "body": {}}]})", 400, 0},
      {R"({"operations": [{"method": "DELETE", "path": ")" + base + R"(/x", "headers": {"X-Other": "1"}}]})", 400, 0},
      {R"({"operations": [{"method": "POST", "path": ")" + base + R"(", "body": {}, "extra": 1}]})", 400, 0},
      {"{\"operations\": [" + good + R"(, {"method": "POST", "path": ")" + base + R"(", "body": {"nope": 1}}]})", 422, 1},
  };
  for (const auto& c : cases) {
    auto r = api.Call("POST", "/api/v1/batch", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << "\n" << r.body;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << c.body;
    EXPECT_EQ(OperationOf(r), c.operation) << c.body << "\n" << r.body;
  }
  EXPECT_EQ(api.Call("POST", "/api/v1/batch", "{\"operations\": [" + good + "]}", {{"Content-Type", "text/plain"}}).status, 415);
  EXPECT_EQ(api.Call("POST", "/api/v1/batch", "{\"operations\": [").status, 400);
  EXPECT_EQ(Total(api, base), 0);  // "ok" was never stored
}

// ---- expand --------------------------------------------------------------------------------------

TEST_P(DataApiBackend, ExpandLoadsRelationsUnderTheTargetsViewRuleWithoutNPlusOne) {
  env_.emplace_back("BASALT_LOG__LEVEL", "trace");  // "store query" lines, to count queries
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string users = "eu" + suffix_, posts = "ep" + suffix_;
  const std::string ubase = "/api/v1/collections/" + users + "/records";
  const std::string base = "/api/v1/collections/" + posts + "/records";
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + users + R"(", "fields": [{"name": "name", "type": "text"}],
      "rules": {"list": "", "view": "name != 'secret'"}})").status, 201);
  auto c = api.Call("POST", "/api/v1/collections", R"({"name": ")" + posts + R"(", "fields": [
      {"name": "title", "type": "text"}, {"name": "n", "type": "integer"},
      {"name": "author", "type": "relation", "collection": ")" + users + R"("},
      {"name": "editor", "type": "relation", "collection": ")" + users + R"("}],
      "rules": {"list": "", "view": ""}})");
  ASSERT_EQ(c.status, 201) << c.body;
  std::vector<std::string> user_ids;
  for (const char* name : {"ann", "bob", "secret"}) {
    auto u = api.Call("POST", ubase, std::string(R"({"name": ")") + name + "\"}");
    ASSERT_EQ(u.status, 201);
    user_ids.emplace_back(ParseJson(u.body).as_object().at("id").as_string());
  }
  std::map<std::string, json::object> user_records;
  for (const auto& id : user_ids) user_records[id] = ParseJson(api.Call("GET", ubase + "/" + id).body).as_object();
  json::array ops;
  for (int i = 0; i < 50; ++i) {
    json::object body{{"title", "p" + std::to_string(i)}, {"n", i}, {"author", user_ids[i % 3]}};
    if (i % 2) body["editor"] = user_ids[0];
    ops.push_back(Op("POST", base, body));
  }
  auto created = api.Call("POST", "/api/v1/batch", BatchOf(ops));
  ASSERT_EQ(created.status, 200) << created.body;
  const json::array made = ParseJson(created.body).as_object().at("results").as_array();

  // One record: the id stays in the field, the record goes under "expand".
  const std::string p0(made[0].as_object().at("body").as_object().at("id").as_string());
  auto one = api.Anonymous().Call("GET", base + "/" + p0 + "?expand=author,editor");
  ASSERT_EQ(one.status, 200) << one.body;
  auto o = ParseJson(one.body).as_object();
  EXPECT_EQ(o.at("author"), json::value(user_ids[0]));
  EXPECT_EQ(o.at("expand").as_object().at("author"), json::value(user_records[user_ids[0]]));
  EXPECT_FALSE(o.at("expand").as_object().contains("editor"));  // null relation
  // The target's view rule: "secret" is hidden from anonymous callers, shown to the admin.
  const std::string p2(made[2].as_object().at("body").as_object().at("id").as_string());
  auto hidden = ParseJson(api.Anonymous().Call("GET", base + "/" + p2 + "?expand=author").body).as_object();
  EXPECT_EQ(hidden.at("author"), json::value(user_ids[2]));
  EXPECT_TRUE(hidden.at("expand").as_object().empty()) << json::serialize(hidden);
  auto shown = ParseJson(api.Call("GET", base + "/" + p2 + "?expand=author").body).as_object();
  EXPECT_EQ(shown.at("expand").as_object().at("author"), json::value(user_records[user_ids[2]]));

  // A list of 50 with two relations expanded: every value checked, and exactly one query per
  // relation besides the list itself (no query per row).
  const std::string target = base + "?limit=50&expand=author,editor&sort=n";
  auto list = api.Anonymous().Call("GET", target);
  ASSERT_EQ(list.status, 200) << list.body;
  const json::array listed = ParseJson(list.body).as_object().at("items").as_array();
  ASSERT_EQ(listed.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    const auto& item = listed[i].as_object();
    const auto& expand = item.at("expand").as_object();
    EXPECT_EQ(item.at("n").as_int64(), i);
    if (i % 3 == 2) EXPECT_FALSE(expand.contains("author")) << i;
    else EXPECT_EQ(expand.at("author"), json::value(user_records[user_ids[i % 3]])) << i;
    if (i % 2) EXPECT_EQ(expand.at("editor"), json::value(user_records[user_ids[0]])) << i;
    else EXPECT_FALSE(expand.contains("editor")) << i;
  }
  // With a projection the expansion stays whole; on one record other list parameters are ignored.
  auto projected = api.Call("GET", base + "?fields=id&expand=author&sort=n&limit=2");
  ASSERT_EQ(projected.status, 200) << projected.body;
  const json::object first = ParseJson(projected.body).as_object().at("items").as_array().at(0).as_object();
  EXPECT_EQ(first.size(), 2u) << json::serialize(first);
  EXPECT_EQ(first.at("expand").as_object().at("author"), json::value(user_records[user_ids[0]]));
  EXPECT_EQ(api.Call("GET", base + "/" + p0 + "?limit=x&expand=author").status, 200);

  // No N+1: each expanding request above ran one `IN (...)` query on the users table per relation
  // with ids (GET one: author (editor was null); the two anonymous/admin GETs: author; the list:
  // author and editor; the projected list and the last GET: author), so 7 in total, where a query per row would have given over 100.
  // "store query" lines (trace level) carry the statement text; lines from several I/O threads
  // are not ordered, so the count is awaited.
  const std::string users_table = "FROM \\\"c_" + users + "\\\"";
  auto in_queries = [&] {
    const std::string log = server.LogText();
    int n = 0;
    for (std::size_t pos = log.find("\"store query\""); pos != std::string::npos;
         pos = log.find("\"store query\"", pos + 1)) {
      const std::string line = log.substr(pos, log.find('\n', pos) - pos);
      if (line.find(users_table) != std::string::npos && line.find(" IN (") != std::string::npos) ++n;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (in_queries() < 7 && std::chrono::steady_clock::now() < deadline) server.WaitForLog("no such line", 50ms);
  ASSERT_EQ(api.Anonymous().Call("GET", target).status, 200);  // one more list: +2
  while (in_queries() < 9 && std::chrono::steady_clock::now() < deadline) server.WaitForLog("no such line", 50ms);
  server.WaitForLog("no such line", 200ms);  // a late extra query would show up here
  EXPECT_EQ(in_queries(), 9) << server.LogText().substr(0, 3000);

  // Only relation fields of this collection, named exactly.
  for (const std::string& bad : std::vector<std::string>{"nope", "title", "id", "author.name", "author,", "", "author\" OR 1=1 --",
                                "author); DROP TABLE c_" + users + "; --"}) {
    for (const std::string& path : {base + "?expand=" + UrlEncode(bad), base + "/" + p0 + "?expand=" + UrlEncode(bad)}) {
      if (bad.empty()) continue;  // empty expand = none
      auto r = api.Call("GET", path);
      EXPECT_EQ(r.status, 400) << path << "\n" << r.body;
      EXPECT_NE(r.body.find("cannot expand"), std::string::npos) << r.body;
    }
  }
  const std::string clash = "ex" + suffix_;
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + clash + R"(", "fields": [{"name": "expand", "type": "text"},
      {"name": "author", "type": "relation", "collection": ")" + users + R"("}], "rules": {"list": ""}})").status, 201);
  EXPECT_EQ(api.Call("GET", "/api/v1/collections/" + clash + "/records?expand=author").status, 400);
  auto named = api.Call("GET", base + "?expand=author,zzz_field");
  EXPECT_NE(named.body.find("zzz_field"), std::string::npos) << named.body;
  EXPECT_EQ(Total(api, ubase), 3);  // nothing dropped
}

INSTANTIATE_TEST_SUITE_P(Backends, DataApiBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace basalt::testing
