#include "audit/audit.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/strings.hpp"
#include "store/deferred.hpp"
#include "store/leader_queue.hpp"

namespace basalt::audit {
namespace {

using store::Statement;
using store::Value;

constexpr std::int64_t kVerifyPage = 1000;

// `changes` is stored as one text column: names joined by '\n' (names never contain one; a
// name that does is rejected by Append). Portable and trivially canonical.
std::string JoinChanges(const std::vector<std::string>& changes) { return core::Join(changes, "\n"); }

std::vector<std::string> SplitChanges(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const auto nl = text.find('\n', start);
    out.emplace_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string Text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return {};
}

std::int64_t Int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* s = std::get_if<std::string>(&v)) {
    try {
      return std::stoll(*s);
    } catch (...) {
    }
  }
  return 0;
}

constexpr std::string_view kColumns =
    "seq, id, at_ms, actor_kind, actor_id, action, target, outcome, ip, user_agent, request_id, changes, "
    "prev_hash, hash";

/// A row in kColumns order. Unknown kind/outcome names are kept verbatim for hashing through
/// `raw_kind`/`raw_outcome`, so a tampered name fails verification rather than the read.
struct RawRow {
  Record record;
  std::string raw_kind, raw_outcome, raw_changes;
};

RawRow ToRaw(const std::vector<Value>& r) {
  RawRow out;
  Record& rec = out.record;
  rec.sequence = Int(r[0]);
  rec.id = Text(r[1]);
  rec.time_ms = Int(r[2]);
  out.raw_kind = Text(r[3]);
  rec.entry.actor_kind = ParseActorKind(out.raw_kind).value_or(ActorKind::kSystem);
  rec.entry.actor_id = Text(r[4]);
  rec.entry.action = Text(r[5]);
  rec.entry.target = Text(r[6]);
  out.raw_outcome = Text(r[7]);
  rec.entry.outcome = ParseOutcome(out.raw_outcome).value_or(Outcome::kFailure);
  rec.entry.ip = Text(r[8]);
  rec.entry.user_agent = Text(r[9]);
  rec.entry.request_id = Text(r[10]);
  out.raw_changes = Text(r[11]);
  rec.entry.changes = SplitChanges(out.raw_changes);
  rec.prev_hash = Text(r[12]);
  rec.hash = Text(r[13]);
  return out;
}

std::string HashOf(const Record& r, std::string_view kind, std::string_view outcome,
                   const std::vector<std::string>& changes) {
  core::PartsHash h;
  h.Add("basalt-audit-v1");
  h.Add(r.sequence);
  h.Add(r.id);
  h.Add(r.time_ms);
  h.Add(kind);
  h.Add(r.entry.actor_id);
  h.Add(r.entry.action);
  h.Add(r.entry.target);
  h.Add(outcome);
  h.Add(r.entry.ip);
  h.Add(r.entry.user_agent);
  h.Add(r.entry.request_id);
  h.Add(static_cast<std::int64_t>(changes.size()));
  for (const auto& c : changes) h.Add(c);
  h.Add(r.prev_hash);
  return h.HexDigest();
}

core::Result<void> CheckChanges(const Entry& entry) {
  for (const auto& c : entry.changes) {
    if (c.find('\n') != std::string::npos || c.empty())
      return core::Fail(core::ErrorCode::kInternal, "An audit change name must be non-empty and on one line.");
  }
  return {};
}

/// Most entries one shared transaction appends (the rest wait for the next one).
constexpr std::size_t kMaxGroup = 128;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view Name(ActorKind kind) {
  switch (kind) {
    case ActorKind::kUser: return "user";
    case ActorKind::kApiKey: return "api_key";
    case ActorKind::kService: return "service";
    case ActorKind::kAdminToken: return "admin_token";
    case ActorKind::kSystem: return "system";
    case ActorKind::kAnonymous: return "anonymous";
  }
  return "system";
}

std::string_view Name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess: return "success";
    case Outcome::kFailure: return "failure";
    case Outcome::kDenied: return "denied";
  }
  return "failure";
}

std::optional<ActorKind> ParseActorKind(std::string_view name) {
  for (ActorKind k : {ActorKind::kUser, ActorKind::kApiKey, ActorKind::kService, ActorKind::kAdminToken,
                      ActorKind::kSystem, ActorKind::kAnonymous}) {
    if (Name(k) == name) return k;
  }
  return std::nullopt;
}

