/// SQLite backend: read connections per shard, one writer thread with group commit.
///
/// Group commit, step by step (all on the writer thread unless noted):
///  1. Transact (caller's thread) captures the caller's executor with outstanding work tracked,
///     pushes {work, resume} on a mutex-protected queue and suspends (async_initiate).
///  2. The writer takes up to max_group queued writes, runs BEGIN IMMEDIATE, then for each:
///     SAVEPOINT s; drive its `work` coroutine to completion on a private io_context; if it
///     succeeded and left no deferred foreign-key violation, RELEASE s, else ROLLBACK TO s;
///     RELEASE s. One failure therefore undoes only its own writes.
///  3. One COMMIT (synchronous=FULL: one fsync of the WAL for the whole group). Only now is any
///     result delivered: `resume` posts the handler to the caller's own executor. If COMMIT fails
///     every write of the group gets an error; if SQLite rolled the whole transaction back in the
///     middle (I/O error, disk full), the writes already run get an error and the rest start a
///     new transaction.
///  Relaxed writes (TransactRelaxed): a group made only of them commits with synchronous=NORMAL
///  (no fsync of the WAL); any other write in the group makes it FULL, and that fsync covers the
///  earlier relaxed commits too (the WAL is one file, synced whole).

#include <pthread.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "obs/log.hpp"
#include "store/deferred.hpp"
#include "store/notify_hub.hpp"
#include "store/sqlite.hpp"
#include "store/sqlite/connection.hpp"

namespace basalt::store {
namespace sqlite {
namespace {

namespace asio = boost::asio;
using Work = TransactionWork;

constexpr std::size_t kStatementCacheSize = 256;

class SqliteDialect final : public Dialect {
 public:
  std::string Placeholder(int n) const override { return "?" + std::to_string(n); }
  std::string_view Name() const override { return "sqlite"; }
};

/// A notification queued by Transaction::Notify, delivered after its group's COMMIT.
struct Note {
  std::string channel;
  std::string payload;
};

/// The Transaction handed to one `work`: runs statements on the writer connection, synchronously.
class WriterTransaction final : public Transaction {
 public:
  WriterTransaction(Connection& connection, std::vector<Note>& notes) : connection_(connection), notes_(notes) {}

  Task<core::Result<void>> Notify(std::string channel, std::string payload) override {
    if (!active_) co_return NotActive();
    if (!ValidChannel(channel)) co_return core::Fail(core::ErrorCode::kInternal, "database error", "Notify: bad channel");
    notes_.push_back(Note{std::move(channel), std::move(payload)});
    co_return core::Result<void>{};
  }

  Task<core::Result<ResultSet>> Execute(Statement statement) override {
    if (!active_) co_return NotActive();
    co_return connection_.Run(statement);
  }

  Task<core::Result<void>> ExecuteScript(std::string script) override {
    if (!active_) co_return NotActive();
    co_return connection_.Exec(script);
  }

  /// Called when `work` has finished: later calls (a leaked reference) fail instead of writing.
  void End() { active_ = false; }

 private:
  static std::unexpected<core::Error> NotActive() {
    return core::Fail(core::ErrorCode::kInternal, "database error",
                      "Transaction used outside its Transact callback");
  }
  Connection& connection_;
  std::vector<Note>& notes_;
  bool active_ = true;
};

/// One queued Transact call.
struct PendingWrite {
  Work work;
  /// Delivers the result on the caller's executor (posts; never runs the caller inline).
  std::move_only_function<void(core::Result<void>)> resume;
  core::Result<void> result;
  std::vector<Note> notes;  ///< Queued by Notify; delivered only once the group has committed.
  bool relaxed = false;     ///< TransactRelaxed: this write alone needs no fsync.
};

class SqliteDatabase final : public RelaxingDatabase {
 public:
  SqliteDatabase(SqliteOptions options, std::unique_ptr<Connection> writer,
                 std::vector<std::unique_ptr<Connection>> readers, std::unique_ptr<Connection> checkpointer)
      : options_(std::move(options)),
        writer_(std::move(writer)),
        readers_(std::move(readers)),
        checkpointer_(std::move(checkpointer)) {
    writer_->GuardTransactionControl();
    writer_thread_ = std::thread([this] { WriterLoop(); });
    checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  }

