/// PostgreSQL backend: one connection pool per shard, libpq driven by Asio.
///
/// A call, step by step (all on the caller's executor; nothing blocks the I/O thread):
///  1. Query/Transact registers itself as in flight (Close waits for those); Query, and a
///     transaction at its first round trip, takes a connection from pool[shard]: an idle healthy
///     one, else a new one (PQconnectStart + PQconnectPoll with async waits) while the pool has
///     fewer than pool_size, else it suspends until Release hands one over (a queue of waiters,
///     each resumed by a post to its own executor: no polling).
///  2. The connection's socket is wrapped in a stream_descriptor on the caller's executor (Bind).
///     Statements are prepared once per connection and executed by name; the first use pipelines
///     Parse and Execute in one round trip. Transact sends BEGIN lazily, pipelined in front of the
///     transaction's first statement, and COMMIT pipelined behind the statements `work` deferred
///     (store::ExecuteDeferred), else alone (or ROLLBACK on error or exception). A transaction
///     takes its connection with its first round trip: one whose statements were all deferred
///     commits in a group with others of its shard (GroupCommit: one BEGIN, one COMMIT).
///  3. Release unbinds the descriptor and returns the connection (or discards it: broken, inside a
///     transaction, older than max_lifetime), handing it to the oldest waiter if any.
///  4. After a successful COMMIT the transaction's notifications are published: to this
///     process's listeners at once, to other processes through the Listener's coalesced NOTIFY.
/// Pools take a mutex only for the hand-over: a shard is normally used by its own I/O thread, but
/// any thread may use any shard (the conformance suite writes to shard 0 from eight threads).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "obs/log.hpp"
#include "store/deferred.hpp"
#include "store/leader_queue.hpp"
#include "store/postgres.hpp"
#include "store/postgres/connection.hpp"
#include "store/postgres/listener.hpp"

namespace basalt::store {
namespace postgres {
namespace {

namespace asio = boost::asio;
using Work = TransactionWork;

/// Key of pg_advisory_xact_lock taken by every migration transaction ("basalt_m" in ASCII).
constexpr std::int64_t kMigrationLockKey = 0x626173616c745f6d;
/// How long Close waits for in-flight calls before closing the connections anyway.
constexpr std::chrono::seconds kCloseTimeout{30};

class PostgresDialect final : public Dialect {
 public:
  std::string Placeholder(int n) const override { return "$" + std::to_string(n); }
  std::string_view Name() const override { return "postgres"; }
  std::string MigrationLockStatement() const override {
    return "SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
  }
  std::string_view SkipLockedClause() const override { return " FOR UPDATE SKIP LOCKED"; }
  std::string RowLockClause(std::string_view alias) const override {
    return " FOR UPDATE OF \"" + std::string(alias) + "\"";
  }
};

/// The connections of one shard.
class Pool {
 public:
  explicit Pool(const PostgresOptions& options) : options_(options) {}
  ~Pool() { CloseAll(); }

  /// A connection bound to the calling coroutine's executor, or kUnavailable (closed, cannot
  /// connect). Waits asynchronously while all pool_size connections are in use.
  Task<core::Result<std::unique_ptr<Connection>>> Acquire() {
    auto executor = co_await asio::this_coro::executor;
    for (;;) {
      std::unique_ptr<Connection> connection;
      std::unique_ptr<Connection> discarded;
      bool create = false;
      {
        std::lock_guard lock(mutex_);
        if (closed_) co_return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
        while (!connection && !idle_.empty()) {
          auto candidate = std::move(idle_.back());
          idle_.pop_back();
          if (candidate->Healthy()) {
            connection = std::move(candidate);
          } else {
            --open_;  // A killed backend, a server restart: replace it.
            discarded = std::move(candidate);
          }
        }
        if (!connection && open_ < options_.pool_size) {
          ++open_;
          create = true;
        }
      }
      discarded.reset();
      if (connection) {
        connection->Bind(executor);
        co_return connection;
      }
      if (create) {
        auto made = co_await Connection::Connect(options_.url, executor, options_.connect_timeout);
        if (!made) {
          Discarded();
          obs::Log(obs::LogLevel::kWarn, "store connect failed",
                   {{"backend", std::string_view("postgres")}, {"cause", std::string_view(made.error().cause)}});
          co_return std::unexpected(std::move(made.error()));
        }
        (*made)->Bind(executor);
        co_return std::move(*made);
      }
      auto handed = co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::unique_ptr<Connection>)>(
          [this, executor](auto handler) { Wait(std::move(handler), executor); }, asio::use_awaitable);
      if (handed) {
        handed->Bind(executor);
        co_return std::move(handed);
      }
      // Null: a slot was freed (a connection discarded) or the pool closed; look again.
    }
  }

