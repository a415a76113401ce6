/// SQLite-specific behaviour: pragmas, group sizes (group commit), deferred constraints inside a
/// group, refused transaction control, read connections.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "store/sqlite.hpp"
#include "store_test_support.hpp"

namespace basalt::store {
namespace {

namespace asio = boost::asio;
using testing::RunTask;
using testing::TempDir;
using Work = std::function<Task<core::Result<void>>(Transaction&)>;

Work Sql(std::string sql) {
  return [sql = std::move(sql)](Transaction& tx) -> Task<core::Result<void>> {
    Statement statement{sql, {}};
    auto r = co_await tx.Execute(std::move(statement));
    if (!r) co_return std::unexpected(std::move(r.error()));
    co_return core::Result<void>{};
  };
}

/// A database plus an I/O thread to issue Transact calls from, and a record of group sizes.
class SqliteTest : public ::testing::Test {
 protected:
  void Open(unsigned max_group = 256, unsigned shards = 2) {
    SqliteOptions options;
    options.path = (dir_.path() / "basalt.db").string();
    options.shards = shards;
    options.max_group = max_group;
    options.on_group_commit = [this](std::size_t n) {
      std::lock_guard lock(groups_mutex_);
      groups_.push_back(n);
    };
    auto db = OpenSqlite(options);
    ASSERT_TRUE(db.has_value()) << db.error().cause;
    db_ = std::move(*db);
  }
  void TearDown() override {
    if (db_) db_->Close();
    StopIo();
  }

  core::Result<void> Write(std::string sql) { return RunTask(db_->Transact(0, Sql(std::move(sql)))); }
  std::int64_t Count(const std::string& sql) {
    auto rs = RunTask(db_->Query(0, Statement{sql, {}}));
    EXPECT_TRUE(rs.has_value()) << (rs ? "" : rs.error().cause);
    return rs ? std::get<std::int64_t>(rs->rows.at(0).at(0)) : -1;
  }
  std::vector<std::size_t> Groups() {
    std::lock_guard lock(groups_mutex_);
    return groups_;
  }
  void ClearGroups() {
    std::lock_guard lock(groups_mutex_);
    groups_.clear();
  }

  /// Starts a Transact on the I/O thread whose work blocks the writer thread until Release().
  void BlockWriter() {
    StartIo();
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    auto released = release_.get_future().share();
    Spawn([entered, released](Transaction&) -> Task<core::Result<void>> {
      entered->set_value();
      released.wait();  // Deliberately blocks the writer: everything else queues behind it.
      co_return core::Result<void>{};
    });
    entered_future.wait();
  }
  void Release() { release_.set_value(); }

