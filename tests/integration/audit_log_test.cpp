// The audit log against the real binary, on each backend: collection changes (with the names of
// changed fields and rules) and admin-token writes are recorded, GETs are not; GET
// /api/v1/audit-log answers 401 to anonymous callers, filters, pages with a keyset cursor and a
// Link header, rejects bad parameters; `basalt audit verify` exits 0 with a count on an intact
// chain and 1 naming the entry after the SQLite file was edited, a row deleted or rows swapped.

#include <sqlite3.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kToken = "audit-test-admin-token-0123456789abcdef";


class AuditLogApi : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_.emplace_back("BASALT_AUTH__ADMIN_TOKEN", kToken);
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    // A PostgreSQL database outlives the test and is shared with other tests: unique names.
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }

  HttpResponse Admin(std::uint16_t port, std::string_view method, std::string_view target, std::string_view body = {},
                     Headers headers = {}) {
    headers.emplace_back("Authorization", std::string("Bearer ") + kToken);
    headers.emplace_back("User-Agent", "audit-test/1.0");
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return Request(port, method, target, headers, body);
  }

  json::array Items(const HttpResponse& r) {
    auto v = ParseJson(r.body);
    EXPECT_TRUE(v.is_object()) << r.body;
    if (!v.is_object() || !v.as_object().contains("items")) return {};
    return v.as_object().at("items").as_array();
  }

  Env env_;
  std::string suffix_;
};