  /// Returns a connection taken by Acquire: to the oldest waiter, else to the idle list, unless
  /// it is broken, still in a transaction, or older than max_lifetime (then it is closed).
  void Release(std::unique_ptr<Connection> connection) {
    connection->Unbind();
    const bool keep = connection->Healthy() &&
                      std::chrono::steady_clock::now() - connection->created() < options_.max_lifetime;
    Waiter waiter;
    bool discard = !keep;
    {
      std::lock_guard lock(mutex_);
      discard = discard || closed_;
      if (!waiters_.empty()) {
        waiter = std::move(waiters_.front());
        waiters_.pop_front();
      }
      if (discard) {
        --open_;
      } else if (!waiter) {
        idle_.push_back(std::move(connection));
        return;
      }
    }
    if (discard) {
      connection.reset();
      if (waiter) waiter(nullptr);  // It may open a replacement.
      return;
    }
    waiter(std::move(connection));
  }

  /// Closes idle connections and refuses new Acquire calls; waiters retry and fail.
  void CloseAll() {
    std::vector<std::unique_ptr<Connection>> idle;
    std::deque<Waiter> waiters;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      open_ -= static_cast<unsigned>(idle_.size());
      idle.swap(idle_);
      waiters.swap(waiters_);
    }
    idle.clear();
    for (auto& waiter : waiters) waiter(nullptr);
  }

 private:
  /// Resumes one suspended Acquire: posts to the waiter's executor (never runs it inline).
  using Waiter = std::move_only_function<void(std::unique_ptr<Connection>)>;

  template <class Handler>
  void Wait(Handler handler, const asio::any_io_executor& executor) {
    // Tracked: the caller's io_context must not run out of work while we hold its handler.
    asio::any_io_executor tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked);
    Waiter waiter = [handler = std::move(handler), tracked = std::move(tracked)](
                        std::unique_ptr<Connection> connection) mutable {
      asio::post(tracked, [handler = std::move(handler), connection = std::move(connection)]() mutable {
        std::move(handler)(std::move(connection));
      });
    };
    {
      std::lock_guard lock(mutex_);
      // Re-check under the lock: the pool may have changed since Acquire looked.
      if (!closed_ && idle_.empty() && open_ >= options_.pool_size) {
        waiters_.push_back(std::move(waiter));
        return;
      }
    }
    waiter(nullptr);
  }

  /// A reserved slot whose connect failed: free it and let one waiter try.
  void Discarded() {
    Waiter waiter;
    {
      std::lock_guard lock(mutex_);
      --open_;
      if (!waiters_.empty()) {
        waiter = std::move(waiters_.front());
        waiters_.pop_front();
      }
    }
    if (waiter) waiter(nullptr);
  }

  const PostgresOptions& options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;  ///< Guarded by mutex_; most recently used last.
  std::deque<Waiter> waiters_;                     ///< Guarded by mutex_; oldest first.
  unsigned open_ = 0;                              ///< Guarded by mutex_: idle + in use + connecting.
  bool closed_ = false;                            ///< Guarded by mutex_.
};

/// The Transaction handed to one `work`: BEGIN is sent with the first statement; statements of
/// ExecuteDeferred wait in `deferred_` and go out pipelined in front of the next statement, or in
/// front of COMMIT (Commit), so that a create (INSERT + outbox INSERT) costs one round trip.
/// Notifications are not sent inside the transaction (a NOTIFY makes every notifying COMMIT of the
/// cluster queue on one global lock): they are collected in `notes_` and published by
/// PostgresDatabase once COMMIT has succeeded.
class PgTransaction final : public DeferringTransaction {
 public:
  /// The connection is taken from `pool` by the first statement that needs a round trip: a
  /// transaction whose statements are all deferred may commit in a group (PostgresDatabase::Run).
  explicit PgTransaction(Pool& pool) : pool_(pool) {}

