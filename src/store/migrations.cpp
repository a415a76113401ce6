#include "store/migrations.hpp"

#include "core/hash.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <utility>

#include "core/time.hpp"
#include "obs/log.hpp"
#include "store/values.hpp"

namespace basalt::store {
namespace {

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS basalt_migrations ("
    "version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// A row of basalt_migrations.
struct Applied {
  std::string name;
  std::string checksum;
  std::string applied_at;
};
using AppliedMap = std::map<std::int64_t, Applied>;

/// Runs the backend's migration lock (if any) at the start of a migration transaction.
Task<core::Result<void>> TakeLock(const Dialect& dialect, Transaction& tx) {
  std::string lock = dialect.MigrationLockStatement();
  if (lock.empty()) co_return core::Result<void>{};
  Statement statement{std::move(lock), {}};
  auto locked = co_await tx.Execute(std::move(statement));
  if (!locked) co_return std::unexpected(std::move(locked.error()));
  co_return core::Result<void>{};
}

Task<core::Result<AppliedMap>> ReadApplied(Transaction& tx) {
  Statement select{"SELECT version, name, checksum, applied_at FROM basalt_migrations", {}};
  auto rows = co_await tx.Execute(std::move(select));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  AppliedMap applied;
  for (auto& row : rows->rows) {
    const auto* version = std::get_if<std::int64_t>(&row.at(0));
    if (!version) continue;
    applied[*version] = Applied{store::TextOf(row.at(1)), store::TextOf(row.at(2)), store::TextOf(row.at(3))};
  }
  co_return applied;
}

core::Error Prefixed(const Migration& m, std::string_view verb, core::Error error) {
  error.message = "migration " + std::to_string(m.version) + " (" + m.name + ") " + std::string(verb) +
                  " failed: " + error.message;
  return error;
}

// Statements and log lines are built outside coroutines: GCC 12 mis-compiles some braced
// initializer lists inside coroutine bodies ("array used as initializer").
Statement SelectVersion(const Dialect& d, int version) {
  return Statement{"SELECT 1 FROM basalt_migrations WHERE version = " + d.Placeholder(1), {std::int64_t{version}}};
}

Statement InsertVersion(const Dialect& d, const Migration& m) {
  Statement st;
  st.sql = "INSERT INTO basalt_migrations (version, name, checksum, applied_at) VALUES (" + d.Placeholder(1) + ", " +
           d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) + ")";
  st.params.emplace_back(std::int64_t{m.version});
  st.params.emplace_back(m.name);
  st.params.emplace_back(MigrationChecksum(m.up));
  st.params.emplace_back(core::FormatRfc3339(std::chrono::system_clock::now()));
  return st;
}

Statement DeleteVersion(const Dialect& d, int version) {
  return Statement{"DELETE FROM basalt_migrations WHERE version = " + d.Placeholder(1), {std::int64_t{version}}};
}

void LogMigration(std::string_view msg, const Migration& m) {
  obs::Log(obs::LogLevel::kInfo, msg, {{"version", std::int64_t{m.version}}, {"name", std::string_view(m.name)}});
}

core::Result<void> CheckList(const std::vector<Migration>& sorted) {
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i].version <= 0) {
      return core::Fail(core::ErrorCode::kValidation,
                        "migration versions must be positive: " + std::to_string(sorted[i].version));
    }
    if (i > 0 && sorted[i].version == sorted[i - 1].version) {
      return core::Fail(core::ErrorCode::kValidation, "duplicate migration version " + std::to_string(sorted[i].version));
    }
  }
  return {};
}

}  // namespace

std::string MigrationChecksum(std::string_view sql) { return core::Hex64(core::Fnv1a64(sql)); }

Migrator::Migrator(Database& database, std::vector<Migration> migrations, unsigned shard)
    : database_(database), migrations_(std::move(migrations)), shard_(shard) {
  std::stable_sort(migrations_.begin(), migrations_.end(),
                   [](const Migration& a, const Migration& b) { return a.version < b.version; });
}

