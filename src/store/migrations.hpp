#pragma once
/// Schema migrations: versioned SQL scripts applied in order, each in its own transaction, and
/// recorded in `basalt_migrations(version, name, checksum, applied_at)`.
///
/// Concurrency: every migration transaction first runs Dialect::MigrationLockStatement() (empty on
/// SQLite, where the single writer and BEGIN IMMEDIATE serialise; pg_advisory_xact_lock on
/// PostgreSQL), then re-checks whether its version is already recorded, so two processes running
/// Up at once apply each migration exactly once.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::store {

/// One migration. `up` and `down` may hold several `;`-separated statements, but no transaction
/// control (the runner owns the transaction).
struct Migration {
  int version;       ///< Positive and unique; applied in increasing order.
  std::string name;  ///< Short human-readable name, e.g. "create_users".
  std::string up;    ///< Applies the change. Its checksum is recorded; it must never change later.
  std::string down;  ///< Reverts `up`; empty means irreversible (Down refuses).
};

/// Where one migration stands.
enum class MigrationState {
  kPending,   ///< Known to this build, not applied.
  kApplied,   ///< Applied, with the same `up` text as this build (checksums match).
  kModified,  ///< Applied, but this build's `up` text differs (checksum mismatch): Up/Down refuse.
  kUnknown,   ///< Recorded in the database but absent from this build (e.g. a newer build ran).
};

/// One row of Migrator::Status().
struct MigrationStatus {
  int version = 0;
  std::string name;
  MigrationState state = MigrationState::kPending;
  std::string checksum;          ///< Recorded checksum when applied, else this build's.
  std::string applied_at;        ///< RFC 3339 UTC; empty when pending.
};

/// Stable checksum of a migration's `up` text: FNV-1a 64-bit, 16 lowercase hex digits.
std::string MigrationChecksum(std::string_view sql);

/// Applies and reverts migrations through Database::Transact. Holds a reference to `database`,
/// which must outlive it. Methods must not run concurrently on one Migrator.
class Migrator {
 public:
  /// `migrations` need not be sorted; `shard` is passed to Transact.
  Migrator(Database& database, std::vector<Migration> migrations, unsigned shard = 0);

  /// Every known and recorded migration by increasing version. Creates the bookkeeping table
  /// when missing. Errors: kValidation for a malformed migration list; database errors.
  Task<core::Result<std::vector<MigrationStatus>>> Status();

  /// Applies pending migrations with version <= `target` (all when nullopt) in increasing order,
  /// each in its own transaction; stops at the first failure (earlier ones stay applied).
  /// Returns how many were applied. Errors: kConflict when an applied migration's checksum
  /// changed (nothing is run); the failing migration's error, its message prefixed by its version.
  Task<core::Result<int>> Up(std::optional<int> target = std::nullopt);

  /// Reverts the `count` most recently applied migrations (highest versions first), each in its
  /// own transaction. Returns how many were reverted. Errors: kConflict when one of them is
  /// unknown to this build, has no `down`, or any applied checksum changed (nothing is run).
  Task<core::Result<int>> Down(int count = 1);

 private:
  Database& database_;
  std::vector<Migration> migrations_;  ///< Sorted by version.
  unsigned shard_;
};

}  // namespace basalt::store
