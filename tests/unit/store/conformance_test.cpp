/// Backend-independent behaviour of store::Database, parametrized by backend (see AllBackends()).
/// SQL here is portable (BIGINT, DOUBLE PRECISION, TEXT, BOOLEAN; placeholders from the Dialect).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "store/database.hpp"
#include "store/deferred.hpp"
#include "store_test_support.hpp"

namespace basalt::store {
namespace {

namespace asio = boost::asio;
using testing::AllBackends;
using testing::Backend;
using testing::BackendName;
using testing::RunTask;
using testing::TempDir;

constexpr unsigned kShards = 2;

/// A transaction that runs `statements` in order and stops at the first error.
std::function<Task<core::Result<void>>(Transaction&)> Statements(std::vector<Statement> statements) {
  return [statements = std::move(statements)](Transaction& tx) -> Task<core::Result<void>> {
    for (const Statement& statement : statements) {
      auto result = co_await tx.Execute(statement);
      if (!result) co_return std::unexpected(std::move(result.error()));
    }
    co_return core::Result<void>{};
  };
}

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    Open();
  }
  void TearDown() override {
    if (db_) db_->Close();
  }

  void Open() {
    auto db = GetParam().open(dir_.path(), kShards);
    ASSERT_TRUE(db.has_value()) << db.error().message << " / " << db.error().cause;
    db_ = std::move(*db);
  }

  std::string P(int n) const { return db_->dialect().Placeholder(n); }

