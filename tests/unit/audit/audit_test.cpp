/// The audit log on each backend (SQLite always; PostgreSQL with BASALT_TEST_POSTGRES_URL, one
/// schema per test): appends chain, concurrent appends (threads, and two Database instances on one
/// PostgreSQL) keep one valid chain, an append inside a rolled-back transaction leaves nothing,
/// filters and the keyset cursor, and Verify names the first entry after tampering done directly
/// in SQL: an edited row, a deleted row (middle and last), two rows swapped. Concurrent appends of
/// one AuditLog share transactions (group commit), also with two instances on one database, and
/// an entry the database refuses costs no other entry of its group.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.hpp"
#include "store/migrations.hpp"
#include "store_test_support.hpp"

namespace basalt::audit {
namespace {

using store::testing::AllBackends;
using store::testing::Backend;
using store::testing::BackendName;
using store::testing::RunTask;
using store::testing::TempDir;

constexpr unsigned kShards = 2;

Entry Make(std::string action, std::string target, Outcome outcome = Outcome::kSuccess) {
  Entry e;
  e.actor_kind = ActorKind::kAdminToken;
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = outcome;
  e.ip = "127.0.0.1";
  e.user_agent = "test/1";
  e.request_id = "req-1";
  return e;
}

store::Task<core::Result<void>> Exec(store::Transaction& tx, std::string sql) {
  store::Statement s{std::move(sql), {}};
  auto r = co_await tx.Execute(std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

/// Starts every append of `entries` on one io_context before running it, so all but the first
/// arrive while a transaction is in flight; returns the results in order.
std::vector<core::Result<Record>> AppendConcurrently(AuditLog& log, unsigned shard, std::vector<Entry> entries) {
  boost::asio::io_context io;
  std::vector<std::future<core::Result<Record>>> futures;
  for (auto& e : entries) futures.push_back(boost::asio::co_spawn(io, log.Append(shard, std::move(e)), boost::asio::use_future));
  io.run();
  std::vector<core::Result<Record>> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

store::Task<core::Result<void>> AppendThenFail(AuditLog& log, store::Transaction& tx) {
  auto r = co_await log.Append(tx, Make("collection.created", "collection:ghost"));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Fail(core::ErrorCode::kConflict, "the action failed");
}

class AuditTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (const std::string why = store::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    db_ = Open();
    store::Migrator migrator(*db_, Migrations());
    auto up = RunTask(migrator.Up());
    ASSERT_TRUE(up.has_value()) << up.error().message << " / " << up.error().cause;
    log_ = std::make_unique<AuditLog>(*db_);
  }
  void TearDown() override {
    log_.reset();
    if (db_) db_->Close();
  }

  std::unique_ptr<store::Database> Open() {
    auto db = GetParam().open(dir_.path(), kShards);
    EXPECT_TRUE(db.has_value()) << db.error().message << " / " << db.error().cause;
    return db ? std::move(*db) : nullptr;
  }

  Record Append(Entry e) {
    auto r = RunTask(log_->Append(0, std::move(e)));
    EXPECT_TRUE(r.has_value()) << r.error().message << " / " << r.error().cause;
    return r ? *r : Record{};
  }

  void Sql(std::string sql) {
    auto r = RunTask(db_->Transact(0, [&sql](store::Transaction& tx) { return Exec(tx, sql); }));
    ASSERT_TRUE(r.has_value()) << r.error().cause;
  }

  VerifyReport Verify() {
    auto r = RunTask(log_->Verify(1));
    EXPECT_TRUE(r.has_value()) << r.error().cause;
    return r ? *r : VerifyReport{};
  }

  std::vector<Record> List(ListQuery q) {
    auto r = RunTask(log_->List(0, std::move(q)));
    EXPECT_TRUE(r.has_value()) << r.error().cause;
    return r ? *r : std::vector<Record>{};
  }

  void AppendThree() {
    Append(Make("auth.login", "user:a"));
    Append(Make("auth.login_failed", "user:b", Outcome::kFailure));
    Append(Make("collection.created", "collection:posts"));
  }

  TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<AuditLog> log_;
};

TEST_P(AuditTest, AppendsFormOneChain) {
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify().count, 0);
  Entry e = Make("collection.updated", "collection:posts");
  e.changes = {"fields.title", "rules.list"};
  const Record first = Append(e);
  const Record second = Append(Make("auth.login", "user:1"));
  EXPECT_EQ(first.sequence, 1);
  EXPECT_EQ(first.prev_hash, kGenesisHash);
  EXPECT_EQ(first.hash, EntryHash(first));
  EXPECT_EQ(first.hash.size(), 64u);
  EXPECT_EQ(first.id.size(), 36u);
  EXPECT_EQ(second.sequence, 2);
  EXPECT_EQ(second.prev_hash, first.hash);
  const auto all = List({});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].sequence, 2);  // newest first
  EXPECT_EQ(all[1].entry.changes, (std::vector<std::string>{"fields.title", "rules.list"}));
  EXPECT_EQ(all[1].hash, first.hash);
  EXPECT_EQ(all[1].entry.user_agent, "test/1");
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.count, 2);
}