  Task<core::Result<ResultSet>> Execute(Statement statement) override {
    if (!active_) co_return NotActive();
    if (auto connected = co_await Connect(); !connected) co_return std::unexpected(std::move(connected.error()));
    std::vector<const Statement*> batch = Queued();
    batch.push_back(&statement);
    std::vector<ResultSet> each;
    auto result = co_await connection_->ExecuteMany(batch, !begun_, /*commit_last=*/false, Harvesting() ? &each : nullptr);
    if (result) Harvest(each, 0);
    ClearDeferred();
    Note(result);
    co_return result;
  }

  Task<core::Result<void>> Defer(Statement statement) override {
    if (!active_) co_return NotActive();
    deferred_.push_back(std::move(statement));
    notify_on_.emplace_back();
    co_return core::Result<void>{};
  }

  Task<core::Result<void>> ExecuteScript(std::string script) override {
    if (!active_) co_return NotActive();
    if (auto connected = co_await Connect(); !connected) co_return connected;
    if (!begun_ || !deferred_.empty()) {
      // BEGIN and the deferred statements first (the script goes by the simple protocol).
      std::vector<const Statement*> batch = Queued();
      std::vector<ResultSet> each;
      auto flushed =
          co_await connection_->ExecuteMany(batch, !begun_, /*commit_last=*/false, Harvesting() ? &each : nullptr);
      if (flushed) Harvest(each, 0);
      ClearDeferred();
      Note(flushed);
      if (!flushed) co_return std::unexpected(std::move(flushed.error()));
    }
    auto result = co_await connection_->Script(script);
    if (!result && !first_error_) first_error_ = result.error();
    co_return result;
  }

  /// `statement` (one row, one column) queued like Defer; once it has run, its value (as text)
  /// becomes a notification on `channel`, published after the commit like Notify's.
  Task<core::Result<void>> DeferNotifying(Statement statement, std::string channel) override {
    if (!ValidChannel(channel)) co_return core::Fail(core::ErrorCode::kInternal, "database error", "Notify: bad channel");
    if (!active_) co_return NotActive();
    deferred_.push_back(std::move(statement));
    notify_on_.push_back(std::move(channel));
    co_return core::Result<void>{};
  }

  /// Remembers the notification; PostgresDatabase publishes it once COMMIT succeeded (in this
  /// process at once, to other processes by NOTIFY from the listening connection).
  Task<core::Result<void>> Notify(std::string channel, std::string payload) override {
    if (!ValidChannel(channel)) co_return core::Fail(core::ErrorCode::kInternal, "database error", "Notify: bad channel");
    if (!active_) co_return NotActive();
    Remember(std::move(channel), std::move(payload));
    co_return core::Result<void>{};
  }

  /// After `work` succeeded: sends the deferred statements and COMMIT in one round trip (just
  /// COMMIT when nothing is deferred; nothing when nothing was ever sent). An error of any of
  /// them, COMMIT's own included, is returned; the transaction is then not committed (the caller
  /// rolls back what is still open).
  Task<core::Result<void>> Commit() {
    if (!begun_ && deferred_.empty()) co_return core::Result<void>{};
    if (auto connected = co_await Connect(); !connected) co_return connected;
    std::vector<const Statement*> batch = Queued();
    std::vector<ResultSet> each;
    auto committed =
        co_await connection_->ExecuteMany(batch, !begun_, /*commit_last=*/true, Harvesting() ? &each : nullptr);
    if (committed) Harvest(each, 0);
    ClearDeferred();
    if (!committed) co_return std::unexpected(std::move(committed.error()));
    co_return core::Result<void>{};
  }