  core::Result<void> Write(std::vector<Statement> statements) {
    return RunTask(db_->Transact(0, Statements(std::move(statements))));
  }
  core::Result<void> Write(std::string sql, std::vector<Value> params = {}) {
    return Write(std::vector<Statement>{Statement{std::move(sql), std::move(params)}});
  }
  core::Result<ResultSet> Read(std::string sql, std::vector<Value> params = {}, unsigned shard = 0) {
    return RunTask(db_->Query(shard, Statement{std::move(sql), std::move(params)}));
  }
  std::int64_t Count(const std::string& table) {
    auto rs = Read("SELECT COUNT(*) FROM " + db_->dialect().QuoteIdentifier(table));
    EXPECT_TRUE(rs.has_value()) << (rs ? "" : rs.error().cause);
    if (!rs || rs->rows.size() != 1) return -1;
    return std::get<std::int64_t>(rs->rows[0][0]);
  }
  void CreateItems() {
    ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY, n BIGINT)").has_value());
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_P(StoreConformance, DialectQuotesIdentifiers) {
  EXPECT_EQ(db_->dialect().QuoteIdentifier("plain"), "\"plain\"");
  EXPECT_EQ(db_->dialect().QuoteIdentifier("we\"ird"), "\"we\"\"ird\"");
  EXPECT_EQ(db_->dialect().Name(), GetParam().name == "sqlite" ? "sqlite" : "postgres");
  ASSERT_TRUE(Write("CREATE TABLE " + db_->dialect().QuoteIdentifier("od\"d t") + " (x BIGINT)").has_value());
  EXPECT_EQ(Count("od\"d t"), 0);
}

TEST_P(StoreConformance, EveryValueTypeRoundTrips) {
  ASSERT_TRUE(Write("CREATE TABLE vals (id BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, b BOOLEAN, "
                    "n TEXT)")
                  .has_value());
  const std::string insert = "INSERT INTO vals (id, i, d, s, b, n) VALUES (" + P(1) + ", " + P(2) + ", " + P(3) +
                             ", " + P(4) + ", " + P(5) + ", " + P(6) + ")";
  std::vector<Statement> rows;
  rows.push_back({insert, {std::int64_t{1}, std::numeric_limits<std::int64_t>::max(), 3.5, std::string("text"), true,
                           Null{}}});
  rows.push_back({insert, {std::int64_t{2}, std::numeric_limits<std::int64_t>::min(), -1e-300, std::string(), false,
                           Null{}}});
  ASSERT_TRUE(Write(rows).has_value());

  auto rs = Read("SELECT id, i, d, s, b, n FROM vals ORDER BY id");
  ASSERT_TRUE(rs.has_value()) << rs.error().cause;
  ASSERT_EQ(rs->columns, (std::vector<std::string>{"id", "i", "d", "s", "b", "n"}));
  ASSERT_EQ(rs->rows.size(), 2u);
  const auto& a = rs->rows[0];
  EXPECT_EQ(std::get<std::int64_t>(a[1]), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(std::get<double>(a[2]), 3.5);
  EXPECT_EQ(std::get<std::string>(a[3]), "text");
  EXPECT_EQ(AsBool(a[4]), std::optional<bool>(true));
  EXPECT_TRUE(std::holds_alternative<Null>(a[5]));
  const auto& b = rs->rows[1];
  EXPECT_EQ(std::get<std::int64_t>(b[1]), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(std::get<double>(b[2]), -1e-300);
  EXPECT_EQ(std::get<std::string>(b[3]), "");
  EXPECT_EQ(AsBool(b[4]), std::optional<bool>(false));

  // Parameters compare like columns: NULL is never equal, booleans match.
  auto by_bool = Read("SELECT id FROM vals WHERE b = " + P(1), {true});
  ASSERT_TRUE(by_bool.has_value());
  ASSERT_EQ(by_bool->rows.size(), 1u);
  EXPECT_EQ(std::get<std::int64_t>(by_bool->rows[0][0]), 1);
}

TEST_P(StoreConformance, ExecuteReportsRowsAndAffectedCount) {
  CreateItems();
  std::vector<Statement> seed;
  for (int i = 0; i < 3; ++i) {
    seed.push_back({"INSERT INTO items (k, n) VALUES (" + P(1) + ", " + P(2) + ")",
                    {"k" + std::to_string(i), std::int64_t{i}}});
  }
  ASSERT_TRUE(Write(seed).has_value());

  std::int64_t affected = -1;
  std::size_t seen_inside = 0;
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement update{"UPDATE items SET n = n + 10 WHERE n >= " + P(1), {std::int64_t{1}}};
    auto updated = co_await tx.Execute(std::move(update));
    if (!updated) co_return std::unexpected(updated.error());
    affected = updated->affected;
    Statement select{"SELECT k FROM items WHERE n >= " + P(1), {std::int64_t{10}}};
    auto rows = co_await tx.Execute(std::move(select));  // Sees its own uncommitted write.
    if (!rows) co_return std::unexpected(rows.error());
    seen_inside = rows->rows.size();
    co_return core::Result<void>{};
  }));
  ASSERT_TRUE(result.has_value()) << result.error().cause;
  EXPECT_EQ(affected, 2);
  EXPECT_EQ(seen_inside, 2u);
  auto after = Read("SELECT SUM(n) FROM items");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(std::get<std::int64_t>(after->rows[0][0]), 0 + 11 + 12);
  // Every shard's read connection sees the commit.
  auto other = Read("SELECT COUNT(*) FROM items", {}, kShards - 1);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(std::get<std::int64_t>(other->rows[0][0]), 3);
}

TEST_P(StoreConformance, ParametersAreStoredLiterally) {
  CreateItems();
  const std::vector<std::string> values = {
      "it's",
      "\"double\" quotes",
      "'; DROP TABLE items; --",
      "?1 $1 :name @x %_ \\ \\' \\\"",
      "Robert'); DELETE FROM items WHERE ('1'='1",
      "héllo wörld ✓ 日本語 🎉 ﷽",
      "line1\nline2\ttab\r\n",
      std::string(10000, 'x'),
  };
  std::vector<Statement> inserts;
  for (std::size_t i = 0; i < values.size(); ++i) {
    inserts.push_back({"INSERT INTO items (k, n) VALUES (" + P(1) + ", " + P(2) + ")",
                       {values[i], static_cast<std::int64_t>(i)}});
  }
  ASSERT_TRUE(Write(inserts).has_value());
  EXPECT_EQ(Count("items"), static_cast<std::int64_t>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto rs = Read("SELECT k, n FROM items WHERE k = " + P(1), {values[i]});
    ASSERT_TRUE(rs.has_value()) << rs.error().cause;
    ASSERT_EQ(rs->rows.size(), 1u) << values[i];
    EXPECT_EQ(std::get<std::string>(rs->rows[0][0]), values[i]);
    EXPECT_EQ(std::get<std::int64_t>(rs->rows[0][1]), static_cast<std::int64_t>(i));
  }
}

