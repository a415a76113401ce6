#include "store/sqlite/connection.hpp"

#include <sqlite3.h>

#include <cctype>
#include <memory>
#include <utility>

namespace basalt::store::sqlite {
namespace {

bool OnlyWhitespaceOrComments(const char* tail) {
  // What follows the first statement must be blank; "; -- x" style leftovers count as blank.
  std::string_view rest(tail ? tail : "");
  while (!rest.empty()) {
    if (std::isspace(static_cast<unsigned char>(rest.front())) || rest.front() == ';') {
      rest.remove_prefix(1);
    } else if (rest.starts_with("--")) {
      auto nl = rest.find('\n');
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    } else if (rest.starts_with("/*")) {
      auto end = rest.find("*/", 2);
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
    } else {
      return false;
    }
  }
  return true;
}

int Bind(sqlite3_stmt* stmt, int index, const Value& value) {
  return std::visit(
      [&](const auto& v) -> int {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Null>) {
          return sqlite3_bind_null(stmt, index);
        } else if constexpr (std::is_same_v<T, bool>) {
          return sqlite3_bind_int64(stmt, index, v ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return sqlite3_bind_int64(stmt, index, v);
        } else if constexpr (std::is_same_v<T, double>) {
          return sqlite3_bind_double(stmt, index, v);
        } else {
          // SQLITE_STATIC: the Statement outlives the step loop; bindings are cleared after it.
          return sqlite3_bind_text64(stmt, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
        }
      },
      value);
}

Value Column(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, i);
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      return std::string(text ? text : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
    }
    case SQLITE_BLOB: {
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, i));
      return std::string(blob ? blob : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
    }
    default:
      return Null{};
  }
}

/// Resets a cached statement whatever happens, so no read transaction stays open (which would
/// pin the WAL and block checkpoints) and no binding points into a dead Statement.
struct ResetOnExit {
  sqlite3_stmt* stmt;
  ~ResetOnExit() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

}  // namespace

core::Error MapError(int extended_code, std::string cause) {
  switch (extended_code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return core::Error::Make(core::ErrorCode::kConflict, "a record with the same unique value already exists",
                               std::move(cause));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return core::Error::Make(core::ErrorCode::kValidation, "a referenced record does not exist or is still referenced",
                               std::move(cause));
    case SQLITE_CONSTRAINT_CHECK:
      return core::Error::Make(core::ErrorCode::kValidation, "a value violates a check constraint", std::move(cause));
    case SQLITE_CONSTRAINT_NOTNULL:
      return core::Error::Make(core::ErrorCode::kValidation, "a required value is missing", std::move(cause));
    default:
      return core::Error::Make(core::ErrorCode::kInternal, "database error", std::move(cause));
  }
}

core::Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, Mode mode, int busy_timeout_ms,
                                                           std::size_t cache_size) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= mode == Mode::kWriter ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string cause = "sqlite3_open_v2(" + path + "): " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return core::Fail(core::ErrorCode::kInternal, "cannot open the database", std::move(cause));
  }
  std::unique_ptr<Connection> conn(new Connection(db, cache_size));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::string setup = "PRAGMA foreign_keys=ON;";
  // No automatic checkpoints on read-write connections: a checkpoint run inside COMMIT would stall
  // every request of that group. SqliteDatabase checkpoints from its own thread instead.
  // Statement and savepoint journals (every write of a group runs in a savepoint) in memory: on
  // disk each one that outgrows 64 KiB creates, writes and unlinks a temp file inside the group.
  if (mode == Mode::kWriter) {
    setup += "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=MEMORY;";
  }
  if (auto r = conn->Control(setup.c_str()); !r) return std::unexpected(std::move(r.error()));
  if (mode == Mode::kWriter) {
    // journal_mode=WAL fails silently on e.g. :memory:; check what we got.
    auto mode_rs = conn->Run({"PRAGMA journal_mode", {}});
    if (!mode_rs) return std::unexpected(std::move(mode_rs.error()));
    const auto* got = mode_rs->rows.empty() ? nullptr : std::get_if<std::string>(&mode_rs->rows[0][0]);
    if (!got || *got != "wal") {
      return core::Fail(core::ErrorCode::kInternal, "cannot open the database",
                        "journal_mode is " + (got ? *got : std::string("?")) + ", not wal: " + path);
    }
  }
  return conn;
}

Connection::~Connection() { Close(); }