  /// Issues Transact(work) from the I/O thread; its result lands in results_.
  void Spawn(Work work) {
    ++spawned_;
    asio::co_spawn(
        io_,
        [this, work = std::move(work)]() mutable -> Task<void> {
          auto result = co_await db_->Transact(0, std::move(work));
          std::lock_guard lock(results_mutex_);
          results_.push_back(result ? std::optional<core::ErrorCode>() : result.error().code);
        },
        asio::detached);
  }
  /// Returns once every Spawn()ed call has reached its suspension inside Transact (queued).
  void WaitQueued() {
    std::promise<void> done;
    // A Transact call runs from co_spawn's start to its enqueue in one handler; two posted
    // hops (co_spawn's own entry hop, then ours) put this after all of them.
    asio::post(io_, [&] { asio::post(io_, [&] { done.set_value(); }); });
    done.get_future().wait();
  }
  std::vector<std::optional<core::ErrorCode>> WaitResults() {
    for (;;) {
      {
        std::lock_guard lock(results_mutex_);
        if (static_cast<int>(results_.size()) == spawned_) return results_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void StartIo() {
    if (io_thread_.joinable()) return;
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void StopIo() {
    guard_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::mutex groups_mutex_;
  std::vector<std::size_t> groups_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::thread io_thread_;
  std::promise<void> release_;
  int spawned_ = 0;
  std::mutex results_mutex_;
  std::vector<std::optional<core::ErrorCode>> results_;
};

TEST_F(SqliteTest, DialectAndPragmas) {
  Open();
  EXPECT_EQ(db_->dialect().Placeholder(1), "?1");
  EXPECT_EQ(db_->dialect().Placeholder(12), "?12");
  EXPECT_EQ(db_->dialect().QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(db_->dialect().Name(), "sqlite");
  EXPECT_EQ(db_->dialect().MigrationLockStatement(), "");

  auto mode = RunTask(db_->Query(1, Statement{"PRAGMA journal_mode", {}}));
  ASSERT_TRUE(mode.has_value());
  EXPECT_EQ(std::get<std::string>(mode->rows.at(0).at(0)), "wal");
  EXPECT_EQ(Count("PRAGMA foreign_keys"), 1);
  std::int64_t synchronous = -1;
  std::int64_t writer_fk = -1;
  auto checked = RunTask(db_->Transact(0, [&](Transaction& tx) -> Task<core::Result<void>> {
    Statement sync{"PRAGMA synchronous", {}};
    auto s = co_await tx.Execute(std::move(sync));
    Statement fk{"PRAGMA foreign_keys", {}};
    auto f = co_await tx.Execute(std::move(fk));
    if (!s || !f) co_return core::Fail(core::ErrorCode::kInternal, "pragma");
    synchronous = std::get<std::int64_t>(s->rows.at(0).at(0));
    writer_fk = std::get<std::int64_t>(f->rows.at(0).at(0));
    co_return core::Result<void>{};
  }));
  ASSERT_TRUE(checked.has_value());
  EXPECT_EQ(synchronous, 2);  // FULL
  EXPECT_EQ(writer_fk, 1);
}

TEST_F(SqliteTest, OptionsAreValidated) {
  SqliteOptions options;
  options.path = (dir_.path() / "x.db").string();
  options.shards = 0;
  auto db = OpenSqlite(options);
  ASSERT_FALSE(db.has_value());
  EXPECT_EQ(db.error().code, core::ErrorCode::kValidation);
  options.shards = 1;
  options.path = (dir_.path() / "missing-dir" / "x.db").string();
  auto missing = OpenSqlite(options);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kInternal);
  EXPECT_FALSE(missing.error().cause.empty());
}

TEST_F(SqliteTest, QueuedTransactionsShareOneCommit) {
  Open();
  ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY)").has_value());
  ASSERT_TRUE(Write("INSERT INTO items VALUES ('taken')").has_value());
  ClearGroups();
  BlockWriter();
  for (int i = 0; i < 100; ++i) {
    const std::string key = i % 4 == 0 ? "taken" : "k" + std::to_string(i);
    Spawn(Sql("INSERT INTO items VALUES ('" + key + "')"));
  }
  WaitQueued();
  Release();
  auto results = WaitResults();
  int ok = 0;
  int conflicts = 0;
  for (const auto& r : results) {
    if (!r) ++ok;
    else if (*r == core::ErrorCode::kConflict) ++conflicts;
  }
  EXPECT_EQ(ok, 1 + 75);  // The blocker and the non-colliding inserts.
  EXPECT_EQ(conflicts, 25);
  // Group 1: the blocker alone; group 2: all 100 queued behind it, in ONE commit, with the 25
  // failures rolled back to their savepoints.
  EXPECT_EQ(Groups(), (std::vector<std::size_t>{1, 100}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM items"), 1 + 75);
}

TEST_F(SqliteTest, GroupsAreBoundedByMaxGroup) {
  Open(/*max_group=*/16);
  ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY)").has_value());
  ClearGroups();
  BlockWriter();
  for (int i = 0; i < 40; ++i) Spawn(Sql("INSERT INTO items VALUES ('k" + std::to_string(i) + "')"));
  WaitQueued();
  Release();
  WaitResults();
  EXPECT_EQ(Groups(), (std::vector<std::size_t>{1, 16, 16, 8}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM items"), 40);
}

TEST_F(SqliteTest, DeferredForeignKeyFailsOnlyItsTransaction) {
  Open();
  ASSERT_TRUE(Write("CREATE TABLE parent (id INTEGER PRIMARY KEY)").has_value());
  ASSERT_TRUE(Write("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) "
                    "DEFERRABLE INITIALLY DEFERRED)")
                  .has_value());
  ClearGroups();
  BlockWriter();
  Spawn(Sql("INSERT INTO parent VALUES (1)"));
  Spawn(Sql("INSERT INTO child VALUES (1, 999)"));  // Only detectable at commit time.
  Spawn(Sql("INSERT INTO child VALUES (2, 1)"));
  WaitQueued();
  Release();
  auto results = WaitResults();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(Groups(), (std::vector<std::size_t>{1, 3}));
  int validation = 0;
  for (const auto& r : results) validation += r && *r == core::ErrorCode::kValidation;
  EXPECT_EQ(validation, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM child"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM parent"), 1);
}

TEST_F(SqliteTest, CloseDrainsQueuedWrites) {
  Open();
  ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY)").has_value());
  BlockWriter();
  for (int i = 0; i < 50; ++i) Spawn(Sql("INSERT INTO items VALUES ('k" + std::to_string(i) + "')"));
  WaitQueued();
  std::thread closer([&] { db_->Close(); });  // Blocks until the queue is drained.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Release();
  closer.join();
  auto results = WaitResults();
  for (const auto& r : results) EXPECT_FALSE(r.has_value());
  db_.reset();
  Open();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM items"), 50);
}

TEST_F(SqliteTest, TransactionControlIsRefused) {
  Open();
  ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY)").has_value());
  for (const char* sql : {"COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT x", "RELEASE s"}) {
    auto r = Write(sql);
    EXPECT_FALSE(r.has_value()) << sql;
  }
  auto script = RunTask(db_->Transact(0, [](Transaction& tx) -> Task<core::Result<void>> {
    co_return co_await tx.ExecuteScript("INSERT INTO items VALUES ('a'); COMMIT; INSERT INTO items VALUES ('b');");
  }));
  EXPECT_FALSE(script.has_value());
  EXPECT_TRUE(Write("INSERT INTO items VALUES ('ok')").has_value());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM items"), 1);
}

TEST_F(SqliteTest, ReadConnectionsAreReadOnlyAndBounded) {
  Open(256, 2);
  ASSERT_TRUE(Write("CREATE TABLE items (k TEXT PRIMARY KEY)").has_value());
  auto write = RunTask(db_->Query(0, Statement{"INSERT INTO items VALUES ('x')", {}}));
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().code, core::ErrorCode::kInternal);
  auto out_of_range = RunTask(db_->Query(2, Statement{"SELECT 1", {}}));
  ASSERT_FALSE(out_of_range.has_value());
  auto two = RunTask(db_->Query(0, Statement{"SELECT 1; SELECT 2", {}}));
  EXPECT_FALSE(two.has_value());
  auto params = RunTask(db_->Query(0, Statement{"SELECT ?1", {}}));
  EXPECT_FALSE(params.has_value());
  // More distinct statements than the cache holds: evicted entries are re-prepared correctly.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 300; ++i) {
      auto rs = RunTask(db_->Query(1, Statement{"SELECT " + std::to_string(i) + " + ?1", {std::int64_t{1}}}));
      ASSERT_TRUE(rs.has_value());
      ASSERT_EQ(std::get<std::int64_t>(rs->rows.at(0).at(0)), i + 1);
    }
  }
}

TEST_F(SqliteTest, EmptyWorkAndClosedDatabaseAreRefused) {
  Open();
  auto empty = RunTask(db_->Transact(0, Work{}));
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, core::ErrorCode::kInternal);
  db_->Close();
  db_->Close();  // Idempotent.
  auto query = RunTask(db_->Query(0, Statement{"SELECT 1", {}}));
  ASSERT_FALSE(query.has_value());
  EXPECT_EQ(query.error().code, core::ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace basalt::store