TEST_P(StoreConformance, ErrorRollsBackEverything) {
  CreateItems();
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    for (int i = 0; i < 3; ++i) {
      Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 0)", {"r" + std::to_string(i)}};
      auto r = co_await tx.Execute(std::move(insert));
      if (!r) co_return std::unexpected(r.error());
    }
    co_return core::Fail(core::ErrorCode::kValidation, "changed my mind");
  }));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kValidation);
  EXPECT_EQ(result.error().message, "changed my mind");
  EXPECT_EQ(Count("items"), 0);
}

TEST_P(StoreConformance, ExceptionRollsBackEverything) {
  CreateItems();
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 0)", {std::string("thrown")}};
    auto r = co_await tx.Execute(std::move(insert));
    if (!r) co_return std::unexpected(r.error());
    throw std::runtime_error("boom");
  }));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInternal);
  EXPECT_NE(result.error().cause.find("boom"), std::string::npos);
  EXPECT_EQ(result.error().message.find("boom"), std::string::npos);  // Private cause stays private.
  EXPECT_EQ(Count("items"), 0);
  EXPECT_TRUE(Write("INSERT INTO items (k, n) VALUES ('after', 1)").has_value());  // Still usable.
  EXPECT_EQ(Count("items"), 1);
}

TEST_P(StoreConformance, UniqueViolationIsConflict) {
  CreateItems();
  ASSERT_TRUE(Write("INSERT INTO items (k, n) VALUES ('a', 1)").has_value());
  auto dup = Write("INSERT INTO items (k, n) VALUES ('a', 2)");
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, core::ErrorCode::kConflict);
  EXPECT_FALSE(dup.error().cause.empty());
  EXPECT_EQ(dup.error().message.find("items"), std::string::npos);  // No schema details in public text.
  ASSERT_TRUE(Write("CREATE TABLE u (id BIGINT PRIMARY KEY, email TEXT UNIQUE)").has_value());
  ASSERT_TRUE(Write("INSERT INTO u (id, email) VALUES (1, 'x@example.com')").has_value());
  auto dup_email = Write("INSERT INTO u (id, email) VALUES (2, 'x@example.com')");
  ASSERT_FALSE(dup_email.has_value());
  EXPECT_EQ(dup_email.error().code, core::ErrorCode::kConflict);
}

TEST_P(StoreConformance, ConstraintViolationsAreValidation) {
  ASSERT_TRUE(Write("CREATE TABLE parent (id BIGINT PRIMARY KEY)").has_value());
  ASSERT_TRUE(Write("CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL REFERENCES parent(id), "
                    "qty BIGINT CHECK (qty >= 0))")
                  .has_value());
  ASSERT_TRUE(Write("INSERT INTO parent (id) VALUES (1)").has_value());
  ASSERT_TRUE(Write("INSERT INTO child (id, parent_id, qty) VALUES (1, 1, 0)").has_value());

  auto fk = Write("INSERT INTO child (id, parent_id, qty) VALUES (2, 99, 0)");
  ASSERT_FALSE(fk.has_value());
  EXPECT_EQ(fk.error().code, core::ErrorCode::kValidation);
  auto still_referenced = Write("DELETE FROM parent WHERE id = 1");
  ASSERT_FALSE(still_referenced.has_value());
  EXPECT_EQ(still_referenced.error().code, core::ErrorCode::kValidation);
  auto check = Write("INSERT INTO child (id, parent_id, qty) VALUES (3, 1, -1)");
  ASSERT_FALSE(check.has_value());
  EXPECT_EQ(check.error().code, core::ErrorCode::kValidation);
  auto not_null = Write("INSERT INTO child (id, parent_id, qty) VALUES (4, NULL, 0)");
  ASSERT_FALSE(not_null.has_value());
  EXPECT_EQ(not_null.error().code, core::ErrorCode::kValidation);
  EXPECT_EQ(Count("child"), 1);
  EXPECT_EQ(Count("parent"), 1);
}

