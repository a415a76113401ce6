/// GET /api/v1/audit-log's access rules for every principal kind (403 needs a non-superuser
/// principal, which only identity work can produce over HTTP), and the admin-token audit stage:
/// writes by the admin token are recorded with their outcome, reads and other principals are not.

#include "api/audit_log.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "store/migrations.hpp"
#include "store_test_support.hpp"

namespace basalt::api {
namespace {

using store::testing::RunTask;

class AuditApi : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions options;
    options.path = (dir_.path() / "basalt.db").string();
    options.shards = 1;
    auto db = store::OpenSqlite(options);
    ASSERT_TRUE(db.has_value());
    db_ = std::move(*db);
    store::Migrator migrator(*db_, audit::Migrations());
    ASSERT_TRUE(RunTask(migrator.Up()).has_value());
    log_ = std::make_unique<audit::AuditLog>(*db_);
    ASSERT_TRUE(RegisterAuditLog(router_, *log_).has_value());
  }
  void TearDown() override {
    log_.reset();
    if (db_) db_->Close();
  }

  http::Response List(http::Principal principal, std::string_view target = "/api/v1/audit-log") {
    http::Request req(http::Method::kGet, "GET", target, 11, {}, {}, "10.1.2.3");
    req.set_principal(std::move(principal));
    req.set_request_id("rid");
    auto match = router_.Find(http::Method::kGet, req.path());
    EXPECT_EQ(match.kind, http::RouteMatch::Kind::kFound);
    return RunTask(match.route->handler(req));
  }

  std::vector<audit::Record> All() {
    audit::ListQuery q;
    auto r = RunTask(log_->List(0, q));
    EXPECT_TRUE(r.has_value());
    return r ? *r : std::vector<audit::Record>{};
  }

  store::testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<audit::AuditLog> log_;
  http::Router router_;
};

http::Principal Kind(http::Principal::Kind kind, std::vector<std::string> roles = {}) {
  http::Principal p;
  p.kind = kind;
  p.id = kind == http::Principal::Kind::kAnonymous || kind == http::Principal::Kind::kAdminToken ? "" : "id-1";
  // As the authentication stage does: the admin role grants the permission `admin`.
  for (const auto& r : roles) {
    if (r == "admin") p.permissions.push_back("admin");
  }
  p.roles = std::move(roles);
  return p;
}

TEST_F(AuditApi, OnlyAuditReadersRead) {
  using K = http::Principal::Kind;
  auto anonymous = List(Kind(K::kAnonymous));
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_TRUE(anonymous.Get("WWW-Authenticate").has_value());
  EXPECT_EQ(List(Kind(K::kUser, {"user"})).status, 403);
  EXPECT_EQ(List(Kind(K::kApiKey)).status, 403);
  EXPECT_EQ(List(Kind(K::kService)).status, 403);
  auto forbidden = List(Kind(K::kUser));
  EXPECT_EQ(boost::json::parse(forbidden.body).at("code").as_string(), "forbidden");
  EXPECT_EQ(List(Kind(K::kUser, {"admin"})).status, 200);
  auto auditor = Kind(K::kUser, {"auditor"});
  auditor.permissions = {"audit:read"};
  EXPECT_EQ(List(auditor).status, 200);
  auto key = Kind(K::kApiKey);
  key.permissions = {"audit:read"};
  EXPECT_EQ(List(key).status, 403);  // the key's scopes must cover it too
  key.scopes = {"audit:read"};
  EXPECT_EQ(List(key).status, 200);
  auto admin = List(Kind(K::kAdminToken, {"admin"}));
  EXPECT_EQ(admin.status, 200);
  EXPECT_EQ(admin.body, R"({"items":[],"next_cursor":null})");
}

TEST_F(AuditApi, AdminTokenWritesAreRecordedWithTheirOutcome) {
  int status = 201;
  http::Pipeline pipeline([&status](http::Request&) -> http::Task<http::Response> {
    co_return http::Response::Json(status, "{}");
  });
  pipeline.Use(AdminTokenAuditStage(*log_));
  const std::string user_agent(300, 'a');  // Request headers are views: keep the text alive
  auto run = [&](http::Method method, std::string_view name, http::Principal p) {
    http::Request req(method, name, "/api/v1/collections/x?y=1", 11, {{"User-Agent", user_agent}}, {}, "10.1.2.3");
    req.set_principal(std::move(p));
    req.set_request_id("rid-" + std::string(name));
    return RunTask(pipeline.Run(req));
  };
  using K = http::Principal::Kind;
  EXPECT_EQ(run(http::Method::kGet, "GET", Kind(K::kAdminToken, {"admin"})).status, 201);
  EXPECT_EQ(run(http::Method::kHead, "HEAD", Kind(K::kAdminToken, {"admin"})).status, 201);
  EXPECT_EQ(run(http::Method::kPost, "POST", Kind(K::kUser, {"admin"})).status, 201);
  EXPECT_TRUE(All().empty());  // reads and other principals: nothing
  run(http::Method::kPost, "POST", Kind(K::kAdminToken, {"admin"}));
  status = 403;
  run(http::Method::kDelete, "DELETE", Kind(K::kAdminToken, {"admin"}));
  status = 422;
  run(http::Method::kPatch, "PATCH", Kind(K::kAdminToken, {"admin"}));
  const auto all = All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].entry.action, "admin_token.used");
  EXPECT_EQ(all[2].entry.target, "POST /api/v1/collections/x");
  EXPECT_EQ(all[2].entry.outcome, audit::Outcome::kSuccess);
  EXPECT_EQ(all[2].entry.actor_kind, audit::ActorKind::kAdminToken);
  EXPECT_EQ(all[2].entry.ip, "10.1.2.3");
  EXPECT_EQ(all[2].entry.user_agent.size(), 256u);
  EXPECT_EQ(all[2].entry.request_id, "rid-POST");
  EXPECT_EQ(all[1].entry.outcome, audit::Outcome::kDenied);
  EXPECT_EQ(all[0].entry.outcome, audit::Outcome::kFailure);
  auto verified = RunTask(log_->Verify(0));
  ASSERT_TRUE(verified.has_value());
  EXPECT_TRUE(verified->ok);
  EXPECT_EQ(verified->count, 3);
}

}  // namespace
}  // namespace basalt::api
