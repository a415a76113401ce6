// The queue engine's C++ API against real databases (SQLite file; PostgreSQL schema per test when
// BASALT_TEST_POSTGRES_URL is set): produce inside a caller's transaction commits or rolls back
// with it, a waiting claim is woken by such a produce, and the ordering/ack basics.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "../store/store_test_support.hpp"
#include "queue/engine.hpp"
#include "queue/migrations.hpp"
#include "store/migrations.hpp"

namespace basalt::queue {
namespace {

namespace asio = boost::asio;
using store::testing::AllBackends;
using store::testing::Backend;
using store::testing::RunTask;

class EngineTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (auto reason = store::testing::SkipReason(GetParam()); !reason.empty()) GTEST_SKIP() << reason;
    auto db = GetParam().open(dir_.path(), 1);
    ASSERT_TRUE(db) << db.error().message << " " << db.error().cause;
    db_ = std::move(*db);
    store::Migrator migrator(*db_, SystemMigrations());
    auto up = RunTask(migrator.Up());
    ASSERT_TRUE(up) << up.error().message << " " << up.error().cause;
    engine_ = std::make_unique<Engine>(*db_);
  }
  void TearDown() override {
    engine_.reset();
    if (db_) db_->Close();
  }

  static std::vector<NewMessage> One(std::string payload, int priority = 0) {
    std::vector<NewMessage> out(1);
    out[0].payload = std::move(payload);
    out[0].priority = priority;
    return out;
  }

  store::testing::TempDir dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Engine> engine_;
};

/// Produces `payload` to `queue` inside a transaction that then fails (rollback) or succeeds.
Task<core::Result<void>> ProduceIn(store::Transaction& tx, Engine& engine, std::string queue, std::string payload,
                                   bool fail_after) {
  std::vector<NewMessage> messages(1);
  messages[0].payload = std::move(payload);
  auto produced = co_await engine.Produce(tx, std::move(queue), std::move(messages));
  if (!produced) co_return std::unexpected(std::move(produced.error()));
  if (fail_after) co_return core::Fail(core::ErrorCode::kConflict, "the caller's own write failed");
  co_return core::Result<void>{};
}

TEST_P(EngineTest, ProduceInsideATransactionCommitsAndRollsBackWithIt) {
  Engine& e = *engine_;
  auto rolled = RunTask(db_->Transact(0, [&e](store::Transaction& tx) { return ProduceIn(tx, e, "outbox", "1", true); }));
  ASSERT_FALSE(rolled);
  auto none = RunTask(e.Claim(0, "outbox", ClaimOptions{.max = 10}));
  ASSERT_TRUE(none) << none.error().cause;
  EXPECT_TRUE(none->empty());

  auto committed = RunTask(db_->Transact(0, [&e](store::Transaction& tx) { return ProduceIn(tx, e, "outbox", "2", false); }));
  ASSERT_TRUE(committed) << committed.error().cause;
  auto got = RunTask(e.Claim(0, "outbox", ClaimOptions{.max = 10}));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].payload, "2");
  auto stats = RunTask(e.Stats(0, "outbox"));
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->produced, 1);  // the rolled-back produce left no count either
  EXPECT_EQ(stats->in_flight, 1);
}