// ---- store::ExecuteDeferred (PostgreSQL: sent with the next statement or with COMMIT) ----

TEST_P(StoreConformance, DeferredStatementsCommitWithTheTransaction) {
  CreateItems();
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    // The same new statement twice in one round trip: prepared once, executed twice.
    for (int i = 1; i <= 2; ++i) {
      Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 7)", {"d" + std::to_string(i)}};
      auto queued = co_await ExecuteDeferred(tx, std::move(insert));
      if (!queued) co_return queued;
    }
    co_return core::Result<void>{};
  }));
  ASSERT_TRUE(result.has_value()) << result.error().cause;
  EXPECT_EQ(Count("items"), 2);
  // Only deferred statements, BEGIN never sent before: still one transaction.
  auto mixed = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement first{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("m1")}};
    auto queued = co_await ExecuteDeferred(tx, std::move(first));
    if (!queued) co_return queued;
    // A read after a deferred write sees it (sent first, in the same round trip).
    Statement read{"SELECT COUNT(*) FROM items WHERE k = " + P(1), {std::string("m1")}};
    auto seen = co_await tx.Execute(std::move(read));
    if (!seen) co_return std::unexpected(seen.error());
    if (seen->rows.size() != 1 || std::get<std::int64_t>(seen->rows[0][0]) != 1)
      co_return core::Fail(core::ErrorCode::kInternal, "deferred write not visible to the next statement");
    Statement last{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 2)", {std::string("m2")}};
    co_return co_await ExecuteDeferred(tx, std::move(last));
  }));
  ASSERT_TRUE(mixed.has_value()) << mixed.error().message << " / " << mixed.error().cause;
  EXPECT_EQ(Count("items"), 4);
}

TEST_P(StoreConformance, DeferredLastStatementErrorRollsBackAndIsReported) {
  CreateItems();
  ASSERT_TRUE(Write("INSERT INTO items (k, n) VALUES ('taken', 0)").has_value());
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement ok{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("new")}};
    auto inserted = co_await tx.Execute(std::move(ok));
    if (!inserted) co_return std::unexpected(inserted.error());
    Statement queued_ok{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("new2")}};
    if (auto q = co_await ExecuteDeferred(tx, std::move(queued_ok)); !q) co_return q;
    Statement dup{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("taken")}};
    co_return co_await ExecuteDeferred(tx, std::move(dup));  // Fails at the end (PostgreSQL: with COMMIT).
  }));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kConflict);  // The statement's own error.
  EXPECT_EQ(Count("items"), 1);                                // 'new' and 'new2' rolled back.
  EXPECT_TRUE(Write("INSERT INTO items (k, n) VALUES ('after', 1)").has_value());  // Connection still usable.
  EXPECT_EQ(Count("items"), 2);
}

TEST_P(StoreConformance, DeferredErrorSurfacesAtTheNextStatement) {
  CreateItems();
  ASSERT_TRUE(Write("INSERT INTO items (k, n) VALUES ('taken', 0)").has_value());
  bool next_failed = false;
  bool ran_after = false;
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement dup{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("taken")}};
    if (auto q = co_await ExecuteDeferred(tx, std::move(dup)); !q) co_return q;  // SQLite: fails here.
    Statement next{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("next")}};
    auto r = co_await tx.Execute(std::move(next));
    if (!r) {
      next_failed = true;
      co_return std::unexpected(r.error());
    }
    ran_after = true;
    co_return core::Result<void>{};
  }));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kConflict);
  EXPECT_FALSE(ran_after);
  if (GetParam().name == "postgres") {
    EXPECT_TRUE(next_failed);
  }
  EXPECT_EQ(Count("items"), 1);
}

TEST_P(StoreConformance, IgnoredDeferredErrorStillFailsTheTransaction) {
  CreateItems();
  ASSERT_TRUE(Write("INSERT INTO items (k, n) VALUES ('taken', 0)").has_value());
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement dup{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("taken")}};
    (void)co_await ExecuteDeferred(tx, std::move(dup));
    Statement next{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("next")}};
    (void)co_await tx.Execute(std::move(next));  // Ignores every error: the transaction must not commit.
    co_return core::Result<void>{};
  }));
  if (GetParam().name == "postgres") {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, core::ErrorCode::kConflict);
    EXPECT_EQ(Count("items"), 1);
  } else {
    // SQLite reports the error at once; a statement-level failure undoes only that statement.
    EXPECT_EQ(Count("items"), result ? 2 : 1);
  }
}

