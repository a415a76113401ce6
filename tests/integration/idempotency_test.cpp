// Idempotency-Key over a real server and a real SQLite database, in process, with custom routes:
// POST /things counts how often its handler really ran.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>

#include "api/idempotency.hpp"
#include "harness.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "http/stages.hpp"
#include "store/migrations.hpp"
#include "store/sqlite.hpp"

namespace basalt::testing {
namespace {

using namespace std::chrono_literals;

template <class T>
T Block(store::Task<T> task) {
  boost::asio::io_context ctx;
  auto f = boost::asio::co_spawn(ctx, std::move(task), boost::asio::use_future);
  ctx.run();
  return f.get();
}

class Idempotency : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::OpenSqlite({.path = dir_.path() + "/t.db", .shards = 2});
    ASSERT_TRUE(db.has_value()) << db.error().cause;
    db_ = std::move(*db);
    store::Migrator migrator(*db_, api::IdempotencyMigrations());
    ASSERT_TRUE(Block(migrator.Up()).has_value());
    auto ok = router_.Add(http::Method::kPost, "/things", [this](http::Request& req) -> http::Task<http::Response> {
      const int n = ++runs_;
      if (req.body() == "slow") {
        entered_ = true;
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 400ms);
        co_await t.async_wait(boost::asio::use_awaitable);
      }
      if (req.body() == "fail") co_return http::Response::Json(503, R"({"error":"try later"})");
      http::Response r = http::Response::Json(201, R"({"run":)" + std::to_string(n) + "}");
      r.Set("Location", "/things/" + std::to_string(n));
      co_return r;
    });
    ASSERT_TRUE(ok.has_value());
    pipeline_.Use(http::RequestIdStage());
    pipeline_.Use(api::IdempotencyStage(*db_));
    server_ = std::make_unique<http::Server>(http::ServerOptions{.port = 0, .threads = 2}, router_, pipeline_,
                                             readiness_);
    ASSERT_TRUE(server_->Start().has_value());
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      server_->Wait();
    }
    if (db_) db_->Close();
  }

  HttpResponse Post(std::string_view key, std::string_view body, std::string_view auth = "") {
    RawConnection c(server_->port());
    std::string req = "POST /things HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n";
    if (!key.empty()) req += "Idempotency-Key: " + std::string(key) + "\r\n";
    if (!auth.empty()) req += "Authorization: " + std::string(auth) + "\r\n";
    req += "\r\n" + std::string(body);
    c.Send(req);
    return c.ReadResponse();
  }

  TempDir dir_;
  std::unique_ptr<store::Database> db_;
  http::Router router_;
  http::Pipeline pipeline_{http::Dispatch};
  http::Readiness readiness_;
  std::unique_ptr<http::Server> server_;
  std::atomic<int> runs_{0};
  std::atomic<bool> entered_{false};
};

TEST_F(Idempotency, FirstResponseIsStoredAndReplayed) {
  const auto first = Post("key-1", "hello");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.body, R"({"run":1})");
  const auto again = Post("key-1", "hello");
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body, R"({"run":1})");
  EXPECT_EQ(again.Header("Location").value_or(""), "/things/1");
  EXPECT_EQ(again.Header("Idempotent-Replayed").value_or(""), "true");
  EXPECT_EQ(runs_.load(), 1);
}

TEST_F(Idempotency, WithoutKeyEveryRequestRuns) {
  EXPECT_EQ(Post("", "a").body, R"({"run":1})");
  EXPECT_EQ(Post("", "a").body, R"({"run":2})");
}

TEST_F(Idempotency, SameKeyOtherBodyIs422) {
  ASSERT_EQ(Post("key-2", "one").status, 201);
  const auto other = Post("key-2", "two");
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_NE(other.body.find("validation_failed"), std::string::npos);
  EXPECT_EQ(runs_.load(), 1);
}

TEST_F(Idempotency, KeyStillInFlightIs409) {
  std::thread first([&] { EXPECT_EQ(Post("key-3", "slow").status, 201); });
  ASSERT_TRUE(WaitUntil([&] { return entered_.load(); }, 5s));
  const auto second = Post("key-3", "slow");
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_TRUE(second.Header("Retry-After").has_value());
  first.join();
  EXPECT_EQ(Post("key-3", "slow").Header("Idempotent-Replayed").value_or(""), "true");
  EXPECT_EQ(runs_.load(), 1);
}

TEST_F(Idempotency, ServerErrorsAreNotStoredSoRetriesRun) {
  EXPECT_EQ(Post("key-4", "fail").status, 503);
  EXPECT_EQ(Post("key-4", "fail").status, 503);
  EXPECT_EQ(runs_.load(), 2);
}

TEST_F(Idempotency, KeysAreScopedByCredentials) {
  EXPECT_EQ(Post("shared", "x", "Bearer alice").body, R"({"run":1})");
  EXPECT_EQ(Post("shared", "x", "Bearer bob").body, R"({"run":2})");
  EXPECT_EQ(Post("shared", "x", "Bearer alice").body, R"({"run":1})");
}

TEST_F(Idempotency, MalformedKeysAre400) {
  for (std::string key : {std::string(256, 'k'), std::string("has space"), std::string("tab\there")}) {
    const auto r = Post(key, "x");
    EXPECT_EQ(r.status, 400) << key;
  }
  EXPECT_EQ(runs_.load(), 0);
}

}  // namespace
}  // namespace basalt::testing
