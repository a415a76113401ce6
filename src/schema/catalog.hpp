#pragma once
/// The catalog: every collection, loaded at start-up from `basalt_collections` and served as
/// immutable snapshots. Readers (I/O threads) take a snapshot per request and never lock; writers
/// change the database in one transaction, then publish a new snapshot.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "core/error.hpp"
#include "schema/collection.hpp"
#include "schema/ddl.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

namespace basalt::schema {

/// A stored collection.
struct Collection {
  CollectionSpec spec;
  std::string created_at;    ///< RFC 3339 UTC.
  std::string updated_at;    ///< RFC 3339 UTC.
  std::int64_t version = 1;  ///< Incremented by every change.
};

/// An immutable view of every collection at one moment.
struct Snapshot {
  std::map<std::string, std::shared_ptr<const Collection>, std::less<>> collections;
  /// The collection with this name, or null.
  const Collection* Find(std::string_view name) const;
};

/// The JSON shown by the API: the spec plus created_at, updated_at, version.
boost::json::object ToJson(const Collection& collection);

/// The system migrations of schema/: creates basalt_collections and basalt_schema_migrations.
/// Portable SQL (TEXT, BIGINT) for SQLite and PostgreSQL. Versions 200..299 belong to schema/.
std::vector<store::Migration> SystemMigrations();

/// Checks what a spec needs from other collections and its rules: every relation targets a
/// collection of `snapshot` (or the spec itself), and every rule parses and compiles against the
/// collection's resolver. Errors: kValidation with field paths ("fields[1].collection",
/// "rules.list").
core::Result<void> ValidateAgainst(const CollectionSpec& spec, const Snapshot& snapshot, std::string_view dialect_name);

/// Checks the collections of `next` that have a relation to `changed`: their rules must still
/// compile against `next` (where `changed` has its new spec). Errors: kConflict naming the
/// dependent collection, with its field errors prefixed "<collection>.".
core::Result<void> ValidateDependents(const Snapshot& next, std::string_view changed, std::string_view dialect_name);

// The transaction steps of Catalog::Create / Update / Drop, shared with schema import (schema_io),
// which runs many of them in one transaction. Each applies the DDL, writes basalt_collections and
// records the migration in basalt_schema_migrations. They do not validate against other
// collections (ValidateAgainst, ValidateDependents) and do not publish a snapshot.

/// Inserts `c` (spec, created_at, updated_at; version 1) with `spec_text` its stored JSON and runs
/// `ddl.up`. Errors: kConflict (name taken), database errors.
store::Task<core::Result<void>> CreateInTransaction(store::Transaction& tx, const store::Dialect& dialect,
                                                    std::shared_ptr<Collection> c, const std::string& spec_text,
                                                    const DdlChange& ddl);
/// Replaces the stored spec of `spec.name` by `spec` (ChangeCollectionDdl's rules, against the spec
/// read inside `tx`), bumps the version and fills `c` (created_at, updated_at, version; not spec).
/// Clears `previous_name` in `spec`. Errors: kNotFound, kConflict, kPreconditionFailed.
store::Task<core::Result<void>> UpdateInTransaction(store::Transaction& tx, const store::Dialect& dialect,
                                                    CollectionSpec& spec, std::optional<std::int64_t> expected_version,
                                                    const std::string& now, std::shared_ptr<Collection> c);
/// Drops `name`. Errors: kNotFound; kConflict while another stored collection has a relation to it.
store::Task<core::Result<void>> DropInTransaction(store::Transaction& tx, const store::Dialect& dialect,
                                                  const std::string& name);

/// Owns the current snapshot. Thread-safe: snapshot() from any thread; the write methods may run
/// concurrently (the database serialises them; a newer version always wins the publish).
class Catalog {
 public:
  /// Holds a reference to `database`, which must outlive the catalog.
  explicit Catalog(store::Database& database);

  /// Reads every collection (start-up). Errors: database errors, kInternal for a corrupt spec.
  store::Task<core::Result<void>> Load(unsigned shard = 0);

  /// Load() run to completion on a private io_context: for start-up only, before serving.
  core::Result<void> LoadBlocking(unsigned shard = 0);

  /// Reads the catalog table again and publishes what other processes sharing the database changed
  /// (PostgreSQL scale-out): collections that are new or carry a higher version than the
  /// snapshot's, and the removal of those dropped elsewhere. Runs at most once per `min_interval`
  /// per process; returns false when it skipped.
  store::Task<core::Result<bool>> Refresh(unsigned shard,
                                          std::chrono::milliseconds min_interval = std::chrono::milliseconds(500));

  /// Starts Refresh(shard, interval) detached on `executor` when the last one is older than
  /// `interval`, so every process sees the others' schema changes within about that long while
  /// it serves requests. Costs one clock read when not due; the caller never waits.
  void RefreshInBackground(unsigned shard, const boost::asio::any_io_executor& executor,
                           std::chrono::milliseconds interval);

  /// The current snapshot; never null.
  std::shared_ptr<const Snapshot> snapshot() const { return current_.load(std::memory_order_acquire); }

  /// Creates a collection: validates, CREATE TABLE, stores the spec and the migration, all in one
  /// transaction. Errors: kValidation, kConflict (name taken).
  /// `also` (optional, here and in Update and Drop) runs last in the same transaction, after the
  /// change succeeded (e.g. an audit entry), so both commit or neither does; its error rolls back.
  store::Task<core::Result<std::shared_ptr<const Collection>>> Create(unsigned shard, CollectionSpec spec,
                                                                      store::TransactionWork also = {});

  /// Replaces a collection's spec with `spec` (see ChangeCollectionDdl for what may change),
  /// applying and recording the DDL in one transaction. `expected_version` guards lost updates.
  /// Errors: kNotFound, kValidation, kConflict (unsafe change), kPreconditionFailed.
  store::Task<core::Result<std::shared_ptr<const Collection>>> Update(unsigned shard, CollectionSpec spec,
                                                                      std::optional<std::int64_t> expected_version,
                                                                      store::TransactionWork also = {});

  /// Drops a collection and its records. Errors: kNotFound; kConflict while another collection
  /// has a relation to it.
  store::Task<core::Result<void>> Drop(unsigned shard, std::string name, store::TransactionWork also = {});

 private:
  void Publish(std::shared_ptr<const Collection> collection, const std::string& removed = {});

  store::Database& database_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::mutex publish_mutex_;  ///< Serialises copy-and-swap of snapshots (never held across await).
  /// Reads the table and publishes; at most once per `min_interval` as counted in `last_ms`.
  store::Task<core::Result<bool>> RefreshAt(unsigned shard, std::chrono::milliseconds min_interval,
                                            std::atomic<std::int64_t>& last_ms);

  std::atomic<std::int64_t> last_refresh_ms_{0};     ///< Steady-clock ms of the last Refresh.
  std::atomic<std::int64_t> last_background_ms_{0};  ///< ... of the last RefreshInBackground.
  std::uint64_t generation_ = 0;  ///< Local publications (under publish_mutex_): a Refresh that raced one removes nothing.
};

}  // namespace basalt::schema