TEST_P(StoreConformance, WorkErrorDropsDeferredStatements) {
  CreateItems();
  auto result = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("never")}};
    if (auto q = co_await ExecuteDeferred(tx, std::move(insert)); !q) co_return q;
    co_return core::Fail(core::ErrorCode::kForbidden, "changed my mind");
  }));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kForbidden);
  EXPECT_EQ(Count("items"), 0);
}

TEST_P(StoreConformance, DeferredForeignKeyFailingAtCommitIsAFailure) {
  ASSERT_TRUE(Write("CREATE TABLE dparent (id BIGINT PRIMARY KEY)").has_value());
  ASSERT_TRUE(Write("CREATE TABLE dchild (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL "
                    "REFERENCES dparent(id) DEFERRABLE INITIALLY DEFERRED)")
                  .has_value());
  auto body = [&](std::int64_t parent, bool create_parent_later) {
    return [&, parent, create_parent_later](Transaction& tx) -> Task<core::Result<void>> {
      Statement child{"INSERT INTO dchild (id, parent_id) VALUES (" + P(1) + ", " + P(2) + ")", {parent, parent}};
      auto inserted = co_await tx.Execute(std::move(child));  // Accepted: the check waits for COMMIT.
      if (!inserted) co_return std::unexpected(inserted.error());
      if (create_parent_later) {
        Statement make{"INSERT INTO dparent (id) VALUES (" + P(1) + ")", {parent}};
        co_return co_await ExecuteDeferred(tx, std::move(make));
      }
      Statement other{"INSERT INTO dparent (id) VALUES (" + P(1) + ")", {parent + 1000}};
      co_return co_await ExecuteDeferred(tx, std::move(other));
    };
  };
  auto broken = RunTask(db_->Transact(0, body(1, false)));
  ASSERT_FALSE(broken.has_value());  // Never reported as success.
  EXPECT_EQ(broken.error().code, core::ErrorCode::kValidation);
  EXPECT_EQ(Count("dchild"), 0);
  EXPECT_EQ(Count("dparent"), 0);  // The deferred parent of the same transaction rolled back too.
  auto fine = RunTask(db_->Transact(0, body(2, true)));
  ASSERT_TRUE(fine.has_value()) << fine.error().cause;
  EXPECT_EQ(Count("dchild"), 1);
  EXPECT_EQ(Count("dparent"), 1);
}

/// Runs `per_thread` Transact calls concurrently on each of `threads` io_contexts (one thread
/// each). Transaction (t, i) inserts key "t-i", and a duplicate of the pre-inserted key "taken"
/// when `fail(t, i)`. Checks each caller resumes on its own thread and executor.
struct ConcurrentOutcome {
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::atomic<int> other{0};
  std::atomic<int> wrong_thread{0};
};

void RunConcurrentWrites(Database& db, int threads, int per_thread, const std::function<bool(int, int)>& fail,
                         ConcurrentOutcome& out) {
  const std::string p1 = db.dialect().Placeholder(1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      asio::io_context io(1);
      for (int i = 0; i < per_thread; ++i) {
        std::vector<Statement> statements;
        statements.push_back({"INSERT INTO items (k, n) VALUES (" + p1 + ", 1)",
                              {std::to_string(t) + "-" + std::to_string(i)}});
        if (fail(t, i)) statements.push_back({"INSERT INTO items (k, n) VALUES ('taken', 1)", {}});
        asio::co_spawn(
            io,
            [&db, &out, statements = std::move(statements)]() mutable -> Task<void> {
              const auto before_thread = std::this_thread::get_id();
              const asio::any_io_executor before = co_await asio::this_coro::executor;
              auto result = co_await db.Transact(0, Statements(std::move(statements)));
              const asio::any_io_executor after = co_await asio::this_coro::executor;
              if (std::this_thread::get_id() != before_thread || !(before == after)) ++out.wrong_thread;
              if (result) {
                ++out.ok;
              } else if (result.error().code == core::ErrorCode::kConflict) {
                ++out.conflict;
              } else {
                ++out.other;
              }
            },
            asio::detached);
      }
      io.run();
    });
  }
  for (auto& w : workers) w.join();
}

