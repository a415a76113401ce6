#pragma once
/// Private to store/sqlite: one sqlite3 connection with a bounded prepared-statement cache.
/// A Connection is used by one thread at a time (each read shard by its I/O thread, the writer
/// connection by the writer thread); it takes no lock.

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.hpp"
#include "store/database.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace basalt::store::sqlite {

/// Maps a SQLite (extended) result code to an Error: unique/primary key -> kConflict,
/// foreign key/check/not null -> kValidation, anything else -> kInternal. `cause` is private.
core::Error MapError(int extended_code, std::string cause);

/// One open connection and its statement cache.
class Connection {
 public:
  /// How the connection is opened.
  enum class Mode {
    kWriter,    ///< Read-write, creates the file; WAL and synchronous=FULL are set on it.
    kReadOnly,  ///< SQLITE_OPEN_READONLY; the writer must have created the file first.
  };

  /// Opens `path`; sets busy_timeout and foreign_keys=ON (and WAL + synchronous=FULL for kWriter).
  static core::Result<std::unique_ptr<Connection>> Open(const std::string& path, Mode mode,
                                                        int busy_timeout_ms, std::size_t cache_size);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Prepares (or reuses) one statement, binds its parameters, steps it to the end and returns
  /// its rows. Rejects SQL with more than one statement and parameter count mismatches.
  core::Result<ResultSet> Run(const Statement& statement);

  /// Runs a multi-statement script with sqlite3_exec (no parameters, no cache).
  core::Result<void> Exec(const std::string& script);

  /// Runs the backend's own transaction control ("BEGIN IMMEDIATE", "SAVEPOINT s", ...), which
  /// the authorizer refuses to user statements on the writer connection.
  core::Result<void> Control(const char* sql);

  /// Installs an authorizer refusing transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/
  /// RELEASE) in user statements: those would break group commit. Writer connection only.
  void GuardTransactionControl();

  /// True when no transaction is open (sqlite3_get_autocommit).
  bool Autocommit() const;

  /// Unresolved deferred foreign-key violations in the open transaction.
  int DeferredForeignKeyViolations() const;

  /// Finalizes cached statements and closes the connection; idempotent.
  void Close();

 private:
  explicit Connection(sqlite3* db, std::size_t cache_size) : db_(db), cache_size_(cache_size) {}
  core::Result<sqlite3_stmt*> Prepare(const std::string& sql);
  core::Error LastError(std::string_view what) const;
  static int Authorize(void* self, int action, const char*, const char*, const char*, const char*);

  sqlite3* db_ = nullptr;
  std::size_t cache_size_;
  bool allow_control_ = false;  ///< Set while Control() runs its own statement.
  /// LRU: most recently used at the front; the map points into the list.
  std::list<std::pair<std::string, sqlite3_stmt*>> lru_;
  std::unordered_map<std::string_view, decltype(lru_)::iterator> cache_;
};

}  // namespace basalt::store::sqlite
