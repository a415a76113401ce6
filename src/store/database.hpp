#pragma once
/// Database access: one interface, two backends (sqlite/ embedded, postgres/ scale-out).
/// Values are always bound parameters; SQL text comes from code and from identifiers that the
/// schema validated and quoted through the Dialect, never from a value.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/error.hpp"

namespace basalt::store {

template <class T>
using Task = boost::asio::awaitable<T>;

/// A SQL value. Booleans are stored as integers 0/1 on SQLite and as boolean on PostgreSQL;
/// both read back as kInteger-compatible values through AsBool().
struct Null {
  bool operator==(const Null&) const = default;
};
using Value = std::variant<Null, std::int64_t, double, std::string, bool>;

/// Reads a boolean column portably: a bool, or an integer (0 is false, anything else true).
/// Returns nullopt for NULL, doubles and strings.
inline std::optional<bool> AsBool(const Value& value) {
  if (const bool* b = std::get_if<bool>(&value)) return *b;
  if (const std::int64_t* i = std::get_if<std::int64_t>(&value)) return *i != 0;
  return std::nullopt;
}

/// Parameter placeholders and identifier quoting differ by backend; SQL builders ask the Dialect.
class Dialect {
 public:
  virtual ~Dialect() = default;
  /// Placeholder for the n-th parameter (1-based): "?n" on SQLite, "$n" on PostgreSQL.
  virtual std::string Placeholder(int n) const = 0;
  /// Double-quoted identifier with embedded quotes doubled (standard SQL; both backends use it).
  virtual std::string QuoteIdentifier(std::string_view name) const {
    std::string out;
    out.reserve(name.size() + 2);
    out += '"';
    for (char c : name) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
    return out;
  }
  /// Backend name for logs and metrics: "sqlite" or "postgres".
  virtual std::string_view Name() const = 0;
  /// Migration hook: a statement that, run first inside a transaction, serialises migration
  /// runners across processes until that transaction ends; empty when the backend needs none.
  /// SQLite returns "" (BEGIN IMMEDIATE on the single writer already serialises writers, also
  /// across processes). PostgreSQL should return "SELECT pg_advisory_xact_lock(<fixed key>)".
  virtual std::string MigrationLockStatement() const { return {}; }
  /// Row-locking suffix for a `SELECT ... LIMIT n` whose rows the same statement (or transaction)
  /// then updates, so that concurrent claimers skip each other's rows instead of waiting: ""
  /// on SQLite (one writer: nothing to skip), " FOR UPDATE SKIP LOCKED" on PostgreSQL.
  virtual std::string_view SkipLockedClause() const { return {}; }
  /// Row-locking suffix for a `SELECT` of rows the same transaction then changes, so that a
  /// concurrent writer of the same row waits for this transaction and then reads what it wrote
  /// (no lost update between the read and the write): "" on SQLite (one writer: transactions do
  /// not overlap), " FOR UPDATE OF \"<alias>\"" on PostgreSQL. `alias` is a trusted identifier.
  virtual std::string RowLockClause(std::string_view alias) const {
    (void)alias;
    return {};
  }
};

/// A statement with its bound parameters.
struct Statement {
  std::string sql;
  std::vector<Value> params;
};

/// Rows returned by a statement; column names in order.
struct ResultSet {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
  std::int64_t affected = 0;  ///< Rows changed by INSERT/UPDATE/DELETE.
};

/// Executes statements inside one transaction. Only valid during the Transact callback.
class Transaction {
 public:
  virtual ~Transaction() = default;
  /// Runs one statement. Constraint violations map to ErrorCode::kConflict (unique) or
  /// kValidation (foreign key, check); other failures to kInternal with the cause kept private.
  virtual Task<core::Result<ResultSet>> Execute(Statement statement) = 0;
  /// Runs a script of several `;`-separated statements without parameters (migrations), inside
  /// this transaction. The script must not contain transaction control (BEGIN, COMMIT, ROLLBACK,
  /// SAVEPOINT, RELEASE); SQLite rejects it. Errors map as for Execute.
  virtual Task<core::Result<void>> ExecuteScript(std::string script) = 0;
  /// Queues a notification on `channel` carrying `payload` that listeners (Database::Listen, in
  /// this process and, on PostgreSQL, in every process on the same database) receive only if and
  /// after this transaction commits; a rollback drops it. Identical (channel, payload) pairs of
  /// one transaction may be delivered once. PostgreSQL sends no NOTIFY inside the transaction:
  /// after COMMIT this process's listeners get it at once (before Transact returns), other
  /// processes by a NOTIFY the listening connection sends soon after (coalesced with others; lost
  /// if the process dies in between). `channel` is a short lowercase identifier
  /// ([a-z_][a-z0-9_]*, at most 63 characters); `payload` at most 7,000 bytes.
  virtual Task<core::Result<void>> Notify(std::string channel, std::string payload) = 0;
};

/// An active Database::Listen registration; destroying it stops the callbacks (after the one in
/// progress, if any, has returned).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

/// Called with a notification's payload. An empty payload with `lost == true` says that
/// notifications may have been missed (the PostgreSQL listening connection was re-established):
/// listeners should re-check whatever they were waiting for.
using NotificationCallback = std::function<void(std::string_view payload, bool lost)>;

/// The body of a transaction: it runs statements through the Transaction and returns success or
/// the error that rolls everything back.
using TransactionWork = std::function<Task<core::Result<void>>(Transaction&)>;

/// A database: reads on the calling thread's own connection, writes in transactions.
class Database {
 public:
  virtual ~Database() = default;
  virtual const Dialect& dialect() const = 0;

  /// A read-only query on the calling I/O thread's connection (or pool). `shard` is the I/O
  /// thread index (Request::shard()).
  virtual Task<core::Result<ResultSet>> Query(unsigned shard, Statement statement) = 0;

  /// Runs `work` in a transaction and resumes the caller on its own executor afterwards. If
  /// `work` returns an error or throws, everything it did is rolled back. When this returns
  /// success, the transaction is durable (SQLite: committed with synchronous=FULL; PostgreSQL:
  /// COMMIT acknowledged). On SQLite, `work` runs on the single writer thread and many callers'
  /// transactions share one commit (group commit), each isolated by a savepoint; `work` must
  /// only await Transaction::Execute.
  virtual Task<core::Result<void>> Transact(unsigned shard, TransactionWork work) = 0;

  /// Calls `on_notify` for every notification on `channel` committed after this returns (see
  /// Transaction::Notify). The callback runs on a thread of the backend (SQLite: the writer
  /// thread right after the COMMIT; PostgreSQL: a dedicated listening connection's thread): it
  /// must be quick, thread-safe and must not throw (post work elsewhere). Delivery is
  /// best-effort: waiters must still bound their waits.
  virtual std::unique_ptr<Subscription> Listen(std::string channel, NotificationCallback on_notify) = 0;

  /// Closes connections after flushing pending writes.
  virtual void Close() = 0;
};

}  // namespace basalt::store