  ~SqliteDatabase() override { Close(); }

  const Dialect& dialect() const override { return dialect_; }

  Task<core::Result<ResultSet>> Query(unsigned shard, Statement statement) override {
    if (closed_.load(std::memory_order_acquire)) co_return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
    if (shard >= readers_.size()) {
      co_return core::Fail(core::ErrorCode::kInternal, "database error",
                           "Query: shard " + std::to_string(shard) + " >= " + std::to_string(readers_.size()));
    }
    if (obs::LogEnabled(obs::LogLevel::kTrace)) {
      // Statement text only (values are bound, never logged): lets tests count queries.
      obs::Log(obs::LogLevel::kTrace, "store query", {{"sql", std::string_view(statement.sql)}});
    }
    co_return readers_[shard]->Run(statement);
  }

  Task<core::Result<void>> Transact(unsigned shard, Work work) override {
    co_return co_await Write(shard, std::move(work), false);
  }

  Task<core::Result<void>> TransactRelaxed(unsigned shard, Work work) override {
    co_return co_await Write(shard, std::move(work), true);
  }

  std::unique_ptr<Subscription> Listen(std::string channel, NotificationCallback on_notify) override {
    return hub_.Add(std::move(channel), std::move(on_notify));
  }

  Task<core::Result<void>> Write(unsigned shard, Work work, bool relaxed) {
    (void)shard;  // One writer for every shard on SQLite.
    if (!work) co_return core::Fail(core::ErrorCode::kInternal, "database error", "Transact: empty work");
    auto executor = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(core::Result<void>)>(
        [this, executor, relaxed](auto handler, Work w) mutable {
          // Tracked: the caller's io_context must not run out of work while we hold its handler.
          asio::any_io_executor tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked);
          PendingWrite pending;
          pending.work = std::move(w);
          pending.relaxed = relaxed;
          pending.resume = [handler = std::move(handler), tracked = std::move(tracked)](core::Result<void> r) mutable {
            asio::post(tracked, [handler = std::move(handler), r = std::move(r)]() mutable {
              std::move(handler)(std::move(r));
            });
          };
          Enqueue(std::move(pending));
        },
        asio::use_awaitable, std::move(work));
  }

  void Close() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;  // Enqueue refuses from now on; the writer drains what is queued.
    }
    wake_.notify_all();
    // A concurrent second Close waits here until the first has finished.
    std::call_once(close_once_, [this] {
      if (writer_thread_.joinable()) writer_thread_.join();
      {
        std::lock_guard lock(checkpoint_mutex_);
        checkpoint_stop_ = true;
      }
      checkpoint_wake_.notify_all();
      if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
      checkpointer_->Close();
      closed_.store(true, std::memory_order_release);
      for (auto& reader : readers_) reader->Close();
      writer_->Close();  // Last connection: SQLite checkpoints and removes the WAL.
      obs::Log(obs::LogLevel::kInfo, "store closed", {{"backend", std::string_view("sqlite")}});
    });
  }

 private:
  void Enqueue(PendingWrite pending) {
    {
      std::lock_guard lock(mutex_);
      if (!closing_) {
        queue_.push_back(std::move(pending));
        wake_.notify_one();
        return;
      }
    }
    pending.resume(core::Fail(core::ErrorCode::kUnavailable, "database is closing"));
  }