  /// Called when `work` has finished: later calls (a leaked reference) fail instead of writing.
  void End() { active_ = false; }
  /// Drops deferred statements not sent yet (`work` failed: they must never run).
  void DropDeferred() { ClearDeferred(); }
  /// True once BEGIN has been sent.
  bool begun() const { return begun_; }
  /// The connection taken so far (null while every statement is still deferred).
  Connection* connection() const { return connection_.get(); }
  std::unique_ptr<Connection> TakeConnection() { return std::move(connection_); }
  /// The deferred statements not sent yet, in order (for a group commit, which sends them
  /// together with other transactions' and then calls Harvest on its share of the results).
  std::vector<const Statement*> Queued() const {
    std::vector<const Statement*> batch;
    batch.reserve(deferred_.size() + 1);
    for (const Statement& statement : deferred_) batch.push_back(&statement);
    return batch;
  }
  std::size_t deferred_count() const { return deferred_.size(); }
  /// True when a queued statement's value is to be notified (then every result is needed).
  bool Harvesting() const {
    return std::any_of(notify_on_.begin(), notify_on_.end(), [](const std::string& c) { return !c.empty(); });
  }
  /// Turns the values of the DeferNotifying statements among `each` (one result per statement
  /// sent; this transaction's deferred ones start at `first`) into notifications.
  void Harvest(const std::vector<ResultSet>& each, std::size_t first) {
    for (std::size_t i = 0; i < notify_on_.size() && first + i < each.size(); ++i) {
      if (notify_on_[i].empty()) continue;
      std::string payload;
      const ResultSet& rs = each[first + i];
      if (!rs.rows.empty() && !rs.rows[0].empty()) {
        const Value& v = rs.rows[0][0];
        if (const auto* n = std::get_if<std::int64_t>(&v)) payload = std::to_string(*n);
        else if (const auto* text = std::get_if<std::string>(&v)) payload = *text;
      }
      Remember(notify_on_[i], std::move(payload));
    }
  }
  /// The first statement error `work` saw (it may have ignored it).
  const std::optional<core::Error>& first_error() const { return first_error_; }
  /// The notifications to publish once the transaction has committed (distinct, in order).
  std::vector<Notification>& notes() { return notes_; }

 private:
  static std::unexpected<core::Error> NotActive() {
    return core::Fail(core::ErrorCode::kInternal, "database error",
                      "Transaction used outside its Transact callback");
  }
  /// Takes a connection from the pool unless the transaction has one.
  Task<core::Result<void>> Connect() {
    if (connection_) co_return core::Result<void>{};
    auto acquired = co_await pool_.Acquire();
    if (!acquired) {
      if (!first_error_) first_error_ = acquired.error();
      co_return std::unexpected(std::move(acquired.error()));
    }
    connection_ = std::move(*acquired);
    co_return core::Result<void>{};
  }
  void ClearDeferred() {
    deferred_.clear();
    notify_on_.clear();
  }
  void Remember(std::string channel, std::string payload) {
    Notification note{std::move(channel), std::move(payload)};
    if (std::find(notes_.begin(), notes_.end(), note) == notes_.end()) notes_.push_back(std::move(note));
  }
  template <class T>
  void Note(const core::Result<T>& result) {
    begun_ = begun_ || (connection_ && connection_->InTransaction());
    if (!result && !first_error_) first_error_ = result.error();
  }

  Pool& pool_;
  std::unique_ptr<Connection> connection_;  ///< Taken by Connect; PostgresDatabase::Run returns it.
  bool active_ = true;
  bool begun_ = false;
  std::vector<Statement> deferred_;
  std::vector<std::string> notify_on_;  ///< Per deferred_ entry: the channel to notify its value on, or "".
  std::vector<Notification> notes_;
  std::optional<core::Error> first_error_;
};

/// Group commit of one shard (see PostgresDatabase::GroupCommit): at most pool_size groups in
/// flight; a queued transaction is woken with its outcome or its turn to lead the next group.
struct GroupOutcome {
  bool alone = false;          ///< The group failed on a statement: commit alone.
  core::Result<void> result;   ///< Final unless `alone`.
};
using CommitGroup = LeaderQueue<PgTransaction*, GroupOutcome>;
/// Transactions in one group at most (one BEGIN, their statements, one COMMIT).
constexpr std::size_t kMaxGroupMembers = 64;

class PostgresDatabase final : public RelaxingDatabase {
 public:
  explicit PostgresDatabase(PostgresOptions options)
      : options_(std::move(options)), listener_(options_.url, hub_) {
    pools_.reserve(options_.shards);
    for (unsigned i = 0; i < options_.shards; ++i) {
      pools_.push_back(std::make_unique<Pool>(options_));
      groups_.push_back(std::make_unique<CommitGroup>(options_.pool_size));
    }
  }

  ~PostgresDatabase() override { Close(); }

  const Dialect& dialect() const override { return dialect_; }

