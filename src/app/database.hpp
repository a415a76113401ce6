#pragma once
/// Opens the configured database and brings its system tables up to date.

#include <memory>

#include "config/settings.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::app {

/// The embedded SQLite file `<data_dir>/basalt.db` when `database.url` is empty, otherwise
/// PostgreSQL. `shards` is the number of I/O threads (one read connection or pool each).
core::Result<std::unique_ptr<store::Database>> OpenDatabase(const config::Settings& settings, unsigned shards);

/// Runs a store coroutine to completion on a private io_context (start-up and CLI only).
template <class T>
T RunBlocking(store::Task<T> task);

/// The key ring of `secrets.keys` / `secrets.active_key` (validated by config::Load already);
/// empty when no key is configured.
core::Result<core::KeyRing> LoadKeyRing(const config::Settings& settings);

/// Applies every pending system migration; returns how many were applied.
core::Result<int> MigrateUp(store::Database& database);

/// For CLI commands: the database with one shard, its system migrations applied. A failure is
/// printed to stderr ("basalt: ...") and gives null (the database, if opened, is closed).
std::unique_ptr<store::Database> OpenForCommand(const config::Settings& settings);

}  // namespace basalt::app