TEST_P(AuditTest, ChangeNamesMustBeOneLine) {
  Entry e = Make("collection.updated", "collection:posts");
  e.changes = {"a\nb"};
  auto r = RunTask(log_->Append(0, e));
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(List({}).empty());
}

TEST_P(AuditTest, AnAppendInARolledBackTransactionLeavesNothing) {
  auto r = RunTask(db_->Transact(0, [this](store::Transaction& tx) { return AppendThenFail(*log_, tx); }));
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(List({}).empty());
  EXPECT_EQ(Append(Make("auth.login", "user:a")).sequence, 1);  // the sequence was taken back
  EXPECT_TRUE(Verify().ok);
}

TEST_P(AuditTest, AppendStepCommitsWithTheTransaction) {
  auto step = log_->AppendStep(Make("collection.deleted", "collection:x"));
  auto r = RunTask(db_->Transact(0, step));
  ASSERT_TRUE(r.has_value());
  const auto all = List({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].entry.action, "collection.deleted");
}

TEST_P(AuditTest, ConcurrentAppendsKeepAValidChain) {
  constexpr int kThreads = 4;
  constexpr int kEach = 15;
  // A second Database on the same data: on PostgreSQL another "instance" with its own pool.
  auto other_db = Open();
  ASSERT_TRUE(other_db);
  AuditLog other(*other_db);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = t % 2 ? other : *log_;
      for (int i = 0; i < kEach; ++i) {
        auto r = RunTask(log.Append(static_cast<unsigned>(t) % kShards,
                                    Make("auth.login", "user:" + std::to_string(t) + "-" + std::to_string(i))));
        if (!r) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  other_db->Close();
  EXPECT_EQ(failures.load(), 0);
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.count, kThreads * kEach);
  std::set<std::int64_t> sequences;
  ListQuery q;
  q.limit = 500;
  for (const auto& r : List(q)) sequences.insert(r.sequence);
  EXPECT_EQ(sequences.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(*sequences.begin(), 1);
  EXPECT_EQ(*sequences.rbegin(), kThreads * kEach);
}

TEST_P(AuditTest, ConcurrentAppendsShareTransactionsAndKeepOneChain) {
  constexpr int kEach = 40;
  // Two instances (on PostgreSQL each with its own pool), each grouping its own appends.
  auto other_db = Open();
  ASSERT_TRUE(other_db);
  AuditLog other(*other_db);
  auto batch = [](std::string prefix) {
    std::vector<Entry> entries;
    for (int i = 0; i < kEach; ++i) entries.push_back(Make("admin_token.used", prefix + std::to_string(i)));
    return entries;
  };
  std::vector<core::Result<Record>> mine, theirs;
  std::thread t1([&] { mine = AppendConcurrently(*log_, 0, batch("POST /a/")); });
  std::thread t2([&] { theirs = AppendConcurrently(other, 1, batch("POST /b/")); });
  t1.join();
  t2.join();
  other_db->Close();
  std::set<std::int64_t> returned;
  for (const auto* results : {&mine, &theirs}) {
    ASSERT_EQ(results->size(), static_cast<std::size_t>(kEach));
    for (int i = 0; i < kEach; ++i) {
      const auto& r = (*results)[static_cast<std::size_t>(i)];
      ASSERT_TRUE(r.has_value()) << r.error().message << " / " << r.error().cause;
      EXPECT_EQ(r->entry.target, std::string(results == &mine ? "POST /a/" : "POST /b/") + std::to_string(i));
      returned.insert(r->sequence);
    }
  }
  // Grouped: fewer transactions than entries in each instance.
  EXPECT_LT(log_->own_transactions(), static_cast<std::uint64_t>(kEach));
  EXPECT_LT(other.own_transactions(), static_cast<std::uint64_t>(kEach));
  EXPECT_GE(log_->own_transactions(), 1u);
  // Every caller got its own sequence, and the stored chain is those, 1..2*kEach, valid.
  EXPECT_EQ(returned.size(), static_cast<std::size_t>(2 * kEach));
  EXPECT_EQ(*returned.begin(), 1);
  EXPECT_EQ(*returned.rbegin(), 2 * kEach);
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.count, 2 * kEach);
  ListQuery q;
  q.limit = 500;
  const auto stored = List(q);
  ASSERT_EQ(stored.size(), static_cast<std::size_t>(2 * kEach));
  for (const auto& rec : stored) {
    const auto& results = rec.entry.target.starts_with("POST /a/") ? mine : theirs;
    const auto index = static_cast<std::size_t>(std::stoi(rec.entry.target.substr(8)));
    EXPECT_EQ(results[index]->sequence, rec.sequence);
    EXPECT_EQ(results[index]->hash, rec.hash);
  }
}