std::string S(const json::value& v, std::string_view key) {
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

std::set<std::string> Changes(const json::value& v) {
  std::set<std::string> out;
  for (const auto& c : v.as_object().at("changes").as_array()) out.emplace(c.as_string());
  return out;
}

TEST_P(AuditLogApi, RecordsCollectionChangesAndAdminWritesAndServesThem) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const auto port = server.port();
  const std::string name = "audited" + suffix_;

  // Only superusers read the log.
  auto anonymous = Get(port, "/api/v1/audit-log");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_TRUE(anonymous.HasHeader("WWW-Authenticate"));
  EXPECT_EQ(Get(port, "/api/v1/audit-log", {{"Authorization", "Bearer wrong-token"}}).status, 401);

  ASSERT_EQ(Admin(port, "POST", "/api/v1/collections",
                  R"({"name": ")" + name + R"(", "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "integer"}],
                      "rules": {"list": "", "view": ""}})")
                .status,
            201);
  auto patched = Admin(port, "PATCH", "/api/v1/collections/" + name,
                       R"({"fields": [{"name": "title", "type": "text", "max_length": 10}, {"name": "n", "type": "integer"},
                                      {"name": "extra", "type": "bool"}], "rules": {"list": null}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  ASSERT_EQ(Admin(port, "GET", "/api/v1/collections/" + name).status, 200);  // a read: not audited
  ASSERT_EQ(Admin(port, "DELETE", "/api/v1/collections/" + name).status, 204);
  // A failed change is not recorded as a change (its transaction rolled back).
  ASSERT_EQ(Admin(port, "DELETE", "/api/v1/collections/" + name).status, 404);

  auto log = Admin(port, "GET", "/api/v1/audit-log?target=collection:" + name);
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_EQ(log.Header("Cache-Control").value_or(""), "no-store");
  auto items = Items(log);
  ASSERT_EQ(items.size(), 3u) << log.body;
  EXPECT_EQ(S(items[0], "action"), "collection.deleted");
  EXPECT_EQ(S(items[1], "action"), "collection.updated");
  EXPECT_EQ(S(items[2], "action"), "collection.created");
  EXPECT_EQ(Changes(items[1]), (std::set<std::string>{"fields.title", "fields.extra", "rules.list"}));
  EXPECT_EQ(Changes(items[2]), (std::set<std::string>{"fields.title", "fields.n", "rules.list", "rules.view"}));
  for (const auto& item : items) {
    EXPECT_EQ(S(item, "actor_kind"), "admin_token");
    EXPECT_EQ(S(item, "outcome"), "success");
    EXPECT_EQ(S(item, "ip"), "127.0.0.1");
    EXPECT_EQ(S(item, "user_agent"), "audit-test/1.0");
    EXPECT_FALSE(S(item, "request_id").empty());
    EXPECT_EQ(S(item, "hash").size(), 64u);
    EXPECT_EQ(S(item, "id").size(), 36u);
    EXPECT_TRUE(S(item, "time").ends_with("Z"));
  }
  EXPECT_GT(items[0].as_object().at("sequence").as_int64(), items[1].as_object().at("sequence").as_int64());
  EXPECT_TRUE(log.Header("Link").value_or("").empty());
  EXPECT_TRUE(ParseJson(log.body).as_object().at("next_cursor").is_null());

  // Every admin-token write is recorded once with its outcome; reads are not. (Exact targets: on
  // PostgreSQL other tests write to the same log at the same time.)
  auto outcomes = [&](const std::string& method) {
    std::vector<std::string> out;
    for (const auto& u : Items(Admin(port, "GET", "/api/v1/audit-log?action=admin_token.used&target=" + method +
                                                      "%20/api/v1/collections/" + name)))
      out.push_back(S(u, "outcome"));
    return out;
  };
  EXPECT_EQ(outcomes("DELETE"), (std::vector<std::string>{"failure", "success"}));
  EXPECT_EQ(outcomes("PATCH"), (std::vector<std::string>{"success"}));
  EXPECT_EQ(outcomes("GET"), (std::vector<std::string>{}));

  // Prefix filter and outcome filter.
  auto prefix = Items(Admin(port, "GET", "/api/v1/audit-log?action=collection.*&target=collection:" + name));
  EXPECT_EQ(prefix.size(), 3u);
  EXPECT_EQ(Items(Admin(port, "GET", "/api/v1/audit-log?outcome=denied&target=collection:" + name)).size(), 0u);
  // Time range: everything is after 2020 and before 2999.
  EXPECT_EQ(Items(Admin(port, "GET", "/api/v1/audit-log?since=2020-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B01:00&target=collection:" + name)).size(), 3u);
  EXPECT_EQ(Items(Admin(port, "GET", "/api/v1/audit-log?until=2020-01-01T00:00:00Z&target=collection:" + name)).size(), 0u);

  // Keyset pages of 2 over the 3 entries: next_cursor + Link, then the last one.
  auto page1 = Admin(port, "GET", "/api/v1/audit-log?target=collection:" + name + "&limit=2");
  ASSERT_EQ(page1.status, 200);
  auto body1 = ParseJson(page1.body).as_object();
  ASSERT_EQ(body1.at("items").as_array().size(), 2u);
  ASSERT_TRUE(body1.at("next_cursor").is_string());
  const std::string cursor(body1.at("next_cursor").as_string());
  const std::string link = page1.Header("Link").value_or("");
  EXPECT_NE(link.find("cursor=" + cursor), std::string::npos) << link;
  EXPECT_NE(link.find("rel=\"next\""), std::string::npos) << link;
  const std::string next_target = link.substr(1, link.find('>') - 1);
  auto page2 = Admin(port, "GET", next_target);
  ASSERT_EQ(page2.status, 200) << next_target;
  auto items2 = Items(page2);
  ASSERT_EQ(items2.size(), 1u);
  EXPECT_EQ(S(items2[0], "action"), "collection.created");
  EXPECT_TRUE(ParseJson(page2.body).as_object().at("next_cursor").is_null());

  // Bad parameters: 400 problems naming the parameter.
  for (const std::string bad : {"limit=0", "limit=501", "limit=x", "cursor=abc", "cursor=-3", "outcome=meh",
                                "actor_kind=robot", "since=yesterday", "until=2026-13-01T00:00:00Z", "nope=1",
                                "action=%zz"}) {
    auto r = Admin(port, "GET", "/api/v1/audit-log?" + bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << bad;
  }
}

TEST_P(AuditLogApi, VerifyCommandAcceptsAnIntactChain) {
  TempDir data;
  {
    BasaltProcess server(ProcessOptions{.env = env_, .data_dir = data.path()});
    ASSERT_TRUE(server.started()) << server.start_error();
    ASSERT_EQ(Admin(server.port(), "POST", "/api/v1/collections",
                    R"({"name": "v)" + suffix_ + R"(", "fields": [{"name": "t", "type": "text"}]})")
                  .status,
              201);
  }
  auto r = RunBasalt({"audit", "verify", "--data-dir", data.path()}, env_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("audit log verified: "), std::string::npos) << r.output;
}