TEST_P(EngineTest, PriorityThenAgeAndAcks) {
  Engine& e = *engine_;
  std::vector<NewMessage> batch;
  for (int i = 0; i < 6; ++i) {
    NewMessage m;
    m.payload = std::to_string(i);
    m.priority = i % 3;  // priorities 0,1,2,0,1,2
    batch.push_back(std::move(m));
  }
  auto produced = RunTask(e.Produce(0, "order", std::move(batch)));
  ASSERT_TRUE(produced) << produced.error().cause;
  auto got = RunTask(e.Claim(0, "order", ClaimOptions{.max = 4}));
  ASSERT_TRUE(got);
  std::vector<std::string> payloads;
  for (const auto& m : *got) payloads.push_back(m.payload);
  EXPECT_EQ(payloads, (std::vector<std::string>{"2", "5", "1", "4"}));
  auto ack = RunTask(e.Ack(0, "order", (*got)[0].id, (*got)[0].lease_token));
  EXPECT_TRUE(ack);
  auto stale = RunTask(e.Ack(0, "order", (*got)[0].id, (*got)[0].lease_token));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, core::ErrorCode::kConflict);
  auto missing = RunTask(e.Ack(0, "order", "no-such-id", "x"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
}

TEST_P(EngineTest, ReleaseGivesAMessageBackWithoutSpendingItsAttempt) {
  Engine& e = *engine_;
  QueueSettings one_attempt;
  one_attempt.max_attempts = 1;
  ASSERT_TRUE(RunTask(e.Put(0, "held", one_attempt)));
  ASSERT_TRUE(RunTask(e.Produce(0, "held", One("1"))));
  for (int round = 0; round < 3; ++round) {  // with max_attempts 1 a nack would kill it at once
    auto got = RunTask(e.Claim(0, "held", ClaimOptions{.max = 1}));
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), 1u) << round;
    EXPECT_EQ((*got)[0].attempt, 1);
    auto released = RunTask(e.Release(0, "held", (*got)[0].id, (*got)[0].lease_token, 0));
    ASSERT_TRUE(released) << released.error().message;
    auto again = RunTask(e.Release(0, "held", (*got)[0].id, (*got)[0].lease_token, 0));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, core::ErrorCode::kConflict);  // the token is spent
  }
  // A delay keeps it unclaimable meanwhile; bad input and unknown ids are refused.
  auto got = RunTask(e.Claim(0, "held", ClaimOptions{.max = 1}));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  ASSERT_TRUE(RunTask(e.Release(0, "held", (*got)[0].id, (*got)[0].lease_token, 60'000)));
  auto none = RunTask(e.Claim(0, "held", ClaimOptions{.max = 1}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto stats = RunTask(e.Stats(0, "held"));
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->delayed, 1);
  EXPECT_EQ(stats->dead, 0);
  EXPECT_EQ(stats->nacked, 0);
  auto negative = RunTask(e.Release(0, "held", (*got)[0].id, "x", -1));
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error().code, core::ErrorCode::kValidation);
  auto missing = RunTask(e.Release(0, "held", "no-such-id", "x", 0));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
  EXPECT_TRUE(IsSystemQueue("basalt.webhooks"));
  EXPECT_FALSE(IsSystemQueue("emails"));
  EXPECT_FALSE(IsSystemQueue("basaltx"));
}

/// Waits (bounded) until a claim is parked on `queue`, then produces inside a transaction.
Task<void> ProduceWhenWaiting(store::Database& db, Engine& engine, bool& saw_waiter) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < 1000; ++i) {
    auto stats = co_await engine.Stats(0, "wake");
    if (stats && stats->waiting_claims > 0) {
      saw_waiter = true;
      break;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto committed = co_await db.Transact(0, [&engine](store::Transaction& tx) {
    return ProduceIn(tx, engine, "wake", "\"hello\"", false);
  });
  EXPECT_TRUE(committed);
}

TEST_P(EngineTest, AWaitingClaimIsWokenByAProduceInATransaction) {
  Engine& e = *engine_;
  asio::io_context io;
  bool saw_waiter = false;
  std::optional<core::Result<std::vector<Message>>> claimed;
  // The claim may wait 30 s; the watchdog gives up after 15 s, so only a wake-up passes.
  asio::steady_timer watchdog(io, std::chrono::seconds(15));
  watchdog.async_wait([&](boost::system::error_code ec) {
    if (!ec) io.stop();
  });
  asio::co_spawn(io, e.Claim(0, "wake", ClaimOptions{.max = 5, .wait_ms = 30000}),
                 [&](std::exception_ptr, core::Result<std::vector<Message>> r) {
                   claimed = std::move(r);
                   watchdog.cancel();
                 });
  asio::co_spawn(io, ProduceWhenWaiting(*db_, e, saw_waiter), asio::detached);
  io.run();
  EXPECT_TRUE(saw_waiter);
  ASSERT_TRUE(claimed.has_value());
  ASSERT_TRUE(*claimed) << claimed->error().cause;
  ASSERT_EQ((*claimed)->size(), 1u);
  EXPECT_EQ((**claimed)[0].payload, "\"hello\"");
}

TEST_P(EngineTest, ThousandMessageBatchesProduceClaimAndAckInFull) {
  Engine& e = *engine_;
  std::vector<NewMessage> batch(kMaxBatch);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].payload = std::to_string(i);
  auto produced = RunTask(e.Produce(0, "big", std::move(batch)));
  ASSERT_TRUE(produced) << produced.error().cause;
  ASSERT_EQ(produced->size(), kMaxBatch);
  auto got = RunTask(e.Claim(0, "big", ClaimOptions{.max = static_cast<std::int64_t>(kMaxBatch)}));
  ASSERT_TRUE(got) << got.error().cause;
  ASSERT_EQ(got->size(), kMaxBatch);
  for (std::size_t i = 0; i < got->size(); ++i) ASSERT_EQ((*got)[i].payload, std::to_string(i));  // oldest first
  // 1,000 acks of one token (several statements of up to 128 ids), one id twice, one unknown.
  std::vector<AckItem> acks;
  for (const auto& m : *got) acks.push_back(AckItem{m.id, m.lease_token});
  acks[999] = AckItem{(*got)[0].id, (*got)[0].lease_token};
  acks[998] = AckItem{"00000000-0000-7000-8000-000000000000", (*got)[0].lease_token};
  auto outcomes = RunTask(e.AckBatch(0, "big", acks));
  ASSERT_TRUE(outcomes) << outcomes.error().cause;
  ASSERT_EQ(outcomes->size(), kMaxBatch);
  for (std::size_t i = 0; i < 998; ++i) ASSERT_EQ((*outcomes)[i], AckOutcome::kAcked) << i;
  EXPECT_EQ((*outcomes)[998], AckOutcome::kNotFound);
  EXPECT_EQ((*outcomes)[999], AckOutcome::kStale);  // the repeat of an id acked in the same batch
  std::vector<AckItem> rest{AckItem{(*got)[998].id, (*got)[998].lease_token}, AckItem{(*got)[999].id, (*got)[999].lease_token}};
  auto last = RunTask(e.AckBatch(0, "big", rest));
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, (std::vector<AckOutcome>{AckOutcome::kAcked, AckOutcome::kAcked}));
  auto stats = RunTask(e.Stats(0, "big"));
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->acked, 1000);
  EXPECT_EQ(stats->completed, 1000);
  EXPECT_EQ(stats->in_flight, 0);
}

