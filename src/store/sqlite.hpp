#pragma once
/// The embedded SQLite backend of store::Database (WAL, one writer thread with group commit,
/// one read-only connection per I/O thread). Only the composition root (`app/`) includes this.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::store {

/// How to open a SQLite database.
struct SqliteOptions {
  std::string path;       ///< Database file; created when missing (its directory must exist).
  /// Number of read connections: one per I/O thread, `Query(shard)` needs shard < shards. A
  /// shard's connection takes no lock: only one thread at a time may query through it.
  unsigned shards = 1;
  unsigned max_group = 256;  ///< Most transactions committed together by one COMMIT (one fsync).
  std::chrono::milliseconds busy_timeout{5000};  ///< Wait for locks held by other processes.
  /// Called on the writer thread after every successful group COMMIT with the number of
  /// transactions it made durable (metrics, tests). Must not block and must not throw.
  std::function<void(std::size_t transactions)> on_group_commit;
};

/// Opens (creating if needed) the database at `options.path` in WAL mode with synchronous=FULL
/// on the writer connection, foreign keys on, and starts the writer thread. Fails with kInternal
/// (cause: SQLite's message) when the file cannot be opened or configured, and with kValidation
/// when `shards` or `max_group` is 0.
core::Result<std::unique_ptr<Database>> OpenSqlite(const SqliteOptions& options);

}  // namespace basalt::store