  std::unique_ptr<Subscription> Listen(std::string channel, NotificationCallback on_notify) override {
    auto subscription = hub_.Add(std::move(channel), std::move(on_notify));
    listener_.Refresh();
    return subscription;
  }

  Task<core::Result<ResultSet>> Query(unsigned shard, Statement statement) override {
    InFlight in_flight(*this);
    if (!in_flight) co_return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
    if (shard >= pools_.size()) co_return BadShard("Query", shard);
    Pool& pool = *pools_[shard];
    if (obs::LogEnabled(obs::LogLevel::kTrace)) {
      // Statement text only (values are bound, never logged): lets tests count queries.
      obs::Log(obs::LogLevel::kTrace, "store query", {{"sql", std::string_view(statement.sql)}});
    }
    // A read is safe to retry once on a fresh connection when the connection was lost (the
    // health check on Acquire cannot see a backend that died after it looked).
    for (int attempt = 0;; ++attempt) {
      auto connection = co_await pool.Acquire();
      if (!connection) co_return std::unexpected(std::move(connection.error()));
      auto result = co_await (*connection)->Execute(statement, false);
      pool.Release(std::move(*connection));
      if (!result && result.error().code == core::ErrorCode::kUnavailable && attempt == 0) continue;
      co_return result;
    }
  }

  Task<core::Result<void>> Transact(unsigned shard, Work work) override {
    co_return co_await Run(shard, std::move(work), false);
  }

  /// SET LOCAL synchronous_commit = off, pipelined with the first statement: COMMIT returns before
  /// the WAL is flushed (a later synchronous commit flushes it, this one included).
  Task<core::Result<void>> TransactRelaxed(unsigned shard, Work work) override {
    co_return co_await Run(shard, std::move(work), true);
  }

  Task<core::Result<void>> Run(unsigned shard, Work work, bool relaxed) {
    InFlight in_flight(*this);
    if (!in_flight) co_return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
    if (shard >= pools_.size()) co_return BadShard("Transact", shard);
    if (!work) co_return core::Fail(core::ErrorCode::kInternal, "database error", "Transact: empty work");
    Pool& pool = *pools_[shard];
    PgTransaction transaction(pool);
    core::Result<void> result;
    std::string thrown;
    if (relaxed) {
      Statement relax{"SET LOCAL synchronous_commit TO off", {}};
      result = co_await transaction.Defer(std::move(relax));
    }
    try {
      if (result) result = co_await work(transaction);
    } catch (const std::exception& e) {
      thrown = std::string("transaction threw: ") + e.what();
    } catch (...) {
      thrown = "transaction threw a non-exception";
    }
    transaction.End();
    if (!thrown.empty()) result = core::Fail(core::ErrorCode::kInternal, "database error", std::move(thrown));
    if (result && transaction.connection() && transaction.connection()->TransactionFailed()) {
      // `work` ignored a failed statement: COMMIT would silently roll back. Report it.
      result = std::unexpected(transaction.first_error().value_or(
          core::Error::Make(core::ErrorCode::kInternal, "database error", "transaction failed")));
    }
    if (result) {
      std::optional<core::Result<void>> grouped;
      if (!relaxed && !transaction.connection() && transaction.deferred_count() > 0) {
        grouped = co_await GroupCommit(shard, transaction);
      }
      if (grouped) {
        result = std::move(*grouped);
      } else {
        // Deferred statements + COMMIT in one round trip; any failure among them is the result.
        auto committed = co_await transaction.Commit();
        if (!committed) result = std::unexpected(std::move(committed.error()));
      }
    } else {
      transaction.DropDeferred();
    }
    if (Connection* connection = transaction.connection()) {
      if (!result && connection->InTransaction()) (void)co_await connection->Command("ROLLBACK");
      pool.Release(transaction.TakeConnection());
    }
    if (result) Publish(transaction.notes());
    co_return result;
  }