TEST_P(AuditTest, ARefusedEntryCostsNoOtherEntryOfItsGroup) {
  // Not UTF-8: PostgreSQL refuses the text, SQLite stores the bytes. Either way the others of the
  // shared transaction are recorded.
  std::vector<Entry> entries;
  for (int i = 0; i < 10; ++i) entries.push_back(Make("admin_token.used", "POST /x/" + std::to_string(i)));
  entries[4].user_agent = "bad \xff\xfe bytes";
  entries[5].changes = {"two\nlines"};  // refused before any transaction, on every backend
  const auto results = AppendConcurrently(*log_, 0, std::move(entries));
  ASSERT_EQ(results.size(), 10u);
  const bool refused = !results[4].has_value();
  EXPECT_EQ(refused, GetParam().name == "postgres");
  EXPECT_FALSE(results[5].has_value());
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 4 || i == 5) continue;
    EXPECT_TRUE(results[i].has_value()) << i << ": " << results[i].error().cause;
  }
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.count, refused ? 8 : 9);
}

TEST_P(AuditTest, VerifyFindsAnEditedRow) {
  AppendThree();
  ASSERT_TRUE(Verify().ok);
  Sql("UPDATE basalt_audit_log SET target = 'user:someone-else' WHERE seq = 2");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 2);
  EXPECT_FALSE(report.bad_id.empty());
  EXPECT_NE(report.reason.find("edited"), std::string::npos) << report.reason;
  EXPECT_EQ(report.count, 1);
}

TEST_P(AuditTest, VerifyFindsAnEditedOutcomeEvenWithAnUnknownName) {
  AppendThree();
  Sql("UPDATE basalt_audit_log SET outcome = 'fine' WHERE seq = 2");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 2);
}

TEST_P(AuditTest, VerifyFindsADeletedRow) {
  AppendThree();
  Sql("DELETE FROM basalt_audit_log WHERE seq = 2");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 2);
  EXPECT_NE(report.reason.find("missing"), std::string::npos) << report.reason;
}

TEST_P(AuditTest, VerifyFindsADeletedLastRow) {
  AppendThree();
  Sql("DELETE FROM basalt_audit_log WHERE seq = 3");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 3);
}

TEST_P(AuditTest, VerifyFindsADeletionRenumberedToHideTheGap) {
  AppendThree();
  Sql("DELETE FROM basalt_audit_log WHERE seq = 2");
  Sql("UPDATE basalt_audit_log SET seq = 2 WHERE seq = 3");
  Sql("UPDATE basalt_audit_head SET seq = 2");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 2);
}

TEST_P(AuditTest, VerifyFindsSwappedRows) {
  AppendThree();
  Sql("UPDATE basalt_audit_log SET seq = -1 WHERE seq = 2");
  Sql("UPDATE basalt_audit_log SET seq = 2 WHERE seq = 3");
  Sql("UPDATE basalt_audit_log SET seq = 3 WHERE seq = -1");
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_sequence, 2);
  EXPECT_NE(report.reason.find("link"), std::string::npos) << report.reason;
}

TEST_P(AuditTest, FiltersAndKeysetCursor) {
  for (int i = 0; i < 7; ++i) Append(Make("auth.login", "user:" + std::to_string(i % 2)));
  Append(Make("auth.lockout", "user:1", Outcome::kDenied));
  Append(Make("collection.created", "collection:posts"));
  ListQuery by_action;
  by_action.action = "auth.login";
  EXPECT_EQ(List(by_action).size(), 7u);
  ListQuery prefix;
  prefix.action = "auth.*";
  EXPECT_EQ(List(prefix).size(), 8u);
  ListQuery denied;
  denied.outcome = Outcome::kDenied;
  ASSERT_EQ(List(denied).size(), 1u);
  EXPECT_EQ(List(denied)[0].entry.action, "auth.lockout");
  ListQuery target;
  target.target = "user:1";
  EXPECT_EQ(List(target).size(), 4u);
  ListQuery kind;
  kind.actor_kind = ActorKind::kUser;
  EXPECT_TRUE(List(kind).empty());
  ListQuery future;
  future.since_ms = std::int64_t{1} << 50;
  EXPECT_TRUE(List(future).empty());
  ListQuery past;
  past.until_ms = 1;
  EXPECT_TRUE(List(past).empty());

  // Pages of 4 over 9 entries: 4, 4, 1, no overlap, newest first.
  std::vector<std::int64_t> seen;
  ListQuery page;
  page.limit = 4;
  for (int n = 0; n < 5; ++n) {
    const auto items = List(page);
    for (const auto& r : items) seen.push_back(r.sequence);
    if (items.size() < 4) break;
    page.before_sequence = items.back().sequence;
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{9, 8, 7, 6, 5, 4, 3, 2, 1}));
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditTest, ::testing::ValuesIn(AllBackends()), BackendName);

}  // namespace
}  // namespace basalt::audit
