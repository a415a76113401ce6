#pragma once
/// Round-trip savers on top of the Database interface (store/database.hpp).

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::store {

/// A Transaction that can queue statements instead of running them at once (PostgreSQL).
class DeferringTransaction : public Transaction {
 public:
  /// See ExecuteDeferred below.
  virtual Task<core::Result<void>> Defer(Statement statement) = 0;
  /// See ExecuteAndNotify below: queues `statement` and the notification as one statement.
  virtual Task<core::Result<void>> DeferNotifying(Statement statement, std::string channel) = 0;
};

/// Runs one statement of `tx` whose result the transaction does not need (an append, an outbox
/// event, a counter) without waiting for it where the backend can: PostgreSQL queues it and sends
/// it pipelined with the transaction's next statement, or with COMMIT when the Transact callback
/// ends, saving a round trip each. Its error is then reported by the next Execute, ExecuteScript
/// or Notify of `tx`, or by Transact itself; either way the whole transaction rolls back, exactly
/// as with Execute. Once the callback has returned an error the queued statements are dropped
/// unsent. Elsewhere (SQLite: no network) the statement runs at once and its error is returned
/// here.
Task<core::Result<void>> ExecuteDeferred(Transaction& tx, Statement statement);

/// Runs `statement`, whose result is one row of one column (an INSERT ... RETURNING x), and
/// queues a notification on `channel` whose payload is that value as text, delivered when `tx`
/// commits (as Transaction::Notify). With `defer`, as ExecuteDeferred: PostgreSQL queues the
/// statement and takes its value from the pipelined exchange that runs it (a create is then
/// BEGIN, INSERTs and COMMIT in one round trip). Elsewhere, or without `defer`, the statement runs
/// at once and its value is notified.
Task<core::Result<void>> ExecuteAndNotify(Transaction& tx, Statement statement, std::string channel, bool defer);

/// A Database that can commit without waiting for stable storage (see TransactRelaxed).
class RelaxingDatabase : public Database {
 public:
  /// See TransactRelaxed below.
  virtual Task<core::Result<void>> TransactRelaxed(unsigned shard, TransactionWork work) = 0;
};

/// Database::Transact for writes whose loss in an OS crash or power cut is harmless (a queue's
/// claims and acks: at-least-once delivery hands such a message out again). The commit is
/// atomic, isolated and visible as usual and survives a crash of Basalt itself (kill -9), but
/// Transact returns before it is flushed to stable storage: an OS crash or power cut may lose
/// the last relaxed transactions, never one committed by plain Transact after them (flushing
/// that one flushes everything before it) and never part of a transaction. SQLite: a group of
/// only relaxed writes commits with synchronous=NORMAL (no fsync of the WAL); PostgreSQL: SET
/// LOCAL synchronous_commit = off. Elsewhere it is Transact.
Task<core::Result<void>> TransactRelaxed(Database& db, unsigned shard, TransactionWork work);

/// Text to put right after a table name in FROM so that the query uses `index`: " INDEXED BY
/// \"<index>\"" on SQLite, whose planner has no statistics and may otherwise pick an index that
/// needs a full sort (the queue's claim); "" on PostgreSQL (its planner has them). The query must
/// be able to use the index (SQLite refuses to prepare it otherwise).
std::string UseIndex(const Dialect& dialect, std::string_view index);

}  // namespace basalt::store