  void WriterLoop() {
    pthread_setname_np(pthread_self(), "basalt-writer");
    std::vector<PendingWrite> group;
    group.reserve(options_.max_group);
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;  // Closing and drained.
        while (!queue_.empty() && group.size() < options_.max_group) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      RunGroup(group);
      group.clear();
    }
  }

  void RunGroup(std::vector<PendingWrite>& group) {
    std::size_t next = 0;
    while (next < group.size()) {
      const std::size_t first = next;
      // FULL unless every write still to run is relaxed (the pragma only changes outside a transaction).
      const bool full = std::any_of(group.begin() + static_cast<std::ptrdiff_t>(first), group.end(),
                                    [](const PendingWrite& w) { return !w.relaxed; });
      if (full != synchronous_full_) {
        if (auto set = writer_->Control(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"); !set) {
          LogFailure("synchronous", set.error());
          for (std::size_t i = first; i < group.size(); ++i) group[i].result = std::unexpected(set.error());
          Deliver(group, first, group.size());
          return;
        }
        synchronous_full_ = full;
      }
      if (auto begin = writer_->Control("BEGIN IMMEDIATE"); !begin) {
        LogFailure("begin", begin.error());
        for (std::size_t i = first; i < group.size(); ++i) group[i].result = std::unexpected(begin.error());
        Deliver(group, first, group.size());
        return;
      }
      bool aborted = false;
      for (; next < group.size(); ++next) {
        RunOne(group[next]);
        if (writer_->Autocommit()) {
          // SQLite rolled the whole transaction back (I/O error, disk full...): the writes run so
          // far are lost; the rest get a new transaction.
          ++next;
          aborted = true;
          for (std::size_t i = first; i < next; ++i) {
            if (group[i].result) {
              group[i].result = core::Fail(core::ErrorCode::kInternal, "database error",
                                           "group transaction rolled back by SQLite");
            }
          }
          break;
        }
      }
      if (!aborted) {
        if (auto commit = writer_->Control("COMMIT"); !commit) {
          LogFailure("commit", commit.error());
          if (!writer_->Autocommit()) (void)writer_->Control("ROLLBACK");
          for (std::size_t i = first; i < next; ++i) {
            if (group[i].result) group[i].result = std::unexpected(commit.error());
          }
        } else {
          commits_since_checkpoint_.fetch_add(1, std::memory_order_relaxed);
          if (options_.on_group_commit) options_.on_group_commit(next - first);
          for (std::size_t i = first; i < next; ++i) {
            if (!group[i].result) continue;
            for (const Note& note : group[i].notes) hub_.Deliver(note.channel, note.payload);
          }
        }
      }
      Deliver(group, first, next);
    }
  }

  /// Runs one write inside its savepoint; leaves its result in `pending.result`.
  void RunOne(PendingWrite& pending) {
    if (auto savepoint = writer_->Control("SAVEPOINT s"); !savepoint) {
      pending.result = std::unexpected(savepoint.error());
      return;
    }
    WriterTransaction transaction(*writer_, pending.notes);
    core::Result<void> result = RunWork(pending.work, transaction);
    transaction.End();
    if (result && writer_->DeferredForeignKeyViolations() > 0) {
      // Deferred constraints are only checked at COMMIT, which would fail the whole group:
      // check them per write instead (the counter is restored by ROLLBACK TO).
      result = core::Fail(core::ErrorCode::kValidation, "a referenced record does not exist or is still referenced",
                          "deferred foreign key violation");
    }
    if (result) {
      if (auto release = writer_->Control("RELEASE s"); !release) result = std::unexpected(release.error());
    }
    if (!result) {
      pending.notes.clear();
      (void)writer_->Control("ROLLBACK TO s");
      (void)writer_->Control("RELEASE s");
    }
    pending.result = std::move(result);
  }

  /// Drives `work` to completion on the writer thread's private io_context. Transaction calls
  /// complete synchronously, so run() returns once the coroutine has finished.
  core::Result<void> RunWork(Work& work, Transaction& transaction) {
    bool done = false;
    core::Result<void> out;
    try {
      asio::co_spawn(io_, work(transaction), [&](std::exception_ptr error, core::Result<void> result) {
        done = true;
        if (!error) {
          out = std::move(result);
          return;
        }
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          out = core::Fail(core::ErrorCode::kInternal, "database error", std::string("transaction threw: ") + e.what());
        } catch (...) {
          out = core::Fail(core::ErrorCode::kInternal, "database error", "transaction threw a non-exception");
        }
      });
      io_.restart();
      io_.run();
    } catch (const std::exception& e) {
      return core::Fail(core::ErrorCode::kInternal, "database error", std::string("transaction threw: ") + e.what());
    } catch (...) {
      return core::Fail(core::ErrorCode::kInternal, "database error", "transaction threw a non-exception");
    }
    if (!done) {
      return core::Fail(core::ErrorCode::kInternal, "database error",
                        "transaction work did not finish: it may only await Transaction calls");
    }
    return out;
  }

  static void Deliver(std::vector<PendingWrite>& group, std::size_t first, std::size_t last) {
    for (std::size_t i = first; i < last; ++i) group[i].resume(std::move(group[i].result));
  }

  static void LogFailure(std::string_view step, const core::Error& error) {
    obs::Log(obs::LogLevel::kError, "store group commit failed",
             {{"backend", std::string_view("sqlite")}, {"step", step}, {"cause", std::string_view(error.cause)}});
  }

  SqliteOptions options_;
  SqliteDialect dialect_;
  NotifyHub hub_;
  std::unique_ptr<Connection> writer_;                 ///< Writer thread only (after start).
  std::vector<std::unique_ptr<Connection>> readers_;  ///< readers_[shard]: that I/O thread only.
  asio::io_context io_{1};                             ///< Writer thread only: drives `work`.
  bool synchronous_full_ = true;                       ///< Writer thread only: the writer's PRAGMA synchronous.

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PendingWrite> queue_;  ///< Guarded by mutex_.
  bool closing_ = false;            ///< Guarded by mutex_.
  std::atomic<bool> closed_{false};
  std::once_flag close_once_;
  std::thread writer_thread_;

  // WAL checkpoints run here, never inside a group's COMMIT (wal_autocheckpoint=0 on the writer).
  // PASSIVE does not block the writer or readers; it copies what it can and the WAL restarts
  // from its beginning once a checkpoint has caught up.
  void CheckpointLoop() {
    std::unique_lock lock(checkpoint_mutex_);
    while (!checkpoint_stop_) {
      checkpoint_wake_.wait_for(lock, kCheckpointInterval);
      if (checkpoint_stop_) break;
      if (commits_since_checkpoint_.exchange(0, std::memory_order_relaxed) == 0) continue;
      lock.unlock();
      if (auto r = checkpointer_->Control("PRAGMA wal_checkpoint(PASSIVE)"); !r) LogFailure("checkpoint", r.error());
      lock.lock();
    }
  }

  static constexpr std::chrono::milliseconds kCheckpointInterval{200};
  std::unique_ptr<Connection> checkpointer_;
  std::thread checkpoint_thread_;
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_wake_;
  bool checkpoint_stop_ = false;  ///< Guarded by checkpoint_mutex_.
  std::atomic<std::uint64_t> commits_since_checkpoint_{0};
};

}  // namespace
}  // namespace sqlite

