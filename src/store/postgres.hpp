#pragma once
/// The PostgreSQL backend of store::Database: libpq in non-blocking mode driven by Asio, one
/// connection pool per shard (I/O thread), prepared statements cached per connection, pipeline
/// mode for multi-statement round trips. Only the composition root (`app/`) includes this.

#include <chrono>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::store {

/// How to open a PostgreSQL database.
struct PostgresOptions {
  /// libpq connection string: `postgres://user:pass@host:port/db?options=...` or `key=value` form.
  std::string url;
  /// Number of pools: one per I/O thread; `Query(shard)` and `Transact(shard)` need shard < shards.
  unsigned shards = 1;
  /// Most connections per shard. Callers wait (asynchronously) when all are in use.
  unsigned pool_size = 4;
  /// A connection older than this is closed when it is returned to its pool.
  std::chrono::seconds max_lifetime{3600};
  /// Bound on establishing one connection (start-up check and every pool connect).
  std::chrono::milliseconds connect_timeout{5000};
};

/// Validates `options` and makes one blocking test connection (start-up only, never on an I/O
/// thread) so a wrong URL or an unreachable server is reported at once. Pool connections are
/// opened lazily and asynchronously on the executor of the first caller of each shard.
/// Errors: kValidation for a malformed URL or a zero shards/pool_size; kUnavailable (cause:
/// libpq's message) when the server cannot be reached or refuses the credentials.
core::Result<std::unique_ptr<Database>> OpenPostgres(const PostgresOptions& options);

}  // namespace basalt::store