std::optional<Outcome> ParseOutcome(std::string_view name) {
  for (Outcome o : {Outcome::kSuccess, Outcome::kFailure, Outcome::kDenied}) {
    if (Name(o) == name) return o;
  }
  return std::nullopt;
}

std::string EntryHash(const Record& record) {
  return HashOf(record, Name(record.entry.actor_kind), Name(record.entry.outcome), record.entry.changes);
}

/// The group commit of Append(shard, entry) (see audit.hpp): one caller at a time leads a chain
/// transaction; callers arriving meanwhile queue with a pointer to their entry (it lives in their
/// suspended coroutine until they are woken) and are woken with their entry's result.
struct AuditLog::Group {
  store::LeaderQueue<const Entry*, core::Result<Record>> queue{1};
  std::atomic<std::uint64_t> transactions{0};
};

AuditLog::AuditLog(store::Database& database) : db_(database), group_(std::make_unique<Group>()) {
  const auto& d = db_.dialect();
  auto p = [&d](int n) { return d.Placeholder(n); };
  // The head row's lock serialises appenders until their transactions end (see audit.hpp). The
  // bump reserves as many sequences as the transaction appends entries.
  bump_ = "UPDATE basalt_audit_head SET seq = seq + " + p(1) + " WHERE id = 1 RETURNING seq, hash";
  insert_ = "INSERT INTO basalt_audit_log (" + std::string(kColumns) + ") VALUES (";
  for (int i = 1; i <= 14; ++i) insert_ += (i > 1 ? ", " : "") + p(i);
  insert_ += ")";
  set_head_ = "UPDATE basalt_audit_head SET hash = " + p(1) + " WHERE id = 1 AND seq = " + p(2);
  select_page_ = "SELECT " + std::string(kColumns) + " FROM basalt_audit_log WHERE seq > " + p(1) +
                 " AND seq <= " + p(2) + " ORDER BY seq LIMIT " + std::to_string(kVerifyPage);
  select_head_ = "SELECT seq, hash FROM basalt_audit_head WHERE id = 1";
}

AuditLog::~AuditLog() = default;

std::uint64_t AuditLog::own_transactions() const { return group_->transactions.load(); }