core::Result<std::unique_ptr<Database>> OpenSqlite(const SqliteOptions& options) {
  using sqlite::Connection;
  if (options.shards == 0) return core::Fail(core::ErrorCode::kValidation, "store: shards must be at least 1");
  if (options.max_group == 0) return core::Fail(core::ErrorCode::kValidation, "store: max_group must be at least 1");
  const int busy_ms = static_cast<int>(options.busy_timeout.count());
  auto writer = Connection::Open(options.path, Connection::Mode::kWriter, busy_ms, sqlite::kStatementCacheSize);
  if (!writer) return std::unexpected(std::move(writer.error()));
  std::vector<std::unique_ptr<Connection>> readers;
  readers.reserve(options.shards);
  for (unsigned i = 0; i < options.shards; ++i) {
    auto reader = Connection::Open(options.path, Connection::Mode::kReadOnly, busy_ms, sqlite::kStatementCacheSize);
    if (!reader) return std::unexpected(std::move(reader.error()));
    readers.push_back(std::move(*reader));
  }
  obs::Log(obs::LogLevel::kInfo, "store opened",
           {{"backend", std::string_view("sqlite")},
            {"path", std::string_view(options.path)},
            {"shards", static_cast<std::int64_t>(options.shards)},
            {"max_group", static_cast<std::int64_t>(options.max_group)}});
  // A second read-write connection, used only for WAL checkpoints (see CheckpointLoop).
  auto checkpointer = Connection::Open(options.path, Connection::Mode::kWriter, busy_ms, 1);
  if (!checkpointer) return std::unexpected(std::move(checkpointer.error()));
  return std::make_unique<sqlite::SqliteDatabase>(options, std::move(*writer), std::move(readers),
                                                  std::move(*checkpointer));
}

}  // namespace basalt::store
