/// PostgreSQL-specific behaviour of the store backend: pool waits, connection replacement,
/// advisory-locked migrations, concurrent shards, the prepared-statement cache. Needs a live
/// server (BASALT_TEST_POSTGRES_URL, see scripts/pg-test-cluster.sh); skipped without one.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "store/deferred.hpp"
#include "store/migrations.hpp"
#include "store/postgres.hpp"
#include "store_test_support.hpp"

namespace basalt::store {
namespace {

namespace asio = boost::asio;
using testing::OpenPostgresFor;
using testing::RunTask;
using testing::TempDir;

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = testing::PostgresSkipReason(); !why.empty()) GTEST_SKIP() << why;
  }

  std::unique_ptr<Database> Open(unsigned shards, unsigned pool_size) {
    auto db = OpenPostgresFor(dir_.path(), shards, pool_size);
    EXPECT_TRUE(db.has_value()) << db.error().message << " / " << db.error().cause;
    return db ? std::move(*db) : nullptr;
  }

  static std::int64_t Int(Database& db, const std::string& sql, std::vector<Value> params = {}, unsigned shard = 0) {
    auto rs = RunTask(db.Query(shard, Statement{sql, std::move(params)}));
    EXPECT_TRUE(rs.has_value()) << (rs ? "" : rs.error().cause);
    if (!rs || rs->rows.size() != 1) return -1;
    return std::get<std::int64_t>(rs->rows[0][0]);
  }

  static core::Result<void> Script(Database& db, std::string sql) {
    return RunTask(db.Transact(0, [sql = std::move(sql)](Transaction& tx) -> Task<core::Result<void>> {
      co_return co_await tx.ExecuteScript(sql);
    }));
  }

  TempDir dir_;
};

TEST_F(PostgresTest, PoolExhaustionWaitsAndResumes) {
  auto db = Open(1, 2);
  ASSERT_TRUE(db);
  constexpr int kQueries = 20;
  asio::io_context io(1);
  std::atomic<int> ok{0};
  std::set<std::int64_t> pids;
  for (int i = 0; i < kQueries; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> Task<void> {
          Statement statement{"SELECT pg_backend_pid()::bigint, $1::bigint FROM pg_sleep(0.02)", {std::int64_t{i}}};
          auto rs = co_await db->Query(0, std::move(statement));
          if (rs && rs->rows.size() == 1 && std::get<std::int64_t>(rs->rows[0][1]) == i) {
            ++ok;
            pids.insert(std::get<std::int64_t>(rs->rows[0][0]));
          }
        },
        asio::detached);
  }
  const auto start = std::chrono::steady_clock::now();
  io.run();
  EXPECT_EQ(ok, kQueries);
  EXPECT_LE(pids.size(), 2u);  // Never more than pool_size connections.
  // 20 sleeps of 20 ms over 2 connections take at least 10 rounds.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(180));
  db->Close();
}

