#pragma once
/// Private to store/postgres: one libpq connection in non-blocking mode, driven by Asio.
///
/// The connection's socket (PQsocket) is wrapped in a posix::stream_descriptor on the executor of
/// the coroutine currently using it (Bind/Unbind); every wait is an async_wait on that descriptor, so no
/// call ever blocks the I/O thread. A Connection is used by one coroutine at a time (the pool
/// hands it out exclusively) and takes no lock. Executors are assumed single-threaded (one
/// io_context per I/O thread), as everywhere in Basalt.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "core/error.hpp"
#include "store/database.hpp"

struct pg_conn;
struct pg_result;

namespace basalt::store::postgres {

/// Maps a SQLSTATE to an Error: 23505 and 40001/40P01 -> kConflict; 23503/23514/23502 ->
/// kValidation; class 08 and 57P0x (connection lost, server shutting down) -> kUnavailable;
/// anything else -> kInternal. `cause` (libpq's message) stays private.
core::Error MapError(std::string_view sqlstate, std::string cause);

/// Frees a PGresult.
struct ResultDeleter {
  void operator()(pg_result* result) const;
};
using PgResult = std::unique_ptr<pg_result, ResultDeleter>;

/// One open connection and its prepared-statement cache.
class Connection {
 public:
  /// Opens a connection with PQconnectStart/PQconnectPoll, awaiting socket readiness on
  /// `executor`; fails with kUnavailable after `timeout` or when the server refuses.
  static Task<core::Result<std::unique_ptr<Connection>>> Connect(std::string conninfo,
                                                                 boost::asio::any_io_executor executor,
                                                                 std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Wraps the socket in a descriptor on `executor` (the coroutine that took the connection from
  /// its pool). Unbind() before the connection goes back to the pool: the descriptor must not
  /// outlive its io_context (tests run each call on a short-lived one), and the next user may
  /// run on another I/O thread. Costs one epoll_ctl each way.
  void Bind(const boost::asio::any_io_executor& executor);
  /// Releases the descriptor (without closing the socket). Only while no wait is pending.
  void Unbind();

  /// True when the connection can take a query: CONNECTION_OK, idle, no error seen, and nothing
  /// unexpected waiting on the socket (a terminated backend sends its FATAL error and closes).
  bool Healthy();

  /// Runs one statement through the prepared-statement cache (prepare on first use, pipelined
  /// with the execution). When `begin_first`, "BEGIN" is pipelined in front of it (the lazy
  /// BEGIN of a transaction). Errors map through MapError.
  Task<core::Result<ResultSet>> Execute(const Statement& statement, bool begin_first);

  /// Runs `statements` in order in one round trip (pipeline mode, one sync at the end), with
  /// "BEGIN" in front when `begin_first` and "COMMIT" behind when `commit_last`. Returns the last
  /// statement's rows (empty when there is none), or the first error: once a statement fails the
  /// server skips the rest of the pipeline, COMMIT included, so a failed statement never commits
  /// (the transaction stays open in the failed state for the caller's ROLLBACK), and a failing
  /// COMMIT (deferred constraint, serialization failure) is returned as its error. With `each`,
  /// every statement's rows are also stored there, one ResultSet per statement (on success only).
  Task<core::Result<ResultSet>> ExecuteMany(const std::vector<const Statement*>& statements, bool begin_first,
                                            bool commit_last, std::vector<ResultSet>* each = nullptr);

  /// Runs a parameterless command on the unnamed statement: BEGIN, COMMIT, ROLLBACK.
  Task<core::Result<void>> Command(std::string_view sql);

  /// Runs a multi-statement script with the simple query protocol (PQsendQuery).
  Task<core::Result<void>> Script(const std::string& script);

  /// True when a transaction is open on the server (PQTRANS_INTRANS or PQTRANS_INERROR).
  bool InTransaction() const;
  /// True when the open transaction has failed (COMMIT would silently roll back).
  bool TransactionFailed() const;

  /// When the connection was established (max_lifetime).
  std::chrono::steady_clock::time_point created() const { return created_; }
  /// Number of statements prepared on this connection (tests, metrics).
  std::size_t prepared_count() const { return statements_.size(); }
  /// The server process id (tests: pg_terminate_backend).
  int backend_pid() const;

 private:
  /// One message sent in an exchange.
  struct Step;

  explicit Connection(pg_conn* conn);

  /// Sends `steps` (in pipeline mode when there are several), flushes, and collects one result
  /// per step: the first error result of the step, or its last result.
  Task<core::Result<std::vector<PgResult>>> Exchange(const std::vector<Step>& steps);
  /// One command (script = false) or multi-statement script with no rows wanted.
  Task<core::Result<void>> RunOne(bool script, const std::string& sql);
  Task<core::Result<void>> Flush();
  Task<core::Result<void>> AwaitReadable();
  /// Reads the next result; null marks the end of the current step's results.
  Task<core::Result<PgResult>> NextResult();
  /// Marks the connection broken and returns kUnavailable with libpq's message as cause.
  std::unexpected<core::Error> Lost(std::string_view what);

  pg_conn* conn_;
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  std::unordered_map<std::string, std::string> statements_;  ///< SQL + param types -> "sN".
  std::size_t next_statement_ = 0;
  bool broken_ = false;
  std::chrono::steady_clock::time_point created_;
};

}  // namespace basalt::store::postgres