TEST_P(AuditLogApi, AnyUserAgentIsRecordedAsPrintableAsciiOfAtMost256Bytes) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const auto port = server.port();
  // Bytes that are not UTF-8 (PostgreSQL refuses such text), and a long value whose cut falls in
  // the middle of a two-byte character.
  const std::string odd = "odd\xc3(\xff\x80/1.0";
  const std::string longer = std::string(255, 'a') + "\xc3\xa9tail";
  for (const std::string& ua : {odd, longer}) {
    auto r = Request(port, "POST", "/api/v1/collections",
                     {{"Authorization", std::string("Bearer ") + kToken}, {"User-Agent", ua},
                      {"Content-Type", "application/json"}},
                     R"({"name": "ua)" + std::to_string(ua.size()) + suffix_ + R"(", "fields": [{"name": "t", "type": "text"}]})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  auto recorded = [&](std::size_t size) {
    auto items = Items(Admin(port, "GET", "/api/v1/audit-log?action=collection.created&target=collection:ua" +
                                              std::to_string(size) + suffix_));
    return items.size() == 1 ? S(items[0], "user_agent") : std::string("<" + std::to_string(items.size()) + " entries>");
  };
  EXPECT_EQ(recorded(odd.size()), "odd?(??/1.0");
  EXPECT_EQ(recorded(longer.size()), std::string(255, 'a') + "?");
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditLogApi, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// Tampering with the SQLite file directly: `basalt audit verify` names the first bad entry.
class AuditTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      BasaltProcess server(ProcessOptions{.env = {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, .data_dir = data_.path()});
      ASSERT_TRUE(server.started()) << server.start_error();
      for (int i = 0; i < 3; ++i) {
        auto r = Request(server.port(), "POST", "/api/v1/collections",
                         {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}},
                         R"({"name": "c)" + std::to_string(i) + R"(", "fields": [{"name": "t", "type": "text"}]})");
        ASSERT_EQ(r.status, 201) << r.body;
      }
    }  // The server stops here: the tests below edit and verify the file alone.
    // 3 collection.created + 3 admin_token.used = 6 entries.
    auto ok = Verify();
    ASSERT_EQ(ok.exit_code, 0) << ok.output;
    ASSERT_NE(ok.output.find("verified: 6 entries"), std::string::npos) << ok.output;
  }

  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data_.path() + "/basalt.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  RunResult Verify() { return RunBasalt({"audit", "verify", "--data-dir", data_.path()}); }

  TempDir data_;
};

TEST_F(AuditTamper, EditedEntry) {
  Sql("UPDATE basalt_audit_log SET outcome = 'failure' WHERE seq = 3");
  auto r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED at entry 3 (id "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("edited"), std::string::npos) << r.output;
}

TEST_F(AuditTamper, EditedHash) {
  // Change the first digit (a fixed 'f' would be no change for a hash starting with 'f').
  Sql("UPDATE basalt_audit_log SET hash = (CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END) || substr(hash, 2) "
      "WHERE seq = 2");
  auto r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED at entry 2"), std::string::npos) << r.output;
}

TEST_F(AuditTamper, DeletedEntry) {
  Sql("DELETE FROM basalt_audit_log WHERE seq = 4");
  auto r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED at entry 4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;
}

TEST_F(AuditTamper, DeletedLastEntry) {
  Sql("DELETE FROM basalt_audit_log WHERE seq = 6");
  auto r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED at entry 6"), std::string::npos) << r.output;
}

TEST_F(AuditTamper, SwappedEntries) {
  Sql("UPDATE basalt_audit_log SET seq = -1 WHERE seq = 2; UPDATE basalt_audit_log SET seq = 2 WHERE seq = 3; "
      "UPDATE basalt_audit_log SET seq = 3 WHERE seq = -1");
  auto r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAILED at entry 2"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace basalt::testing