  /// Group commit of transactions whose statements were all deferred (a record create: INSERT +
  /// outbox INSERT): nothing was sent, so nothing they did depends on the database yet, and many
  /// of them can commit as one transaction (one BEGIN, their statements in order, one COMMIT, one
  /// WAL flush, one round trip) instead of one each. While fewer than pool_size groups of the
  /// shard are in flight a transaction leads its own (alone, unless others queued meanwhile);
  /// otherwise it queues, and the next leader takes it along.
  ///
  /// Returns the result when the group settled it, or nullopt: commit alone. That is the case
  /// when the group failed on a statement or at COMMIT (the server rolled it back, so nothing of
  /// it stays): each member then commits alone and gets its own answer (a unique violation is
  /// the conflict of the one that caused it, not of its neighbours). A lost connection is not
  /// retried (the group may have committed): every member gets the error, as a lone transaction
  /// would.
  Task<std::optional<core::Result<void>>> GroupCommit(unsigned shard, PgTransaction& transaction) {
    CommitGroup& group = *groups_[shard];
    if (auto settled = co_await group.Enter(&transaction)) {
      if (settled->alone) co_return std::nullopt;
      co_return std::move(settled->result);
    }
    // This transaction leads: one group of it and whatever queued by now.
    std::vector<CommitGroup::Waiter> members = group.Take(kMaxGroupMembers - 1);
    std::optional<core::Result<void>> mine;
    try {
      mine = co_await RunGroup(*pools_[shard], transaction, members);
    } catch (const std::exception& e) {
      // Members not woken yet get the error too: none may wait forever, and the turn passes on.
      mine = core::Fail(core::ErrorCode::kInternal, "database error", std::string("group commit threw: ") + e.what());
      for (auto& member : members) member.wake(GroupOutcome{false, *mine});
    }
    group.Leave();
    co_return mine;
  }

  /// One group transaction for `leader` and `members`; wakes every member with its outcome (and
  /// then empties `members`) and returns the leader's (see GroupCommit).
  Task<std::optional<core::Result<void>>> RunGroup(Pool& pool, PgTransaction& leader,
                                                   std::vector<CommitGroup::Waiter>& members) {
    auto settle = [&members](bool alone, const core::Result<void>& result) {
      for (auto& member : members) member.wake(GroupOutcome{alone, result});
      members.clear();
    };
    auto acquired = co_await pool.Acquire();
    if (!acquired) {
      core::Result<void> failed = std::unexpected(std::move(acquired.error()));
      settle(false, failed);
      co_return failed;
    }
    std::unique_ptr<Connection> connection = std::move(*acquired);
    std::vector<PgTransaction*> all{&leader};
    for (auto& member : members) all.push_back(member.item);
    std::vector<const Statement*> batch;
    bool harvesting = false;
    for (PgTransaction* tx : all) {
      for (const Statement* statement : tx->Queued()) batch.push_back(statement);
      harvesting = harvesting || tx->Harvesting();
    }
    std::vector<ResultSet> each;
    core::Result<ResultSet> committed = core::Fail(core::ErrorCode::kInternal, "database error", "group commit threw");
    try {
      committed = co_await connection->ExecuteMany(batch, /*begin_first=*/true, /*commit_last=*/true,
                                                   harvesting ? &each : nullptr);
    } catch (const std::exception& e) {
      committed = core::Fail(core::ErrorCode::kUnavailable, "database error", std::string("group commit threw: ") + e.what());
    }
    if (committed) {
      std::size_t first = 0;
      for (PgTransaction* tx : all) {
        if (harvesting) tx->Harvest(each, first);
        first += tx->deferred_count();
        tx->DropDeferred();
      }
    } else if (connection->InTransaction()) {
      (void)co_await connection->Command("ROLLBACK");
    }
    pool.Release(std::move(connection));
    if (committed) {
      settle(false, core::Result<void>{});
      co_return core::Result<void>{};
    }
    core::Result<void> failed = std::unexpected(std::move(committed.error()));
    // A lone transaction's error is its own; a lost connection may have committed the group.
    if (members.empty() || failed.error().code == core::ErrorCode::kUnavailable) {
      settle(false, failed);
      co_return failed;
    }
    settle(true, core::Result<void>{});
    co_return std::nullopt;
  }

  /// A committed transaction's notifications: to this process's listeners at once, to other
  /// processes through the listening connection (coalesced NOTIFY, see listener.hpp).
  void Publish(std::vector<Notification>& notes) {
    if (notes.empty()) return;
    for (const auto& [channel, payload] : notes) hub_.Deliver(channel, payload);
    listener_.Publish(notes);
  }