Task<core::Result<std::vector<MigrationStatus>>> Migrator::Status() {
  if (auto ok = CheckList(migrations_); !ok) co_return std::unexpected(std::move(ok.error()));
  AppliedMap applied;
  const Dialect& dialect = database_.dialect();
  auto read = co_await database_.Transact(shard_, [&](Transaction& tx) -> Task<core::Result<void>> {
    if (auto locked = co_await TakeLock(dialect, tx); !locked) co_return locked;
    if (auto created = co_await tx.ExecuteScript(std::string(kCreateTable)); !created) co_return created;
    auto rows = co_await ReadApplied(tx);
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    applied = std::move(*rows);
    co_return core::Result<void>{};
  });
  if (!read) co_return std::unexpected(std::move(read.error()));

  std::vector<MigrationStatus> out;
  for (const Migration& m : migrations_) {
    MigrationStatus status{m.version, m.name, MigrationState::kPending, MigrationChecksum(m.up), {}};
    if (auto it = applied.find(m.version); it != applied.end()) {
      status.state = it->second.checksum == status.checksum ? MigrationState::kApplied : MigrationState::kModified;
      status.checksum = it->second.checksum;
      status.applied_at = it->second.applied_at;
      applied.erase(it);
    }
    out.push_back(std::move(status));
  }
  for (auto& [version, row] : applied) {
    MigrationStatus unknown{static_cast<int>(version), row.name, MigrationState::kUnknown, row.checksum,
                            row.applied_at};
    out.push_back(std::move(unknown));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  co_return out;
}

Task<core::Result<int>> Migrator::Up(std::optional<int> target) {
  auto status = co_await Status();
  if (!status) co_return std::unexpected(std::move(status.error()));
  for (const auto& s : *status) {
    if (s.state == MigrationState::kModified) {
      co_return core::Fail(core::ErrorCode::kConflict,
                           "migration " + std::to_string(s.version) + " (" + s.name +
                               ") was changed after it was applied (checksum mismatch); restore its original SQL "
                               "and add a new migration instead");
    }
  }
  const Dialect& dialect = database_.dialect();
  int applied_count = 0;
  for (const Migration& m : migrations_) {
    if (target && m.version > *target) break;
    auto it = std::find_if(status->begin(), status->end(), [&](const auto& s) { return s.version == m.version; });
    if (it != status->end() && it->state != MigrationState::kPending) continue;
    bool already = false;
    auto done = co_await database_.Transact(shard_, [&](Transaction& tx) -> Task<core::Result<void>> {
      if (auto locked = co_await TakeLock(dialect, tx); !locked) co_return locked;
      // Re-check under the lock: another process may have applied it since Status().
      auto row = co_await tx.Execute(SelectVersion(dialect, m.version));
      if (!row) co_return std::unexpected(std::move(row.error()));
      if (!row->rows.empty()) {
        already = true;
        co_return core::Result<void>{};
      }
      if (auto ran = co_await tx.ExecuteScript(m.up); !ran) co_return ran;
      auto recorded = co_await tx.Execute(InsertVersion(dialect, m));
      if (!recorded) co_return std::unexpected(std::move(recorded.error()));
      co_return core::Result<void>{};
    });
    if (!done) co_return std::unexpected(Prefixed(m, "up", std::move(done.error())));
    if (already) continue;
    ++applied_count;
    LogMigration("migration applied", m);
  }
  co_return applied_count;
}

Task<core::Result<int>> Migrator::Down(int count) {
  auto status = co_await Status();
  if (!status) co_return std::unexpected(std::move(status.error()));
  std::vector<const Migration*> to_revert;
  for (auto it = status->rbegin(); it != status->rend() && static_cast<int>(to_revert.size()) < count; ++it) {
    if (it->state == MigrationState::kPending) continue;
    const std::string id = "migration " + std::to_string(it->version) + " (" + it->name + ")";
    if (it->state == MigrationState::kUnknown) {
      co_return core::Fail(core::ErrorCode::kConflict, id + " is applied but unknown to this build; cannot revert it");
    }
    auto m = std::find_if(migrations_.begin(), migrations_.end(), [&](const auto& x) { return x.version == it->version; });
    if (it->state == MigrationState::kModified) {
      co_return core::Fail(core::ErrorCode::kConflict, id + " was changed after it was applied (checksum mismatch)");
    }
    if (m->down.empty()) co_return core::Fail(core::ErrorCode::kConflict, id + " has no down script");
    to_revert.push_back(&*m);
  }
  for (const auto& s : *status) {
    if (s.state == MigrationState::kModified) {
      co_return core::Fail(core::ErrorCode::kConflict, "migration " + std::to_string(s.version) + " (" + s.name +
                                                           ") was changed after it was applied (checksum mismatch)");
    }
  }
  const Dialect& dialect = database_.dialect();
  int reverted = 0;
  for (const Migration* m : to_revert) {
    bool gone = false;
    auto done = co_await database_.Transact(shard_, [&](Transaction& tx) -> Task<core::Result<void>> {
      if (auto locked = co_await TakeLock(dialect, tx); !locked) co_return locked;
      auto row = co_await tx.Execute(SelectVersion(dialect, m->version));
      if (!row) co_return std::unexpected(std::move(row.error()));
      if (row->rows.empty()) {
        gone = true;  // Reverted concurrently.
        co_return core::Result<void>{};
      }
      if (auto ran = co_await tx.ExecuteScript(m->down); !ran) co_return ran;
      auto deleted = co_await tx.Execute(DeleteVersion(dialect, m->version));
      if (!deleted) co_return std::unexpected(std::move(deleted.error()));
      co_return core::Result<void>{};
    });
    if (!done) co_return std::unexpected(Prefixed(*m, "down", std::move(done.error())));
    if (gone) continue;
    ++reverted;
    LogMigration("migration reverted", *m);
  }
  co_return reverted;
}

}  // namespace basalt::store