TEST_F(PostgresTest, KilledConnectionIsReplaced) {
  auto db = Open(1, 1);
  auto admin = Open(1, 1);
  ASSERT_TRUE(db && admin);
  for (int round = 0; round < 2; ++round) {
    const std::int64_t pid = Int(*db, "SELECT pg_backend_pid()::bigint");
    ASSERT_GT(pid, 0);
    ASSERT_EQ(Int(*admin, "SELECT COUNT(*) FROM pg_terminate_backend($1::int) t WHERE t", {pid}), 1);
    // Wait until the backend is gone, so the pool's idle connection is really dead.
    for (int i = 0; i < 200 && Int(*admin, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1::int", {pid}) > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (round == 0) {
      const std::int64_t next = Int(*db, "SELECT pg_backend_pid()::bigint");
      EXPECT_GT(next, 0);
      EXPECT_NE(next, pid);
    } else {
      auto written = RunTask(db->Transact(0, [](Transaction& tx) -> Task<core::Result<void>> {
        co_return co_await tx.ExecuteScript("CREATE TABLE after_kill (x BIGINT)");
      }));
      EXPECT_TRUE(written.has_value()) << written.error().cause;
    }
  }
  db->Close();
  admin->Close();
}

TEST_F(PostgresTest, RacingMigratorsApplyEachMigrationOnce) {
  auto a = Open(1, 2);
  auto b = Open(1, 2);
  ASSERT_TRUE(a && b);
  std::vector<Migration> catalog;
  for (int v = 1; v <= 5; ++v) {
    Migration m;
    m.version = v;
    m.name = "m" + std::to_string(v);
    m.up = v == 1 ? "CREATE TABLE ledger (v BIGINT NOT NULL);" : "INSERT INTO ledger (v) VALUES (" + std::to_string(v) + ");";
    catalog.push_back(m);
  }
  std::atomic<int> applied{0};
  std::atomic<int> failed{0};
  auto run = [&](Database& db) {
    Migrator migrator(db, catalog);
    auto up = RunTask(migrator.Up());
    if (up) {
      applied += *up;
    } else {
      ++failed;
      ADD_FAILURE() << up.error().message << " / " << up.error().cause;
    }
  };
  std::thread ta([&] { run(*a); });
  std::thread tb([&] { run(*b); });
  ta.join();
  tb.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(applied, 5);
  EXPECT_EQ(Int(*a, "SELECT COUNT(*) FROM basalt_migrations"), 5);
  EXPECT_EQ(Int(*a, "SELECT COUNT(*) FROM ledger"), 4);  // Each INSERT ran once.
  a->Close();
  b->Close();
}

TEST_F(PostgresTest, ConcurrentTransactsOnSeveralShards) {
  constexpr unsigned kShards = 4;
  constexpr int kPerShard = 100;
  auto db = Open(kShards, 3);
  ASSERT_TRUE(db);
  ASSERT_TRUE(Script(*db, "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);"
                          "INSERT INTO counter VALUES (1, 0);"
                          "CREATE TABLE log (shard BIGINT, i BIGINT, PRIMARY KEY (shard, i));")
                  .has_value());
  std::atomic<int> ok{0};
  std::atomic<int> wrong_thread{0};
  std::vector<std::thread> threads;
  for (unsigned shard = 0; shard < kShards; ++shard) {
    threads.emplace_back([&, shard] {
      asio::io_context io(1);
      const auto me = std::this_thread::get_id();
      for (int i = 0; i < kPerShard; ++i) {
        asio::co_spawn(
            io,
            [&, shard, i]() -> Task<void> {
              auto result = co_await db->Transact(shard, [shard, i](Transaction& tx) -> Task<core::Result<void>> {
                Statement bump{"UPDATE counter SET n = n + 1 WHERE id = 1", {}};
                auto bumped = co_await tx.Execute(std::move(bump));
                if (!bumped) co_return std::unexpected(bumped.error());
                Statement log{"INSERT INTO log (shard, i) VALUES ($1, $2)", {std::int64_t{shard}, std::int64_t{i}}};
                auto logged = co_await tx.Execute(std::move(log));
                if (!logged) co_return std::unexpected(logged.error());
                co_return core::Result<void>{};
              });
              if (std::this_thread::get_id() != me) ++wrong_thread;
              if (result) ++ok;
            },
            asio::detached);
      }
      io.run();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, static_cast<int>(kShards) * kPerShard);
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(Int(*db, "SELECT n FROM counter WHERE id = 1"), kShards * kPerShard);
  for (unsigned shard = 0; shard < kShards; ++shard) {
    EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM log WHERE shard = $1", {std::int64_t{shard}}, shard), kPerShard);
  }
  db->Close();
}

TEST_F(PostgresTest, PreparedStatementsAreReused) {
  auto db = Open(1, 1);  // One connection: every query below runs on the same session.
  ASSERT_TRUE(db);
  const std::string sql = "SELECT $1::bigint + 1";
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(Int(*db, sql, {i}), i + 1);
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement = $1", {sql}), 1);
  // Two distinct statements so far (the query above and this one), named by the cache.
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM pg_prepared_statements WHERE name LIKE 's%'"), 3);
  db->Close();
}

// COMMIT pipelined behind deferred statements: a deferred UNIQUE constraint fails at COMMIT
// itself; that is a failure (never a success), nothing stays, and the one connection is left idle
// and reusable (no transaction leaks into the next caller).
TEST_F(PostgresTest, DeferredUniqueFailingAtPipelinedCommitIsAConflict) {
  auto db = Open(1, 1);
  ASSERT_TRUE(db);
  ASSERT_TRUE(Script(*db, "CREATE TABLE tags (name TEXT, CONSTRAINT tags_u UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)")
                  .has_value());
  const std::int64_t pid = Int(*db, "SELECT pg_backend_pid()::bigint");
  auto twice = [](std::string first, std::string second) {
    return [first = std::move(first), second = std::move(second)](Transaction& tx) -> Task<core::Result<void>> {
      Statement a{"INSERT INTO tags (name) VALUES ($1)", {first}};
      if (auto q = co_await ExecuteDeferred(tx, std::move(a)); !q) co_return q;
      Statement b{"INSERT INTO tags (name) VALUES ($1)", {second}};
      co_return co_await ExecuteDeferred(tx, std::move(b));
    };
  };
  auto dup = RunTask(db->Transact(0, twice("x", "x")));  // Both INSERTs succeed; COMMIT fails.
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, core::ErrorCode::kConflict);
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM tags"), 0);
  EXPECT_EQ(Int(*db, "SELECT pg_backend_pid()::bigint"), pid);  // Same session, idle again.
  auto ok = RunTask(db->Transact(0, twice("x", "y")));
  ASSERT_TRUE(ok.has_value()) << ok.error().cause;
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM tags"), 2);
  EXPECT_EQ(Int(*db, "SELECT pg_backend_pid()::bigint"), pid);
  // A failure inside the pipeline (before COMMIT) leaves the session in a failed transaction,
  // which Transact rolls back: the next transaction on the same session commits normally.
  auto bad = RunTask(db->Transact(0, [](Transaction& tx) -> Task<core::Result<void>> {
    Statement a{"INSERT INTO tags (name) VALUES ($1)", {std::string("z")}};
    if (auto q = co_await ExecuteDeferred(tx, std::move(a)); !q) co_return q;
    Statement b{"INSERT INTO tags (name) VALUES ($1::bigint::text)", {std::string("not a number")}};
    co_return co_await ExecuteDeferred(tx, std::move(b));
  }));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, core::ErrorCode::kInternal);
  auto after = RunTask(db->Transact(0, twice("p", "q")));
  ASSERT_TRUE(after.has_value()) << after.error().cause;
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM tags"), 4);
  EXPECT_EQ(Int(*db, "SELECT pg_backend_pid()::bigint"), pid);
  db->Close();
}

TEST_F(PostgresTest, ValuesConvertByColumnType) {
  auto db = Open(1, 1);
  ASSERT_TRUE(db);
  auto rs = RunTask(db->Query(0, Statement{"SELECT 7::int2, 8::int4, 9::int8, 2.5::float4, 'NaN'::float8, "
                                           "'-Infinity'::float8, 12::numeric, 1.25::numeric, true, 'x'::varchar, "
                                           "NULL::text, $1::float8, $2",
                                           {-0.1, Null{}}}));
  ASSERT_TRUE(rs.has_value()) << rs.error().cause;
  const auto& row = rs->rows.at(0);
  EXPECT_EQ(std::get<std::int64_t>(row[0]), 7);
  EXPECT_EQ(std::get<std::int64_t>(row[1]), 8);
  EXPECT_EQ(std::get<std::int64_t>(row[2]), 9);
  EXPECT_EQ(std::get<double>(row[3]), 2.5);
  EXPECT_TRUE(std::isnan(std::get<double>(row[4])));
  EXPECT_EQ(std::get<double>(row[5]), -INFINITY);
  EXPECT_EQ(std::get<std::int64_t>(row[6]), 12);
  EXPECT_EQ(std::get<double>(row[7]), 1.25);
  EXPECT_EQ(std::get<bool>(row[8]), true);
  EXPECT_EQ(std::get<std::string>(row[9]), "x");
  EXPECT_TRUE(std::holds_alternative<Null>(row[10]));
  EXPECT_EQ(std::get<double>(row[11]), -0.1);
  EXPECT_TRUE(std::holds_alternative<Null>(row[12]));
  db->Close();
}

TEST_F(PostgresTest, OpenReportsBadUrlAndUnreachableServer) {
  PostgresOptions bad;
  bad.url = "postgres://user@[::1";
  auto malformed = OpenPostgres(bad);
  ASSERT_FALSE(malformed.has_value());
  EXPECT_EQ(malformed.error().code, core::ErrorCode::kValidation);

  PostgresOptions unreachable;
  unreachable.url = "postgres://nobody:secret@127.0.0.1:1/none";  // Port 1: connection refused.
  unreachable.connect_timeout = std::chrono::milliseconds(2000);
  auto refused = OpenPostgres(unreachable);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(refused.error().message.find("secret"), std::string::npos);
}

/// Collects the payloads one Listen callback receives (from any thread).
class Heard {
 public:
  NotificationCallback Callback() {
    return [this](std::string_view payload, bool lost) {
      if (lost) return;
      std::lock_guard lock(mutex_);
      got_.emplace(payload);
      changed_.notify_all();
    };
  }
  bool Has(const std::string& payload) {
    std::lock_guard lock(mutex_);
    return got_.contains(payload);
  }
  bool Arrives(const std::string& payload, std::chrono::milliseconds within) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, within, [&] { return got_.contains(payload); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> got_;
};

// A notification that reaches the listening connection while it runs LISTEN for another channel
// (libpq then buffers it) is delivered at once, not only when the next one comes. The sender is
// another Database (another instance): its notifications reach this one only through PostgreSQL.
TEST_F(PostgresTest, NotificationArrivingDuringAnotherListenIsDeliveredAtOnce) {
  auto db = Open(1, 2);
  auto sender = Open(1, 2);
  ASSERT_TRUE(db && sender);
  Heard heard;
  auto a = db->Listen("basalt_test_a", heard.Callback());
  auto notify = [&](const std::string& payload) {
    auto r = RunTask(sender->Transact(0, [payload](Transaction& tx) { return tx.Notify("basalt_test_a", payload); }));
    ASSERT_TRUE(r.has_value()) << r.error().cause;
  };
  // The listener connects in the background: notify until it hears.
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    notify("warm-" + std::to_string(i));
    listening = heard.Arrives("warm-" + std::to_string(i), std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(listening);
  std::vector<std::unique_ptr<Subscription>> others;
  for (int i = 0; i < 40; ++i) {
    // The listener runs LISTEN for the new channel while the notification is on its way.
    others.push_back(db->Listen("basalt_test_b" + std::to_string(i), [](std::string_view, bool) {}));
    notify("n" + std::to_string(i));
    ASSERT_TRUE(heard.Arrives("n" + std::to_string(i), std::chrono::seconds(5))) << "notification " << i << " stuck";
  }
}

Task<core::Result<void>> NotifyValueOf(Transaction& tx, std::string sql, std::string then_notify, bool fail) {
  Statement statement{std::move(sql), {}};
  if (auto r = co_await ExecuteAndNotify(tx, std::move(statement), "basalt_test_v", /*defer=*/true); !r) co_return r;
  if (auto r = co_await tx.Notify("basalt_test_v", std::move(then_notify)); !r) co_return r;
  if (fail) co_return core::Fail(core::ErrorCode::kConflict, "rolled back on purpose");
  co_return core::Result<void>{};
}

// Notifications leave no NOTIFY inside the write transaction (its COMMIT takes no cluster-wide
// notify lock): this process's listeners have them when Transact returns, other instances get
// them through the listening connection's coalesced NOTIFY, and a rolled-back transaction's are
// never delivered anywhere. ExecuteAndNotify's value (computed by the deferred statement) is the
// payload.
TEST_F(PostgresTest, CommittedNotificationsReachThisProcessAtOnceAndOthersByNotify) {
  auto db = Open(1, 2);
  auto other = Open(1, 2);
  ASSERT_TRUE(db && other);
  Heard here, there;
  auto local = db->Listen("basalt_test_v", here.Callback());
  auto remote = other->Listen("basalt_test_v", there.Callback());
  // Wait until the other instance listens (a committed notification of `db` reaches it).
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    const std::string warm = "warm-" + std::to_string(i);
    auto r = RunTask(db->Transact(0, [warm](Transaction& tx) { return tx.Notify("basalt_test_v", warm); }));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(here.Has(warm)) << "not delivered in-process by the time Transact returned";
    listening = there.Arrives(warm, std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(listening);

  // A rolled-back transaction first, then a committed one: the committed one's notifications
  // arrive, after which the rolled-back ones would have arrived too (same connection, in order).
  auto failed = RunTask(db->Transact(0, [](Transaction& tx) {
    return NotifyValueOf(tx, "SELECT 'rolled-' || 'back'", "rolled-back-2", /*fail=*/true);
  }));
  ASSERT_FALSE(failed.has_value());
  auto done = RunTask(db->Transact(0, [](Transaction& tx) {
    return NotifyValueOf(tx, "SELECT 40 + 2", "plain \"quoted\" \\ {payload}, too", /*fail=*/false);
  }));
  ASSERT_TRUE(done.has_value()) << done.error().cause;
  EXPECT_TRUE(here.Has("42"));
  EXPECT_TRUE(here.Has("plain \"quoted\" \\ {payload}, too"));
  EXPECT_TRUE(there.Arrives("42", std::chrono::seconds(10)));
  EXPECT_TRUE(there.Arrives("plain \"quoted\" \\ {payload}, too", std::chrono::seconds(10)));
  // Many concurrent writers (coalesced into few NOTIFYs): every payload reaches the other side.
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&db, w] {
      for (int i = 0; i < 50; ++i) {
        const std::string payload = "w" + std::to_string(w) + "-" + std::to_string(i);
        (void)RunTask(db->Transact(0, [payload](Transaction& tx) { return tx.Notify("basalt_test_v", payload); }));
      }
    });
  }
  for (auto& t : writers) t.join();
  for (int w = 0; w < 4; ++w) {
    for (int i = 0; i < 50; ++i) {
      const std::string payload = "w" + std::to_string(w) + "-" + std::to_string(i);
      EXPECT_TRUE(here.Has(payload)) << payload;
      EXPECT_TRUE(there.Arrives(payload, std::chrono::seconds(10))) << payload;
    }
  }
  EXPECT_FALSE(here.Has("rolled-back"));
  EXPECT_FALSE(here.Has("rolled-back-2"));
  EXPECT_FALSE(there.Has("rolled-back"));
  EXPECT_FALSE(there.Has("rolled-back-2"));
}

Task<core::Result<void>> InsertNotifying(Transaction& tx, std::int64_t key) {
  Statement insert{"INSERT INTO grouped (i) VALUES ($1) RETURNING i", {key}};
  co_return co_await ExecuteAndNotify(tx, std::move(insert), "basalt_test_g", /*defer=*/true);
}

/// Key -1 stands for a transaction whose deferred statement kills its own backend.
Task<core::Result<void>> InsertOrKill(Transaction& tx, std::int64_t key) {
  if (key >= 0) co_return co_await InsertNotifying(tx, key);
  Statement kill{"SELECT pg_terminate_backend(pg_backend_pid())", {}};
  co_return co_await ExecuteDeferred(tx, std::move(kill));
}

/// Runs one deferred-only transaction per key, all started at once on one thread.
std::vector<core::Result<void>> InsertAllAtOnce(Database& db, const std::vector<std::int64_t>& keys) {
  asio::io_context io(1);
  std::vector<core::Result<void>> results(keys.size());
  for (std::size_t n = 0; n < keys.size(); ++n) {
    asio::co_spawn(
        io,
        [&db, &results, n, key = keys[n]]() -> Task<void> {
          TransactionWork work = [key](Transaction& tx) { return InsertOrKill(tx, key); };
          results[n] = co_await db.Transact(0, std::move(work));
        },
        asio::detached);
  }
  io.run();
  return results;
}

// Transactions whose statements are all deferred (a record create) commit in groups: 64 started
// at once on a pool of one connection share at most two transactions (the first leads alone, the
// others queue behind it and commit together), and each keeps its own DeferNotifying value. A
// member that violates a unique constraint costs only itself: the group rolls back and every
// member commits alone, so it alone gets the conflict and nothing is lost or written twice.
TEST_F(PostgresTest, DeferredOnlyTransactionsCommitInGroupsAndFailAlone) {
  auto db = Open(1, 1);
  ASSERT_TRUE(db);
  ASSERT_TRUE(
      Script(*db, "CREATE TABLE grouped (i BIGINT PRIMARY KEY, tx BIGINT NOT NULL DEFAULT txid_current())").has_value());
  Heard heard;
  auto listening = db->Listen("basalt_test_g", heard.Callback());
  ASSERT_EQ(Int(*db, "SELECT 1::bigint"), 1);  // The pool's one connection exists and is idle.

  std::vector<std::int64_t> keys;
  for (std::int64_t k = 0; k < 64; ++k) keys.push_back(k);
  auto results = InsertAllAtOnce(*db, keys);
  for (std::size_t n = 0; n < results.size(); ++n) EXPECT_TRUE(results[n].has_value()) << n;
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM grouped"), 64);
  EXPECT_LE(Int(*db, "SELECT COUNT(DISTINCT tx) FROM grouped"), 2);
  for (std::int64_t k : keys) EXPECT_TRUE(heard.Has(std::to_string(k))) << k;

  // Key 5 exists already: its transaction fails with a conflict, its group-mates commit.
  keys.clear();
  for (std::int64_t k = 100; k < 131; ++k) keys.push_back(k);
  keys.insert(keys.begin() + 10, 5);
  results = InsertAllAtOnce(*db, keys);
  ASSERT_EQ(results.size(), 32u);
  for (std::size_t n = 0; n < results.size(); ++n) {
    if (n == 10) {
      ASSERT_FALSE(results[n].has_value());
      EXPECT_EQ(results[n].error().code, core::ErrorCode::kConflict);
    } else {
      EXPECT_TRUE(results[n].has_value()) << n << ": " << results[n].error().cause;
    }
  }
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM grouped"), 64 + 31);
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM grouped WHERE i >= 100"), 31);
  for (std::int64_t k = 100; k < 131; ++k) EXPECT_TRUE(heard.Has(std::to_string(k))) << k;
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = current_database()"), 0);

  // A group whose connection is lost may have committed (the answer to COMMIT never came): no
  // member retries, each gets the error, as a lone transaction would. Here it did not commit.
  keys = {200, 201, 202, -1, 203, 204};
  results = InsertAllAtOnce(*db, keys);
  ASSERT_EQ(results.size(), keys.size());
  EXPECT_TRUE(results[0].has_value()) << results[0].error().cause;  // Led alone, before the others queued.
  for (std::size_t n = 1; n < results.size(); ++n) {
    ASSERT_FALSE(results[n].has_value()) << n;
    EXPECT_EQ(results[n].error().code, core::ErrorCode::kUnavailable) << n;
  }
  EXPECT_EQ(Int(*db, "SELECT COUNT(*) FROM grouped WHERE i >= 200"), 1);
  db->Close();
}

}  // namespace
}  // namespace basalt::store
