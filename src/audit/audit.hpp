#pragma once
/// The audit log: an append-only, hash-chained record of sensitive actions (logins, lockouts,
/// token reuse, schema and rule changes, admin-token use, configuration reloads...).
///
/// Storage: `basalt_audit_log` (one row per entry, ordered by `sequence`, 1, 2, 3... with no gap)
/// and `basalt_audit_head` (one row: the last sequence and its hash). Every entry carries
/// `prev_hash` (the previous entry's hash; 64 zeros for the first) and `hash` = SHA-256 over a
/// canonical serialisation of the entry and `prev_hash` (see EntryHash), so editing, deleting or
/// reordering rows breaks the chain, and Verify finds the first bad entry.
///
/// Concurrency: an append first runs `UPDATE basalt_audit_head SET sequence = sequence + 1 ...
/// RETURNING`, which takes the head row's lock until its transaction ends. Appenders (threads,
/// or several instances sharing one PostgreSQL) therefore queue on that row and each sees the
/// hash its predecessor committed; a rolled-back transaction takes its sequence back with it, so
/// there are no gaps. On SQLite the single writer serialises anyway. Appending inside a longer
/// transaction holds that lock until it commits: append last.
///
/// Group commit: the lock is held through the commit's flush, so one appender at a time would
/// mean one fsync per entry. `Append(shard, entry)` therefore shares transactions between
/// concurrent callers of one AuditLog (one process): while a chain transaction is in flight,
/// entries arriving queue up, and the next transaction appends all of them (one head bump by N,
/// N rows with consecutive sequences, each linked to the one before, one commit). Every caller
/// still returns only after the transaction holding its entry committed. If such a shared
/// transaction fails, each of its entries is tried again alone, so one entry the database refuses
/// costs no other entry. Appends inside a caller's transaction (`Append(tx, ...)`, AppendStep)
/// are never shared: they commit or roll back with that transaction.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