// ---- store::TransactRelaxed (commit without waiting for the disk) ----

/// The backend's durability setting as seen inside a transaction: PostgreSQL's
/// synchronous_commit ("on"/"off"), SQLite's PRAGMA synchronous ("2" FULL, "1" NORMAL).
Task<core::Result<void>> ReadSyncSetting(Transaction& tx, std::string backend, std::string& out) {
  Statement show{backend == "postgres" ? "SHOW synchronous_commit" : "PRAGMA synchronous", {}};
  auto rs = co_await tx.Execute(std::move(show));
  if (!rs) co_return std::unexpected(rs.error());
  if (rs->rows.size() != 1 || rs->rows[0].empty()) co_return core::Fail(core::ErrorCode::kInternal, "no setting row");
  const Value& v = rs->rows[0][0];
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out = std::to_string(*i);
  } else if (const auto* t = std::get_if<std::string>(&v)) {
    out = *t;
  }
  co_return core::Result<void>{};
}

TEST_P(StoreConformance, RelaxedTransactionsCommitAndRollBackLikeOthers) {
  CreateItems();
  auto committed = RunTask(TransactRelaxed(*db_, 0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("relaxed")}};
    auto r = co_await tx.Execute(std::move(insert));
    if (!r) co_return std::unexpected(r.error());
    Statement deferred{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 2)", {std::string("relaxed-deferred")}};
    co_return co_await ExecuteDeferred(tx, std::move(deferred));
  }));
  ASSERT_TRUE(committed.has_value()) << committed.error().message << " / " << committed.error().cause;
  EXPECT_EQ(Count("items"), 2);

  auto failed = RunTask(TransactRelaxed(*db_, 0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("undone")}};
    auto r = co_await tx.Execute(std::move(insert));
    if (!r) co_return std::unexpected(r.error());
    co_return core::Fail(core::ErrorCode::kForbidden, "changed my mind");
  }));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, core::ErrorCode::kForbidden);
  auto duplicate = RunTask(TransactRelaxed(*db_, 0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {std::string("relaxed")}};
    auto r = co_await tx.Execute(std::move(insert));
    if (!r) co_return std::unexpected(r.error());
    co_return core::Result<void>{};
  }));
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, core::ErrorCode::kConflict);
  EXPECT_EQ(Count("items"), 2);

  // Still there after the database is closed and opened again.
  db_->Close();
  db_.reset();
  Open();
  EXPECT_EQ(Count("items"), 2);
}

TEST_P(StoreConformance, OnlyRelaxedTransactionsSkipTheFlush) {
  const std::string backend = GetParam().name;
  std::string relaxed, plain, relaxed_again, plain_again;
  auto show = [backend](std::string& out) {
    return [backend, &out](Transaction& tx) { return ReadSyncSetting(tx, backend, out); };
  };
  ASSERT_TRUE(RunTask(TransactRelaxed(*db_, 0, show(relaxed))).has_value());
  ASSERT_TRUE(RunTask(db_->Transact(0, show(plain))).has_value());
  ASSERT_TRUE(RunTask(TransactRelaxed(*db_, 0, show(relaxed_again))).has_value());
  ASSERT_TRUE(RunTask(db_->Transact(0, show(plain_again))).has_value());
  if (backend == "postgres") {
    EXPECT_EQ(relaxed, "off");
    EXPECT_EQ(plain, "on");
    EXPECT_EQ(relaxed_again, "off");
    EXPECT_EQ(plain_again, "on");
  } else {
    EXPECT_EQ(relaxed, "1");  // NORMAL: no fsync of the WAL at COMMIT.
    EXPECT_EQ(plain, "2");    // FULL.
    EXPECT_EQ(relaxed_again, "1");
    EXPECT_EQ(plain_again, "2");
  }
}