TEST_P(EngineTest, ExhaustedExpiredLeaseIsNeverClaimedAndDiesByTheNextShortClaim) {
  Engine& e = *engine_;
  QueueSettings settings;
  settings.max_attempts = 1;
  ASSERT_TRUE(RunTask(e.Put(0, "once", settings)));
  std::vector<NewMessage> batch(3);
  for (int i = 0; i < 3; ++i) batch[i].payload = std::to_string(i);
  ASSERT_TRUE(RunTask(e.Produce(0, "once", std::move(batch))));
  auto first = RunTask(e.Claim(0, "once", ClaimOptions{.max = 1, .lease_ms = 100}));
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 1u);
  const std::string expired_id = (*first)[0].id;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (NowMs() <= (*first)[0].lease_expires_at && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(NowMs(), (*first)[0].lease_expires_at);
  // Full claims (max 1, one each) hand out the others, never the exhausted one.
  for (int i = 0; i < 2; ++i) {
    auto next = RunTask(e.Claim(0, "once", ClaimOptions{.max = 1}));
    ASSERT_TRUE(next);
    ASSERT_EQ(next->size(), 1u);
    EXPECT_NE((*next)[0].id, expired_id);
  }
  // A claim that comes back short moves it to the dead letters.
  auto none = RunTask(e.Claim(0, "once", ClaimOptions{.max = 10}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto dead = RunTask(e.DeadLetters(0, "once", 10, ""));
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->items.size(), 1u);
  EXPECT_EQ(dead->items[0].id, expired_id);
  EXPECT_EQ(dead->items[0].last_error, "lease expired");
  auto stats = RunTask(e.Stats(0, "once"));
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->failed, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest, ::testing::ValuesIn(AllBackends()), store::testing::BackendName);

}  // namespace
}  // namespace basalt::queue