store::Task<core::Result<void>> AuditLog::AppendAll(store::Transaction& tx, const std::vector<const Entry*>& entries,
                                                    std::vector<Record>& out) {
  out.clear();  // Transact may run this again
  const auto n = static_cast<std::int64_t>(entries.size());
  Statement bump{bump_, {n}};
  auto head = co_await tx.Execute(std::move(bump));
  if (!head) co_return std::unexpected(std::move(head.error()));
  if (head->rows.size() != 1)
    co_return core::Fail(core::ErrorCode::kInternal, "The audit log head row is missing.",
                         "basalt_audit_head has no row with id 1");
  const std::int64_t last = Int(head->rows[0][0]);
  std::string prev = Text(head->rows[0][1]);
  std::int64_t sequence = last - n + 1;
  for (const Entry* entry : entries) {
    Record rec;
    rec.sequence = sequence++;
    rec.prev_hash = prev;
    rec.id = core::FormatUuid(core::NewUuidV7());
    rec.time_ms = NowMs();
    rec.entry = *entry;
    rec.hash = EntryHash(rec);
    prev = rec.hash;
    Statement insert{insert_,
                     {rec.sequence, rec.id, rec.time_ms, std::string(Name(rec.entry.actor_kind)), rec.entry.actor_id,
                      rec.entry.action, rec.entry.target, std::string(Name(rec.entry.outcome)), rec.entry.ip,
                      rec.entry.user_agent, rec.entry.request_id, JoinChanges(rec.entry.changes), rec.prev_hash,
                      rec.hash}};
    // No result is needed: on PostgreSQL the inserts and the head update travel with the
    // transaction's next statement or its COMMIT, so the head row (locked by the bump) is held
    // for one round trip, not 2 + N.
    auto inserted = co_await store::ExecuteDeferred(tx, std::move(insert));
    if (!inserted) co_return std::unexpected(std::move(inserted.error()));
    out.push_back(std::move(rec));
  }
  Statement set_head{set_head_, {prev, last}};
  auto moved = co_await store::ExecuteDeferred(tx, std::move(set_head));
  if (!moved) co_return std::unexpected(std::move(moved.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<Record>> AuditLog::Append(store::Transaction& tx, Entry entry) {
  if (auto valid = CheckChanges(entry); !valid) co_return std::unexpected(std::move(valid.error()));
  std::vector<const Entry*> entries;
  entries.push_back(&entry);
  std::vector<Record> out;
  auto done = co_await AppendAll(tx, entries, out);
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return std::move(out.front());
}

store::Task<core::Result<void>> AuditLog::AppendVoid(store::Transaction& tx, Entry entry) {
  auto r = co_await Append(tx, std::move(entry));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

store::TransactionWork AuditLog::AppendStep(Entry entry) {
  return [this, entry = std::move(entry)](store::Transaction& tx) { return AppendVoid(tx, entry); };
}

store::Task<std::vector<core::Result<Record>>> AuditLog::Commit(unsigned shard, std::vector<const Entry*> entries) {
  std::vector<core::Result<Record>> out;
  std::vector<Record> records;
  ++group_->transactions;
  auto done = co_await db_.Transact(
      shard, [this, &entries, &records](store::Transaction& tx) { return AppendAll(tx, entries, records); });
  if (done) {
    for (auto& r : records) out.emplace_back(std::move(r));
    co_return out;
  }
  if (entries.size() == 1) {
    out.emplace_back(std::unexpected(std::move(done.error())));
    co_return out;
  }
  // One entry the database refuses (say, bytes PostgreSQL does not take as UTF-8) must not cost
  // the others theirs: each again, alone.
  for (const Entry* entry : entries) {
    std::vector<const Entry*> one;
    one.push_back(entry);
    ++group_->transactions;
    auto alone = co_await db_.Transact(
        shard, [this, &one, &records](store::Transaction& tx) { return AppendAll(tx, one, records); });
    if (alone) {
      out.emplace_back(std::move(records.front()));
    } else {
      out.emplace_back(std::unexpected(std::move(alone.error())));
    }
  }
  co_return out;
}

store::Task<core::Result<Record>> AuditLog::Append(unsigned shard, Entry entry) {
  if (auto valid = CheckChanges(entry); !valid) co_return std::unexpected(std::move(valid.error()));
  auto& queue = group_->queue;
  // Behind the transaction in flight: woken with the result, or to lead the next one.
  if (auto settled = co_await queue.Enter(&entry)) co_return std::move(*settled);
  // This caller leads: one transaction for its entry and everything queued by now.
  auto waiters = queue.Take(kMaxGroup - 1);
  std::vector<const Entry*> entries;
  entries.reserve(waiters.size() + 1);
  entries.push_back(&entry);
  for (const auto& w : waiters) entries.push_back(w.item);
  std::vector<core::Result<Record>> results;
  try {
    results = co_await Commit(shard, std::move(entries));
  } catch (...) {
    results.clear();
  }
  // Whatever happened, every taken caller gets an answer and the turn passes on.
  while (results.size() < waiters.size() + 1)
    results.emplace_back(core::Fail(core::ErrorCode::kInternal, "The audit entry was not recorded.", "audit append threw"));
  for (std::size_t i = 0; i < waiters.size(); ++i) waiters[i].wake(std::move(results[i + 1]));
  queue.Leave();
  co_return std::move(results.front());
}

store::Task<core::Result<std::vector<Record>>> AuditLog::List(unsigned shard, ListQuery query) {
  const auto& d = db_.dialect();
  std::string sql = "SELECT " + std::string(kColumns) + " FROM basalt_audit_log";
  std::vector<Value> params;
  std::string where;
  auto add = [&](std::string_view column, Value value) {
    params.push_back(std::move(value));
    where += where.empty() ? " WHERE " : " AND ";
    where += std::string(column) + d.Placeholder(static_cast<int>(params.size()));
  };
  if (query.action) {
    if (query.action->ends_with(".*")) {
      // Prefix match without LIKE (whose case rules differ by backend): the length is a number
      // we computed, so it may be written into the SQL text.
      std::string prefix = query.action->substr(0, query.action->size() - 1);  // keeps the '.'
      const std::string column = "substr(action, 1, " + std::to_string(prefix.size()) + ") = ";
      add(column, std::move(prefix));
    } else {
      add("action = ", *query.action);
    }
  }
  if (query.actor_kind) add("actor_kind = ", std::string(Name(*query.actor_kind)));
  if (query.actor_id) add("actor_id = ", *query.actor_id);
  if (query.target) add("target = ", *query.target);
  if (query.outcome) add("outcome = ", std::string(Name(*query.outcome)));
  if (query.since_ms) add("at_ms >= ", *query.since_ms);
  if (query.until_ms) add("at_ms < ", *query.until_ms);
  if (query.before_sequence) add("seq < ", *query.before_sequence);
  const int limit = std::clamp(query.limit, 1, 1000);
  sql += where + " ORDER BY seq DESC LIMIT " + std::to_string(limit);
  Statement statement{std::move(sql), std::move(params)};
  auto rows = co_await db_.Query(shard, std::move(statement));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  std::vector<Record> out;
  out.reserve(rows->rows.size());
  for (const auto& r : rows->rows) out.push_back(ToRaw(r).record);
  co_return out;
}

store::Task<core::Result<VerifyReport>> AuditLog::Verify(unsigned shard) {
  VerifyReport report;
  Statement head_query{select_head_, {}};
  auto head = co_await db_.Query(shard, std::move(head_query));
  if (!head) co_return std::unexpected(std::move(head.error()));
  if (head->rows.size() != 1) {
    report.ok = false;
    report.reason = "the audit head row is missing";
    co_return report;
  }
  const std::int64_t head_seq = Int(head->rows[0][0]);
  const std::string head_hash = Text(head->rows[0][1]);

  std::int64_t expected = 1;
  std::string prev(kGenesisHash);
  auto fail = [&report](std::int64_t seq, std::string id, std::string reason) {
    report.ok = false;
    report.bad_sequence = seq;
    report.bad_id = std::move(id);
    report.reason = std::move(reason);
  };
  while (expected <= head_seq) {
    Statement page{select_page_, {expected - 1, head_seq}};
    auto rows = co_await db_.Query(shard, std::move(page));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    if (rows->rows.empty()) {
      fail(expected, "", "entry " + std::to_string(expected) + " is missing (deleted)");
      co_return report;
    }
    for (const auto& row : rows->rows) {
      const RawRow raw = ToRaw(row);
      const Record& rec = raw.record;
      if (rec.sequence != expected) {
        fail(expected, "", "entry " + std::to_string(expected) + " is missing (deleted)");
        co_return report;
      }
      if (rec.prev_hash != prev) {
        fail(rec.sequence, rec.id,
             "entry " + std::to_string(rec.sequence) + " does not link to the entry before it (deleted, inserted or reordered)");
        co_return report;
      }
      if (HashOf(rec, raw.raw_kind, raw.raw_outcome, SplitChanges(raw.raw_changes)) != rec.hash) {
        fail(rec.sequence, rec.id, "entry " + std::to_string(rec.sequence) + " was edited (its hash does not match)");
        co_return report;
      }
      prev = rec.hash;
      ++expected;
      ++report.count;
    }
  }
  if (prev != head_hash) {
    fail(head_seq, "", "the last entry (" + std::to_string(head_seq) + ") does not match the chain head");
    co_return report;
  }
  co_return report;
}

std::vector<store::Migration> Migrations() {
  return {{.version = 700,
           .name = "audit log",
           .up = "CREATE TABLE basalt_audit_log ("
                 " seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, at_ms BIGINT NOT NULL,"
                 " actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
                 " outcome TEXT NOT NULL, ip TEXT NOT NULL, user_agent TEXT NOT NULL, request_id TEXT NOT NULL,"
                 " changes TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
                 "CREATE INDEX basalt_audit_log_action ON basalt_audit_log (action, seq);"
                 "CREATE INDEX basalt_audit_log_actor ON basalt_audit_log (actor_id, seq);"
                 "CREATE INDEX basalt_audit_log_target ON basalt_audit_log (target, seq);"
                 "CREATE INDEX basalt_audit_log_time ON basalt_audit_log (at_ms);"
                 "CREATE TABLE basalt_audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);"
                 "INSERT INTO basalt_audit_head (id, seq, hash) VALUES (1, 0, '" +
                 std::string(kGenesisHash) + "');",
           .down = "DROP TABLE basalt_audit_head; DROP TABLE basalt_audit_log;"}};
}

}  // namespace basalt::audit