TEST_P(StoreConformance, ConcurrentRelaxedAndPlainTransactionsAllCommit) {
  CreateItems();
  constexpr int kEach = 100;
  std::atomic<int> ok{0};
  asio::io_context io;
  for (int i = 0; i < 2 * kEach; ++i) {
    const bool relaxed = i % 2 == 0;
    auto work = [this, i](Transaction& tx) -> Task<core::Result<void>> {
      Statement insert{"INSERT INTO items (k, n) VALUES (" + P(1) + ", " + P(2) + ")",
                       {"c" + std::to_string(i), static_cast<std::int64_t>(i)}};
      auto r = co_await tx.Execute(std::move(insert));
      if (!r) co_return std::unexpected(r.error());
      co_return core::Result<void>{};
    };
    auto task = relaxed ? TransactRelaxed(*db_, 0, work) : db_->Transact(0, work);
    asio::co_spawn(io, std::move(task), [&ok](std::exception_ptr e, core::Result<void> r) {
      if (!e && r) ++ok;
    });
  }
  io.run();
  EXPECT_EQ(ok.load(), 2 * kEach);
  EXPECT_EQ(Count("items"), 2 * kEach);
}

TEST_P(StoreConformance, ConcurrentTransactionsAllCommit) {
  CreateItems();
  ConcurrentOutcome out;
  RunConcurrentWrites(*db_, 8, 200, [](int, int) { return false; }, out);
  EXPECT_EQ(out.ok, 1600);
  EXPECT_EQ(out.other + out.conflict, 0);
  EXPECT_EQ(out.wrong_thread, 0);
  EXPECT_EQ(Count("items"), 1600);
}

TEST_P(StoreConformance, FailingTransactionsDoNotAffectOthers) {
  CreateItems();
  ASSERT_TRUE(Write("INSERT INTO items (k, n) VALUES ('taken', 0)").has_value());
  ConcurrentOutcome out;
  // Every 5th transaction inserts its own row, then collides with 'taken' and must vanish whole.
  RunConcurrentWrites(*db_, 8, 200, [](int, int i) { return i % 5 == 0; }, out);
  EXPECT_EQ(out.ok, 1600 - 320);
  EXPECT_EQ(out.conflict, 320);
  EXPECT_EQ(out.other, 0);
  EXPECT_EQ(out.wrong_thread, 0);
  EXPECT_EQ(Count("items"), 1 + 1600 - 320);
  auto leaked = Read("SELECT COUNT(*) FROM items WHERE k LIKE " + P(1), {std::string("%-0")});
  ASSERT_TRUE(leaked.has_value());
  EXPECT_EQ(std::get<std::int64_t>(leaked->rows[0][0]), 0);  // i == 0 always failed.
}

TEST_P(StoreConformance, CloseFinishesPendingWrites) {
  CreateItems();
  constexpr int kWrites = 300;
  asio::io_context io(1);
  std::atomic<int> started{0};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> Task<void> {
          ++started;
          std::vector<Statement> statements;
          statements.push_back({"INSERT INTO items (k, n) VALUES (" + P(1) + ", 1)", {"c" + std::to_string(i)}});
          auto result = co_await db_->Transact(0, Statements(std::move(statements)));
          ++(result ? ok : failed);
        },
        asio::detached);
  }
  std::thread runner([&] { io.run(); });
  while (started.load() < kWrites) std::this_thread::yield();
  // Once this posted no-op has run, every coroutine has passed its call to Transact (each one
  // runs from `++started` to its suspension inside Transact in a single handler).
  std::promise<void> passed;
  asio::post(io, [&] { passed.set_value(); });
  passed.get_future().wait();
  db_->Close();
  runner.join();  // io.run() returns once every caller has been resumed.
  EXPECT_EQ(ok, kWrites);
  EXPECT_EQ(failed, 0);

  auto after = RunTask(db_->Transact(0, Statements({})));
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code, core::ErrorCode::kUnavailable);

  db_.reset();
  Open();
  EXPECT_EQ(Count("items"), kWrites);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::ValuesIn(AllBackends()), BackendName);

}  // namespace
}  // namespace basalt::store