void Connection::Close() {
  for (auto& [sql, stmt] : lru_) sqlite3_finalize(stmt);
  cache_.clear();
  lru_.clear();
  if (db_) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

core::Error Connection::LastError(std::string_view what) const {
  std::string cause(what);
  cause += ": ";
  cause += sqlite3_errmsg(db_);
  return MapError(sqlite3_extended_errcode(db_), std::move(cause));
}

core::Result<sqlite3_stmt*> Connection::Prepare(const std::string& sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return std::unexpected(LastError("prepare"));
  }
  if (stmt == nullptr) {
    return core::Fail(core::ErrorCode::kInternal, "database error", "prepare: empty statement");
  }
  if (!OnlyWhitespaceOrComments(tail)) {
    sqlite3_finalize(stmt);
    return core::Fail(core::ErrorCode::kInternal, "database error",
                      "prepare: more than one statement (use ExecuteScript): " + sql);
  }
  if (lru_.size() >= cache_size_ && !lru_.empty()) {
    auto& [old_sql, old_stmt] = lru_.back();
    cache_.erase(old_sql);
    sqlite3_finalize(old_stmt);
    lru_.pop_back();
  }
  lru_.emplace_front(sql, stmt);
  cache_.emplace(lru_.front().first, lru_.begin());
  return stmt;
}

core::Result<ResultSet> Connection::Run(const Statement& statement) {
  if (!db_) return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
  auto prepared = Prepare(statement.sql);
  if (!prepared) return std::unexpected(std::move(prepared.error()));
  sqlite3_stmt* stmt = *prepared;
  ResetOnExit reset{stmt};

  const int expected = sqlite3_bind_parameter_count(stmt);
  if (static_cast<std::size_t>(expected) != statement.params.size()) {
    return core::Fail(core::ErrorCode::kInternal, "database error",
                      "statement expects " + std::to_string(expected) + " parameters, got " +
                          std::to_string(statement.params.size()) + ": " + statement.sql);
  }
  for (std::size_t i = 0; i < statement.params.size(); ++i) {
    if (Bind(stmt, static_cast<int>(i + 1), statement.params[i]) != SQLITE_OK) return std::unexpected(LastError("bind"));
  }

  ResultSet result;
  const int columns = sqlite3_column_count(stmt);
  result.columns.reserve(static_cast<std::size_t>(columns));
  for (int i = 0; i < columns; ++i) result.columns.emplace_back(sqlite3_column_name(stmt, i));
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return std::unexpected(LastError("step"));
    std::vector<Value> row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int i = 0; i < columns; ++i) row.push_back(Column(stmt, i));
    result.rows.push_back(std::move(row));
  }
  // sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE: only meaningful for those.
  if (!sqlite3_stmt_readonly(stmt)) result.affected = sqlite3_changes64(db_);
  return result;
}

core::Result<void> Connection::Exec(const std::string& script) {
  if (!db_) return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
  char* message = nullptr;
  int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &message);
  std::unique_ptr<char, decltype(&sqlite3_free)> owned(message, &sqlite3_free);
  if (rc != SQLITE_OK) {
    return std::unexpected(MapError(sqlite3_extended_errcode(db_),
                                    std::string("exec: ") + (message ? message : sqlite3_errstr(rc))));
  }
  return {};
}

core::Result<void> Connection::Control(const char* sql) {
  if (!db_) return core::Fail(core::ErrorCode::kUnavailable, "database is closed");
  allow_control_ = true;
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  allow_control_ = false;
  std::unique_ptr<char, decltype(&sqlite3_free)> owned(message, &sqlite3_free);
  if (rc != SQLITE_OK) {
    return std::unexpected(MapError(sqlite3_extended_errcode(db_), std::string(sql) + ": " +
                                                                       (message ? message : sqlite3_errstr(rc))));
  }
  return {};
}

int Connection::Authorize(void* self, int action, const char*, const char*, const char*, const char*) {
  if ((action == SQLITE_TRANSACTION || action == SQLITE_SAVEPOINT) && !static_cast<Connection*>(self)->allow_control_) {
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

void Connection::GuardTransactionControl() { sqlite3_set_authorizer(db_, &Connection::Authorize, this); }

bool Connection::Autocommit() const { return db_ == nullptr || sqlite3_get_autocommit(db_) != 0; }

int Connection::DeferredForeignKeyViolations() const {
  int current = 0;
  int high = 0;
  if (db_) sqlite3_db_status(db_, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &high, 0);
  return current;
}

}  // namespace basalt::store::sqlite