namespace basalt::audit {

/// Who acted.
enum class ActorKind {
  kUser,        ///< A user's session (JWT).
  kApiKey,      ///< An API key, acting for its owner.
  kService,     ///< An OAuth2 client (client credentials).
  kAdminToken,  ///< `auth.admin_token` (automation).
  kSystem,      ///< Basalt itself (start-up, configuration reload, CLI).
  kAnonymous,   ///< No credentials (e.g. a failed login).
};

/// How the action ended.
enum class Outcome {
  kSuccess,  ///< It happened.
  kFailure,  ///< It was attempted and failed (bad password, invalid input...).
  kDenied,   ///< The actor was not allowed (403, lockout, rate limit).
};

/// "user", "api_key", "service", "admin_token", "system", "anonymous".
std::string_view Name(ActorKind kind);
/// "success", "failure", "denied".
std::string_view Name(Outcome outcome);
/// Inverse of Name; nullopt for an unknown name.
std::optional<ActorKind> ParseActorKind(std::string_view name);
std::optional<Outcome> ParseOutcome(std::string_view name);

/// What the caller records. Strings are stored as given (the API layer truncates client-supplied
/// ones such as the user agent). Never put secret values here: `changes` holds field NAMES only.
struct Entry {
  ActorKind actor_kind = ActorKind::kSystem;
  std::string actor_id;    ///< User id, API key id, client id; "" for admin_token/system/anonymous.
  std::string action;      ///< Dotted verb: "auth.login", "collection.updated", "admin_token.used".
  std::string target;      ///< What it acted on: "collection:posts", "user:0192...", "POST /api/v1/...".
  Outcome outcome = Outcome::kSuccess;
  std::string ip;          ///< Client address; "" when none (CLI, system).
  std::string user_agent;  ///< "" when none.
  std::string request_id;  ///< "" when not from a request.
  std::vector<std::string> changes;  ///< Names of changed fields/settings ("fields.title", "rules.list").
};

/// A stored entry.
struct Record {
  std::int64_t sequence = 0;  ///< 1, 2, 3...: the chain order.
  std::string id;             ///< UUIDv7.
  std::int64_t time_ms = 0;   ///< Unix milliseconds (UTC) when appended.
  Entry entry;
  std::string prev_hash;      ///< 64 lower-case hex digits.
  std::string hash;           ///< 64 lower-case hex digits.
};

/// The SHA-256 (64 lower-case hex digits) of a record's canonical serialisation: the tag
/// "basalt-audit-v1", then sequence, id, time_ms, actor kind, actor id, action, target, outcome,
/// ip, user agent, request id, the number of changes and each change, and prev_hash, each written
/// as "<byte length>:<bytes>" (integers in decimal), so no two different records share an input.
std::string EntryHash(const Record& record);

/// `prev_hash` of the first entry: 64 zeros.
inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

/// Filters of List; every set field must match (AND).
struct ListQuery {
  std::optional<std::string> action;      ///< Exact, or a prefix when it ends with ".*" ("auth.*").
  std::optional<ActorKind> actor_kind;
  std::optional<std::string> actor_id;    ///< Exact.
  std::optional<std::string> target;      ///< Exact.
  std::optional<Outcome> outcome;
  std::optional<std::int64_t> since_ms;   ///< time_ms >= since_ms.
  std::optional<std::int64_t> until_ms;   ///< time_ms < until_ms.
  std::optional<std::int64_t> before_sequence;  ///< Keyset cursor: sequence < before_sequence.
  int limit = 50;                          ///< 1..1000 (clamped).
};

/// The result of Verify.
struct VerifyReport {
  bool ok = true;
  std::int64_t count = 0;          ///< Entries checked (all of them when ok).
  std::int64_t bad_sequence = 0;   ///< When !ok: the first entry that does not verify (or the missing one).
  std::string bad_id;              ///< Its id, when the row exists.
  std::string reason;              ///< When !ok: what is wrong, for people.
};

/// The audit log over one database. Thread-safe; holds a reference to `database`, which must
/// outlive it.
class AuditLog {
 public:
  explicit AuditLog(store::Database& database);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Appends `entry` in a transaction of its own or shared with concurrent calls (group commit,
  /// see the Concurrency note above); durable when this returns. Resumes the caller on its own
  /// executor. Errors: an invalid change name; database errors.
  store::Task<core::Result<Record>> Append(unsigned shard, Entry entry);

  /// Transactions run so far by `Append(shard, entry)` (a shared one counts once; a retry of one
  /// entry alone counts too). Fewer than the entries appended means appends were grouped.
  std::uint64_t own_transactions() const;

  struct Group;  ///< Implementation detail: the group commit queue of Append(shard, entry).

  /// Appends `entry` inside `tx`, so an action and its audit entry commit (or roll back) together.
  /// Call it last in the transaction: it holds the chain's lock until commit.
  store::Task<core::Result<Record>> Append(store::Transaction& tx, Entry entry);

  /// A transaction step that appends `entry` (for APIs taking a store::TransactionWork, e.g.
  /// schema::Catalog's `also`). The returned function owns a copy of `entry`.
  store::TransactionWork AppendStep(Entry entry);

  /// Entries matching `query`, newest first (by decreasing sequence), at most query.limit.
  store::Task<core::Result<std::vector<Record>>> List(unsigned shard, ListQuery query);

  /// Walks the whole chain from sequence 1 and checks each entry's hash, its link to the previous
  /// entry, that sequences have no gap, and that the last entry is the one the head row names
  /// (so a deleted last entry is found too). Appends running meanwhile are not an error: entries
  /// after the head read first are not looked at.
  store::Task<core::Result<VerifyReport>> Verify(unsigned shard);

 private:
  store::Task<core::Result<void>> AppendVoid(store::Transaction& tx, Entry entry);
  /// Appends `entries` in order inside `tx` (one head bump by their number); fills `out`.
  store::Task<core::Result<void>> AppendAll(store::Transaction& tx, const std::vector<const Entry*>& entries,
                                            std::vector<Record>& out);
  /// Runs one transaction appending `entries`; on failure with several, each alone.
  store::Task<std::vector<core::Result<Record>>> Commit(unsigned shard, std::vector<const Entry*> entries);

  store::Database& db_;
  std::unique_ptr<Group> group_;
  std::string bump_, insert_, set_head_, select_page_, select_head_;
};

/// The system migrations of audit/ (versions 700..749): the log and its head row. Portable SQL.
std::vector<store::Migration> Migrations();

}  // namespace basalt::audit