  /// Waits (at most kCloseTimeout) for calls in flight, then closes every idle connection. Must
  /// not be called from an I/O thread that still has calls in flight (they could not finish).
  void Close() override {
    std::unique_lock lock(mutex_);
    closing_ = true;  // New calls fail from now on; calls already in flight finish.
    if (!idle_.wait_for(lock, kCloseTimeout, [&] { return in_flight_ == 0; })) {
      obs::Log(obs::LogLevel::kWarn, "store close timed out",
               {{"backend", std::string_view("postgres")}, {"in_flight", static_cast<std::int64_t>(in_flight_)}});
    }
    if (closed_) return;
    closed_ = true;
    lock.unlock();
    listener_.Stop();
    for (auto& pool : pools_) pool->CloseAll();
    obs::Log(obs::LogLevel::kInfo, "store closed", {{"backend", std::string_view("postgres")}});
  }

 private:
  /// Counts a call in flight for Close; false when the database is closing.
  class InFlight {
   public:
    explicit InFlight(PostgresDatabase& db) : db_(&db) {
      std::lock_guard lock(db.mutex_);
      if (db.closing_) {
        db_ = nullptr;
        return;
      }
      ++db.in_flight_;
    }
    ~InFlight() {
      if (!db_) return;
      std::lock_guard lock(db_->mutex_);
      if (--db_->in_flight_ == 0) db_->idle_.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    explicit operator bool() const { return db_ != nullptr; }

   private:
    PostgresDatabase* db_;
  };

  std::unexpected<core::Error> BadShard(std::string_view call, unsigned shard) const {
    return core::Fail(core::ErrorCode::kInternal, "database error",
                      std::string(call) + ": shard " + std::to_string(shard) + " >= " + std::to_string(pools_.size()));
  }

  PostgresOptions options_;
  PostgresDialect dialect_;
  std::vector<std::unique_ptr<Pool>> pools_;  ///< pools_[shard]; each refers to options_.
  std::vector<std::unique_ptr<CommitGroup>> groups_;  ///< groups_[shard].
  NotifyHub hub_;
  Listener listener_;  ///< After hub_ and options_: it refers to both.

  std::mutex mutex_;
  std::condition_variable idle_;  ///< Signalled when in_flight_ drops to 0.
  std::size_t in_flight_ = 0;     ///< Guarded by mutex_.
  bool closing_ = false;          ///< Guarded by mutex_.
  bool closed_ = false;           ///< Guarded by mutex_.
};

}  // namespace
}  // namespace postgres

core::Result<std::unique_ptr<Database>> OpenPostgres(const PostgresOptions& options) {
  if (options.shards == 0) return core::Fail(core::ErrorCode::kValidation, "store: shards must be at least 1");
  if (options.pool_size == 0) return core::Fail(core::ErrorCode::kValidation, "store: pool_size must be at least 1");
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &parse_error);
  if (!parsed) {
    std::string cause = parse_error ? parse_error : "out of memory";
    PQfreemem(parse_error);
    return core::Fail(core::ErrorCode::kValidation, "store: invalid PostgreSQL URL", std::move(cause));
  }
  PQconninfoFree(parsed);

  // The one blocking call of this backend: a start-up check with a bounded connect_timeout.
  const auto timeout_s = std::max<std::int64_t>(
      1, std::chrono::ceil<std::chrono::seconds>(options.connect_timeout).count());
  const std::string timeout_text = std::to_string(timeout_s);
  const char* keywords[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {options.url.c_str(), timeout_text.c_str(), nullptr};
  PGconn* probe = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!probe || PQstatus(probe) != CONNECTION_OK) {
    std::string cause = probe ? PQerrorMessage(probe) : "out of memory";
    while (!cause.empty() && cause.back() == '\n') cause.pop_back();
    PQfinish(probe);
    return core::Fail(core::ErrorCode::kUnavailable, "cannot connect to PostgreSQL", std::move(cause));
  }
  const int server_version = PQserverVersion(probe);
  PQfinish(probe);
  obs::Log(obs::LogLevel::kInfo, "store opened",
           {{"backend", std::string_view("postgres")},
            {"server_version", static_cast<std::int64_t>(server_version)},
            {"shards", static_cast<std::int64_t>(options.shards)},
            {"pool_size", static_cast<std::int64_t>(options.pool_size)}});
  return std::make_unique<postgres::PostgresDatabase>(options);
}

}  // namespace basalt::store
