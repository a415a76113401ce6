/// The queue engine over store::Database. Storage (system migration 900, both backends):
///  - basalt_queues: one row of settings per queue.
///  - basalt_queue_messages: every message; `state` (0 ready, 1 leased, 2 completed, 3 dead) and
///    one time column, `visible_at`, whose meaning follows the state: ready -> claimable from;
///    leased -> lease expiry; completed / dead -> when that happened. Claims read the partial
///    index (queue, priority DESC, seq, visible_at) WHERE state < 2: highest priority, then oldest
///    (`seq` is creation order); an expired lease is simply a leased row whose visible_at passed.
///  - basalt_queue_counters: produced/acked/nacked/failed, spread over 8 slots per queue so that
///    concurrent PostgreSQL transactions rarely wait on one counter row.
/// Durability: produce, settings and replay commit durably (Database::Transact: fsync before the
/// answer). Claims, acks, nacks, releases and extends use store::TransactRelaxed (no wait for the
/// disk): they survive a crash of Basalt, and an OS crash or power cut can only undo the last of
/// them, which puts those messages back to their earlier state (ready, or leased under a lease that
/// runs out), so they are delivered again: at-least-once holds and no produced message is lost.
/// Waking long-polls: every transaction that makes a message claimable calls
/// Transaction::Notify("basalt_queue", <queue>); the Listen callback bumps the queue's generation
/// and cancels the waiters' timers on their own executors. A waiter takes the generation before
/// its claim and only sleeps if it is unchanged, so a produce committed in between is not missed.

#include "queue/engine.hpp"

#include <openssl/rand.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>

#include "core/ids.hpp"
#include "store/deferred.hpp"

namespace basalt::queue {
namespace {

namespace asio = boost::asio;
using core::ErrorCode;
using store::Statement;
using store::Value;

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kChannel = "basalt_queue";
constexpr std::int64_t kCounterSlots = 8;
constexpr std::int64_t kPurgeChunk = 1000;
constexpr auto kSettingsTtl = std::chrono::milliseconds(1000);
constexpr std::int64_t kSweepIntervalMs = 1000;
/// Row counts of multi-row statements: a batch is split into chunks of these sizes so that only a
/// few distinct statements are ever prepared per connection.
constexpr std::size_t kChunks[] = {128, 64, 32, 16, 8, 4, 2, 1};

std::int64_t Int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
  return 0;
}
std::string Text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

/// "?N" -> the dialect's placeholder.
std::string Adapt(const store::Dialect& d, std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '?' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      std::size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) n = n * 10 + (sql[j++] - '0');
      out += d.Placeholder(n);
      i = j - 1;
    } else {
      out += sql[i];
    }
  }
  return out;
}

/// "?a, ?a+1, ..." for `count` placeholders starting at `first`.
std::string PlaceholderList(const store::Dialect& d, int first, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i) out += ", ";
    out += d.Placeholder(first + static_cast<int>(i));
  }
  return out;
}

std::string RandomToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    const auto id = core::NewUuidV7();  // Never expected; still unpredictable enough for a lease.
    std::copy(id.begin(), id.end(), bytes);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::int64_t RandomBelow(std::int64_t bound) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (bound <= 0) return 0;
  return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(bound));
}

/// Creation order across one process: milliseconds, then a counter (2^20 per millisecond).
std::int64_t NextSeq(std::int64_t now) {
  static std::atomic<std::uint64_t> counter{0};
  return now * 1'048'576 + static_cast<std::int64_t>(counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFF);
}

core::Error Invalid(std::string field, std::string code, std::string message) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The request is invalid.");
  e.fields.push_back({std::move(field), std::move(code), std::move(message)});
  return e;
}

std::unexpected<core::Error> NoQueue() { return core::Fail(ErrorCode::kNotFound, "No such queue."); }
std::unexpected<core::Error> NoMessage() { return core::Fail(ErrorCode::kNotFound, "No such message in this queue."); }
std::unexpected<core::Error> Stale() {
  return core::Fail(ErrorCode::kConflict,
                    "The lease token is stale: the message is not leased with it (expired and claimed again, or "
                    "already acked or nacked).");
}

QueueInfo RowToInfo(const std::vector<Value>& row) {
  QueueInfo q;
  q.name = Text(row[0]);
  q.settings.max_attempts = Int(row[1]);
  q.settings.backoff_min_ms = Int(row[2]);
  q.settings.backoff_max_ms = Int(row[3]);
  q.settings.lease_ms = Int(row[4]);
  q.settings.retention_ms = Int(row[5]);
  q.settings.dead_letter = Int(row[6]) != 0;
  q.created_at = Int(row[7]);
  q.updated_at = Int(row[8]);
  return q;
}
constexpr std::string_view kQueueColumns =
    "name, max_attempts, backoff_min_ms, backoff_max_ms, lease_ms, retention_ms, dead_letter, created_at, updated_at";

/// A long-poll waiting on its own executor; woken by cancelling its timer there.
struct Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
};

/// Waiters per queue and a generation per queue (plus a global one for "wake everything").
class WaitRegistry {
 public:
  std::uint64_t Generation(const std::string& queue) {
    std::lock_guard lock(mutex_);
    return global_ + queues_[queue].generation;
  }
  /// Adds `waiter` unless the generation moved since `generation` was read (then false: look again).
  bool Register(const std::string& queue, std::uint64_t generation, std::shared_ptr<Waiter> waiter) {
    std::lock_guard lock(mutex_);
    auto& q = queues_[queue];
    if (stopping_ || global_ + q.generation != generation) return false;
    q.waiters.push_back(std::move(waiter));
    return true;
  }
  void Remove(const std::string& queue, const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(queue);
    if (it == queues_.end()) return;
    std::erase(it->second.waiters, waiter);
  }
  void Wake(std::string_view queue) {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(std::string(queue));
    if (it == queues_.end()) return;  // Nobody ever waited here: nothing to wake.
    ++it->second.generation;
    WakeLocked(it->second);
  }
  void WakeAll(bool stop) {
    std::lock_guard lock(mutex_);
    ++global_;
    if (stop) stopping_ = true;
    for (auto& [name, q] : queues_) WakeLocked(q);
  }
  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }
  std::int64_t Waiting(const std::string& queue) {
    std::lock_guard lock(mutex_);
    auto it = queues_.find(queue);
    return it == queues_.end() ? 0 : static_cast<std::int64_t>(it->second.waiters.size());
  }

 private:
  struct PerQueue {
    std::uint64_t generation = 0;
    std::vector<std::shared_ptr<Waiter>> waiters;
  };
  static void WakeLocked(PerQueue& q) {
    for (auto& w : q.waiters) {
      asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    }
    q.waiters.clear();
  }
  std::mutex mutex_;
  std::unordered_map<std::string, PerQueue> queues_;
  std::uint64_t global_ = 0;
  bool stopping_ = false;
};

/// Validates a batch for Produce; field names as in the HTTP body.
core::Result<void> ValidateMessages(const std::vector<NewMessage>& messages) {
  if (messages.empty()) return std::unexpected(Invalid("messages", "required", "at least one message is required"));
  if (messages.size() > kMaxBatch) {
    return core::Fail(ErrorCode::kPayloadTooLarge, "At most 1000 messages per request.");
  }
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The request is invalid.");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "].";
    if (m.priority < 0 || m.priority > kMaxPriority) e.fields.push_back({at + "priority", "out_of_range", "must be 0 to 9"});
    if (m.delay_ms < 0) e.fields.push_back({at + "delay_ms", "out_of_range", "must be >= 0"});
    if (m.available_at && *m.available_at < 0) e.fields.push_back({at + "available_at", "out_of_range", "must be after 1970"});
    if (m.idempotency_key.size() > kMaxIdempotencyKey)
      e.fields.push_back({at + "idempotency_key", "too_long", "at most 255 bytes"});
    if (m.payload.empty()) e.fields.push_back({at + "payload", "required", "a JSON payload is required"});
  }
  if (!e.fields.empty()) return std::unexpected(std::move(e));
  return {};
}

/// Everything one claim transaction needs and returns.
struct ClaimJob {
  std::string queue;
  std::int64_t now = 0;
  std::int64_t max = 0;
  std::int64_t lease_until = 0;
  std::string token;
  QueueSettings settings;
  std::vector<Message> claimed;
  std::vector<std::int64_t> seqs;
};

struct ProduceJob {
  std::string queue;
  std::vector<NewMessage> messages;
  std::int64_t now = 0;
  bool create_queue = true;
  std::vector<Produced> results;
};

struct AckJob {
  std::string queue;
  std::vector<AckItem> items;
  bool remove = false;  ///< retention 0: delete instead of completing.
  std::int64_t now = 0;
  std::vector<AckOutcome> outcomes;
};

struct NackJob {
  std::string queue, id, token, error;
  std::optional<std::int64_t> delay_ms;
  QueueSettings settings;
  std::int64_t now = 0;
  NackOutcome outcome = NackOutcome::kRetried;
  std::optional<core::Error> failure;
};

}  // namespace

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ValidQueueName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const bool alnum = std::isalnum(c) != 0;
    if (i == 0 && !alnum) return false;
    if (!alnum && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

core::Result<void> ValidateSettings(const QueueSettings& s) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The queue settings are invalid.");
  if (s.max_attempts < 1 || s.max_attempts > 1000) e.fields.push_back({"max_attempts", "out_of_range", "must be 1 to 1000"});
  if (s.backoff_min_ms < 0 || s.backoff_min_ms > 86'400'000)
    e.fields.push_back({"backoff_min_ms", "out_of_range", "must be 0 to 86400000"});
  if (s.backoff_max_ms < s.backoff_min_ms || s.backoff_max_ms > 86'400'000)
    e.fields.push_back({"backoff_max_ms", "out_of_range", "must be backoff_min_ms to 86400000"});
  if (s.lease_ms < 100 || s.lease_ms > 43'200'000) e.fields.push_back({"lease_ms", "out_of_range", "must be 100 to 43200000"});
  if (s.retention_ms < 0 || s.retention_ms > 31'536'000'000)
    e.fields.push_back({"retention_ms", "out_of_range", "must be 0 to 31536000000 (a year)"});
  if (!e.fields.empty()) return std::unexpected(std::move(e));
  return {};
}

class Engine::Impl {
 public:
  explicit Impl(store::Database& db) : db_(db), d_(db.dialect()) {
    const std::string skip(d_.SkipLockedClause());
    select_queue_ = A("SELECT " + std::string(kQueueColumns) + " FROM basalt_queues WHERE name = ?1");
    list_queues_ = A("SELECT " + std::string(kQueueColumns) + " FROM basalt_queues ORDER BY name");
    create_queue_ = A(
        "INSERT INTO basalt_queues (" + std::string(kQueueColumns) +
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (name) DO NOTHING");
    update_queue_ = A(
        "UPDATE basalt_queues SET max_attempts = ?2, backoff_min_ms = ?3, backoff_max_ms = ?4, lease_ms = ?5, "
        "retention_ms = ?6, dead_letter = ?7, updated_at = ?8 WHERE name = ?1");
    insert_keyed_ = A(
        "INSERT INTO basalt_queue_messages (id, queue, state, priority, seq, visible_at, attempt, payload, headers, "
        "idempotency_key, created_at) VALUES (?1, ?2, 0, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id");
    find_key_ = A("SELECT id FROM basalt_queue_messages WHERE queue = ?1 AND idempotency_key = ?2");
    for (std::size_t n : kChunks) {
      std::string sql =
          "INSERT INTO basalt_queue_messages (id, queue, state, priority, seq, visible_at, attempt, payload, headers, "
          "created_at) VALUES ";
      for (std::size_t r = 0; r < n; ++r) {
        const int b = 2 + static_cast<int>(r) * 6;
        if (r) sql += ", ";
        sql += "(" + d_.Placeholder(b) + ", " + d_.Placeholder(1) + ", 0, " + d_.Placeholder(b + 1) + ", " +
               d_.Placeholder(b + 2) + ", " + d_.Placeholder(b + 3) + ", 0, " + d_.Placeholder(b + 4) + ", " +
               d_.Placeholder(b + 5) + ", " + d_.Placeholder(b + 2) + " / 1048576)";
      }
      insert_chunk_[n] = std::move(sql);
      ack_chunk_[n] = "UPDATE basalt_queue_messages SET state = 2, visible_at = " + d_.Placeholder(3) +
                      ", lease_token = NULL WHERE queue = " + d_.Placeholder(1) + " AND state = 1 AND lease_token = " +
                      d_.Placeholder(2) + " AND id IN (" + PlaceholderList(d_, 4, n) + ") RETURNING id";
      delete_chunk_[n] = "DELETE FROM basalt_queue_messages WHERE queue = " + d_.Placeholder(1) +
                         " AND state = 1 AND lease_token = " + d_.Placeholder(2) + " AND id IN (" +
                         PlaceholderList(d_, 4, n) + ") AND " + d_.Placeholder(3) + " >= 0 RETURNING id";
    }
    counters_ = A(
        "INSERT INTO basalt_queue_counters (queue, slot, produced, acked, nacked, failed) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6) ON CONFLICT (queue, slot) DO UPDATE SET produced = basalt_queue_counters.produced + excluded.produced, "
        "acked = basalt_queue_counters.acked + excluded.acked, nacked = basalt_queue_counters.nacked + "
        "excluded.nacked, failed = basalt_queue_counters.failed + excluded.failed");
    expire_dead_ = A(
        "UPDATE basalt_queue_messages SET state = 3, visible_at = ?2, lease_token = NULL, last_error = 'lease expired' "
        "WHERE queue = ?1 AND state = 1 AND visible_at <= ?2 AND attempt >= ?3");
    expire_drop_ = A("DELETE FROM basalt_queue_messages WHERE queue = ?1 AND state = 1 AND visible_at <= ?2 AND attempt >= ?3");
    claim_ = A(
        "UPDATE basalt_queue_messages SET state = 1, attempt = attempt + 1, lease_token = ?1, visible_at = ?2 "
        "WHERE id IN (SELECT id FROM basalt_queue_messages" +
        // In (priority, seq) order straight from the claim index, never a sort of the whole backlog.
        store::UseIndex(d_, "basalt_queue_messages_claim") + " WHERE queue = ?3 AND state < 2 AND visible_at <= ?4 "
        "AND (state = 0 OR attempt < ?5) ORDER BY priority DESC, seq LIMIT ?6" +
        skip + ") RETURNING id, payload, headers, priority, attempt, created_at, last_error, idempotency_key, seq");
    next_visible_ = A(
        "SELECT (SELECT MIN(visible_at) FROM basalt_queue_messages WHERE queue = ?1 AND state = 0 AND visible_at > ?2), "
        "(SELECT MIN(visible_at) FROM basalt_queue_messages WHERE queue = ?1 AND state = 1 AND visible_at > ?2)");
    delete_one_ = A(
        "DELETE FROM basalt_queue_messages WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    message_state_ = A("SELECT state FROM basalt_queue_messages WHERE id = ?1 AND queue = ?2");
    peek_ = A(
        "SELECT id, payload, headers, priority, attempt, created_at, last_error, visible_at, idempotency_key, state "
        "FROM basalt_queue_messages WHERE id = ?1 AND queue = ?2");
    leased_attempt_ = A(
        "SELECT attempt FROM basalt_queue_messages WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    retry_ = A(
        "UPDATE basalt_queue_messages SET state = 0, visible_at = ?4, lease_token = NULL, last_error = ?5 "
        "WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    kill_ = A(
        "UPDATE basalt_queue_messages SET state = 3, visible_at = ?4, lease_token = NULL, last_error = ?5 "
        "WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    release_ = A(
        "UPDATE basalt_queue_messages SET state = 0, attempt = CASE WHEN attempt > 0 THEN attempt - 1 ELSE 0 END, "
        "visible_at = ?4, lease_token = NULL WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    extend_ = A(
        "UPDATE basalt_queue_messages SET visible_at = ?4 WHERE id = ?1 AND queue = ?2 AND state = 1 AND lease_token = ?3");
    dead_page_ = A(
        "SELECT id, payload, headers, priority, attempt, created_at, last_error, visible_at, idempotency_key "
        "FROM basalt_queue_messages WHERE queue = ?1 AND state = 3 AND (visible_at > ?2 OR (visible_at = ?2 AND id > ?3)) "
        "ORDER BY visible_at, id LIMIT ?4");
    replay_dead_one_ = A(
        "UPDATE basalt_queue_messages SET state = 0, attempt = 0, visible_at = ?3 WHERE id = ?1 AND queue = ?2 AND state = 3");
    replay_dead_all_ = A(
        "UPDATE basalt_queue_messages SET state = 0, attempt = 0, visible_at = ?2 WHERE queue = ?1 AND state = 3");
    replay_done_one_ = A(
        "UPDATE basalt_queue_messages SET state = 0, attempt = 0, visible_at = ?3, last_error = NULL WHERE id = ?1 AND "
        "queue = ?2 AND state = 2");
    replay_done_range_ = A(
        "UPDATE basalt_queue_messages SET state = 0, attempt = 0, visible_at = ?4, last_error = NULL WHERE queue = ?1 "
        "AND state = 2 AND visible_at >= ?2 AND visible_at < ?3");
    stats_ = A(
        "SELECT state, COUNT(*), MIN(visible_at), SUM(CASE WHEN visible_at > ?2 THEN 1 ELSE 0 END) "
        "FROM basalt_queue_messages WHERE queue = ?1 GROUP BY state");
    stats_counters_ = A(
        "SELECT SUM(produced), SUM(acked), SUM(nacked), SUM(failed) FROM basalt_queue_counters WHERE queue = ?1");
    purge_ = A(
        "DELETE FROM basalt_queue_messages WHERE id IN (SELECT id FROM basalt_queue_messages WHERE queue = ?1 AND "
        "state = 2 AND visible_at < ?2 LIMIT ?3" + skip + ")");
    notify_subscription_ = db_.Listen(std::string(kChannel), [this](std::string_view payload, bool lost) {
      if (lost) {
        waits_.WakeAll(false);
      } else {
        waits_.Wake(payload);
      }
    });
  }

  ~Impl() { notify_subscription_.reset(); }

  std::string A(std::string_view sql) const { return Adapt(d_, sql); }

  // ---- queues ----

  Task<core::Result<std::optional<QueueInfo>>> Load(unsigned shard, const std::string& queue) {
    Statement st{select_queue_, {queue}};
    auto rows = co_await db_.Query(shard, std::move(st));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    if (rows->rows.empty()) co_return std::optional<QueueInfo>{};
    QueueInfo info = RowToInfo(rows->rows[0]);
    Remember(info);
    co_return std::optional<QueueInfo>(std::move(info));
  }

  void Remember(const QueueInfo& info) {
    std::lock_guard lock(cache_mutex_);
    cache_[info.name] = CacheEntry{info.settings, std::chrono::steady_clock::now(), true};
  }

  /// The queue's settings (defaults for a queue that does not exist yet), cached briefly.
  Task<core::Result<QueueSettings>> SettingsFor(unsigned shard, const std::string& queue) {
    {
      std::lock_guard lock(cache_mutex_);
      auto it = cache_.find(queue);
      if (it != cache_.end() && std::chrono::steady_clock::now() - it->second.loaded < kSettingsTtl) {
        co_return it->second.settings;
      }
    }
    auto loaded = co_await Load(shard, queue);
    if (!loaded) co_return std::unexpected(std::move(loaded.error()));
    if (*loaded) co_return (*loaded)->settings;
    std::lock_guard lock(cache_mutex_);
    cache_[queue] = CacheEntry{QueueSettings{}, std::chrono::steady_clock::now(), false};
    co_return QueueSettings{};
  }

  bool Known(const std::string& queue) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(queue);
    return it != cache_.end() && it->second.exists;
  }

  Task<core::Result<void>> PutBody(store::Transaction& tx, const std::string& queue, const QueueSettings& s,
                                   std::int64_t now, bool& created) {
    Statement insert{create_queue_,
                     {queue, s.max_attempts, s.backoff_min_ms, s.backoff_max_ms, s.lease_ms, s.retention_ms,
                      static_cast<std::int64_t>(s.dead_letter ? 1 : 0), now}};
    auto inserted = co_await tx.Execute(std::move(insert));
    if (!inserted) co_return std::unexpected(std::move(inserted.error()));
    created = inserted->affected > 0;
    if (!created) {
      Statement update{update_queue_,
                       {queue, s.max_attempts, s.backoff_min_ms, s.backoff_max_ms, s.lease_ms, s.retention_ms,
                        static_cast<std::int64_t>(s.dead_letter ? 1 : 0), now}};
      auto updated = co_await tx.Execute(std::move(update));
      if (!updated) co_return std::unexpected(std::move(updated.error()));
    }
    // Waiters recompute with the new settings (a longer max_attempts may make messages claimable).
    co_return co_await tx.Notify(std::string(kChannel), queue);
  }

  // ---- produce ----

  Task<core::Result<void>> ProduceBody(store::Transaction& tx, ProduceJob& job) {
    if (job.create_queue) {
      const QueueSettings s;
      Statement insert{create_queue_,
                       {job.queue, s.max_attempts, s.backoff_min_ms, s.backoff_max_ms, s.lease_ms, s.retention_ms,
                        static_cast<std::int64_t>(1), job.now}};
      auto inserted = co_await tx.Execute(std::move(insert));
      if (!inserted) co_return std::unexpected(std::move(inserted.error()));
    }
    const std::size_t count = job.messages.size();
    job.results.assign(count, Produced{});
    // Ids in creation order (UUIDv7 text sorts by time; sorting a batch keeps it monotonic).
    std::vector<std::string> ids(count);
    for (auto& id : ids) id = core::FormatUuid(core::NewUuidV7());
    std::sort(ids.begin(), ids.end());
    std::vector<std::size_t> plain;
    plain.reserve(count);
    std::int64_t created = 0;
    for (std::size_t i = 0; i < count; ++i) {
      NewMessage& m = job.messages[i];
      if (m.idempotency_key.empty()) {
        plain.push_back(i);
        continue;
      }
      const std::int64_t visible = m.available_at ? *m.available_at : job.now + m.delay_ms;
      Value headers = m.headers.empty() ? Value(store::Null{}) : Value(m.headers);
      Statement insert{insert_keyed_,
                       {ids[i], job.queue, static_cast<std::int64_t>(m.priority), NextSeq(job.now), visible,
                        m.payload, std::move(headers), m.idempotency_key, job.now}};
      auto inserted = co_await tx.Execute(std::move(insert));
      if (!inserted) co_return std::unexpected(std::move(inserted.error()));
      if (!inserted->rows.empty()) {
        job.results[i] = Produced{ids[i], false};
        ++created;
        continue;
      }
      Statement find{find_key_, {job.queue, m.idempotency_key}};
      auto found = co_await tx.Execute(std::move(find));
      if (!found) co_return std::unexpected(std::move(found.error()));
      if (found->rows.empty()) {
        co_return core::Fail(ErrorCode::kConflict, "A concurrent produce used the same idempotency key; retry.");
      }
      job.results[i] = Produced{Text(found->rows[0][0]), true};
    }
    std::size_t next = 0;
    while (next < plain.size()) {
      std::size_t n = 1;
      for (std::size_t c : kChunks) {
        if (plain.size() - next >= c) {
          n = c;
          break;
        }
      }
      Statement insert{insert_chunk_[n], {}};
      insert.params.reserve(1 + n * 6);
      insert.params.emplace_back(job.queue);
      for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = plain[next + r];
        NewMessage& m = job.messages[i];
        const std::int64_t visible = m.available_at ? *m.available_at : job.now + m.delay_ms;
        insert.params.emplace_back(ids[i]);
        insert.params.emplace_back(static_cast<std::int64_t>(m.priority));
        insert.params.emplace_back(NextSeq(job.now));
        insert.params.emplace_back(visible);
        insert.params.emplace_back(std::move(m.payload));
        if (m.headers.empty()) {
          insert.params.emplace_back(store::Null{});
        } else {
          insert.params.emplace_back(std::move(m.headers));
        }
        job.results[i] = Produced{ids[i], false};
      }
      // No result needed: on PostgreSQL it goes out with the next statement or with COMMIT.
      auto inserted = co_await store::ExecuteDeferred(tx, std::move(insert));
      if (!inserted) co_return std::unexpected(std::move(inserted.error()));
      created += static_cast<std::int64_t>(n);
      next += n;
    }
    if (created > 0) {
      if (auto counted = co_await Count(tx, job.queue, created, 0, 0, 0); !counted) co_return counted;
      if (auto notified = co_await tx.Notify(std::string(kChannel), job.queue); !notified) co_return notified;
    }
    co_return core::Result<void>{};
  }

  Task<core::Result<void>> Count(store::Transaction& tx, const std::string& queue, std::int64_t produced,
                                 std::int64_t acked, std::int64_t nacked, std::int64_t failed) {
    Statement st{counters_, {queue, RandomBelow(kCounterSlots), produced, acked, nacked, failed}};
    co_return co_await store::ExecuteDeferred(tx, std::move(st));
  }

  // ---- claim ----

  /// True when a full claim of `queue` should also move exhausted expired leases to the dead
  /// letters: at most once per kSweepInterval per process (a claim that comes back short always does).
  bool SweepDue(const std::string& queue, std::int64_t now) {
    std::lock_guard lock(cache_mutex_);
    std::int64_t& last = swept_[queue];
    if (now - last < kSweepIntervalMs) return false;
    last = now;
    return true;
  }

  Task<core::Result<void>> ClaimBody(store::Transaction& tx, ClaimJob& job) {
    Statement claim{claim_, {job.token, job.lease_until, job.queue, job.now, job.settings.max_attempts, job.max}};
    auto claimed = co_await tx.Execute(std::move(claim));
    if (!claimed) co_return std::unexpected(std::move(claimed.error()));
    job.claimed.clear();
    job.claimed.reserve(claimed->rows.size());
    for (auto& row : claimed->rows) {
      Message m;
      m.id = Text(row[0]);
      m.payload = Text(row[1]);
      m.headers = Text(row[2]);
      m.priority = static_cast<int>(Int(row[3]));
      m.attempt = Int(row[4]);
      m.created_at = Int(row[5]);
      m.last_error = Text(row[6]);
      m.idempotency_key = Text(row[7]);
      m.lease_token = job.token;
      m.lease_expires_at = job.lease_until;
      job.seqs.push_back(Int(row[8]));
      job.claimed.push_back(std::move(m));
    }
    // Exhausted expired leases are never claimed (the claim's filter skips them); moving them to
    // the dead letters can wait while claims are served in full, which saves a statement (a round
    // trip on PostgreSQL) per claim under load.
    if (static_cast<std::int64_t>(job.claimed.size()) == job.max && !SweepDue(job.queue, job.now)) {
      co_return core::Result<void>{};
    }
    Statement expire{job.settings.dead_letter ? expire_dead_ : expire_drop_,
                     {job.queue, job.now, job.settings.max_attempts}};
    auto expired = co_await tx.Execute(std::move(expire));
    if (!expired) co_return std::unexpected(std::move(expired.error()));
    if (expired->affected > 0) {
      if (auto counted = co_await Count(tx, job.queue, 0, 0, 0, expired->affected); !counted) co_return counted;
    }
    co_return core::Result<void>{};
  }

  Task<core::Result<std::vector<Message>>> ClaimOnce(unsigned shard, ClaimJob& job) {
    job.now = NowMs();
    job.token = RandomToken();
    job.seqs.clear();
    auto done = co_await store::TransactRelaxed(db_, shard, [this, &job](store::Transaction& tx) { return ClaimBody(tx, job); });
    if (!done) co_return std::unexpected(std::move(done.error()));
    // RETURNING gives no order: priority first, then creation order.
    std::vector<std::size_t> order(job.claimed.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (job.claimed[a].priority != job.claimed[b].priority) return job.claimed[a].priority > job.claimed[b].priority;
      return job.seqs[a] < job.seqs[b];
    });
    std::vector<Message> out;
    out.reserve(order.size());
    for (std::size_t i : order) out.push_back(std::move(job.claimed[i]));
    co_return out;
  }

  Task<core::Result<std::vector<Message>>> Claim(unsigned shard, std::string queue, ClaimOptions options) {
    if (!ValidQueueName(queue)) co_return NoQueue();
    core::Error e = core::Error::Make(ErrorCode::kValidation, "The claim is invalid.");
    if (options.max < 1 || options.max > static_cast<std::int64_t>(kMaxBatch))
      e.fields.push_back({"max", "out_of_range", "must be 1 to 1000"});
    if (options.lease_ms != 0 && (options.lease_ms < 100 || options.lease_ms > 43'200'000))
      e.fields.push_back({"lease_ms", "out_of_range", "must be 100 to 43200000"});
    if (options.wait_ms < 0 || options.wait_ms > kMaxWaitMs)
      e.fields.push_back({"wait_ms", "out_of_range", "must be 0 to 30000"});
    if (!e.fields.empty()) co_return std::unexpected(std::move(e));
    auto settings = co_await SettingsFor(shard, queue);
    if (!settings) co_return std::unexpected(std::move(settings.error()));
    ClaimJob job;
    job.queue = queue;
    job.max = options.max;
    job.settings = *settings;
    const std::int64_t lease = options.lease_ms ? options.lease_ms : settings->lease_ms;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_ms);
    for (;;) {
      const std::uint64_t generation = waits_.Generation(queue);
      job.lease_until = NowMs() + lease;
      auto claimed = co_await ClaimOnce(shard, job);
      if (!claimed) co_return claimed;
      if (!claimed->empty() || options.wait_ms == 0 || waits_.stopping()) co_return claimed;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) co_return claimed;
      auto wake_in = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      // Something becomes claimable by itself (a delay, a backoff, a lease) before the deadline?
      const std::int64_t now_ms = NowMs();
      Statement next{next_visible_, {queue, now_ms}};
      auto visible = co_await db_.Query(shard, std::move(next));
      if (!visible) co_return std::unexpected(std::move(visible.error()));
      if (!visible->rows.empty()) {
        for (const Value& v : visible->rows[0]) {
          if (std::holds_alternative<store::Null>(v)) continue;
          const auto in = std::chrono::milliseconds(std::max<std::int64_t>(1, Int(v) - now_ms + 1));
          wake_in = std::min(wake_in, in);
        }
      }
      auto executor = co_await asio::this_coro::executor;
      auto waiter = std::make_shared<Waiter>(executor);
      waiter->timer.expires_after(wake_in);
      if (!waits_.Register(queue, generation, waiter)) continue;  // Something changed: look again.
      auto [ec] = co_await waiter->timer.async_wait(kAwait);
      (void)ec;
      waits_.Remove(queue, waiter);
    }
  }

  // ---- ack / nack / extend ----

  Task<core::Result<void>> AckBody(store::Transaction& tx, AckJob& job) {
    job.outcomes.assign(job.items.size(), AckOutcome::kStale);
    // Group by lease token (a claim hands one token to its whole batch) and ack in chunks.
    std::map<std::string, std::vector<std::size_t>> by_token;
    for (std::size_t i = 0; i < job.items.size(); ++i) by_token[job.items[i].lease_token].push_back(i);
    std::int64_t acked = 0;
    for (auto& [token, indexes] : by_token) {
      std::size_t next = 0;
      while (next < indexes.size()) {
        // One statement for up to 128 ids: the smallest chunk that holds them all, the IN list
        // padded with the last id (a repeated id matches nothing more).
        const std::size_t left = indexes.size() - next;
        const std::size_t real = std::min(left, kChunks[0]);
        std::size_t n = kChunks[0];
        for (std::size_t c : kChunks) {
          if (c >= real) n = c;
        }
        Statement st{job.remove ? delete_chunk_[n] : ack_chunk_[n], {}};
        st.params.reserve(3 + n);
        st.params.emplace_back(job.queue);
        st.params.emplace_back(token);
        st.params.emplace_back(job.now);
        for (std::size_t r = 0; r < n; ++r) st.params.emplace_back(job.items[indexes[next + std::min(r, real - 1)]].id);
        auto done = co_await tx.Execute(std::move(st));
        if (!done) co_return std::unexpected(std::move(done.error()));
        for (const auto& row : done->rows) {
          const std::string id = Text(row[0]);
          for (std::size_t r = 0; r < real; ++r) {
            const std::size_t i = indexes[next + r];
            if (job.items[i].id == id && job.outcomes[i] != AckOutcome::kAcked) {
              job.outcomes[i] = AckOutcome::kAcked;
              ++acked;
              break;  // A repeated id in the batch: only its first copy was acked.
            }
          }
        }
        next += real;
      }
    }
    for (std::size_t i = 0; i < job.items.size(); ++i) {
      if (job.outcomes[i] == AckOutcome::kAcked) continue;
      Statement st{message_state_, {job.items[i].id, job.queue}};
      auto found = co_await tx.Execute(std::move(st));
      if (!found) co_return std::unexpected(std::move(found.error()));
      job.outcomes[i] = found->rows.empty() ? AckOutcome::kNotFound : AckOutcome::kStale;
    }
    if (acked > 0) {
      if (auto counted = co_await Count(tx, job.queue, 0, acked, 0, 0); !counted) co_return counted;
    }
    co_return core::Result<void>{};
  }

  Task<core::Result<std::vector<AckOutcome>>> AckBatch(unsigned shard, std::string queue, std::vector<AckItem> items) {
    if (!ValidQueueName(queue)) co_return NoQueue();
    if (items.empty()) co_return std::unexpected(Invalid("messages", "required", "at least one message is required"));
    if (items.size() > kMaxBatch) co_return core::Fail(ErrorCode::kPayloadTooLarge, "At most 1000 messages per request.");
    auto settings = co_await SettingsFor(shard, queue);
    if (!settings) co_return std::unexpected(std::move(settings.error()));
    AckJob job;
    job.queue = std::move(queue);
    job.items = std::move(items);
    job.remove = settings->retention_ms == 0;
    job.now = NowMs();
    auto done = co_await store::TransactRelaxed(db_, shard, [this, &job](store::Transaction& tx) { return AckBody(tx, job); });
    if (!done) co_return std::unexpected(std::move(done.error()));
    co_return std::move(job.outcomes);
  }

  Task<core::Result<void>> NackBody(store::Transaction& tx, NackJob& job) {
    Statement find{leased_attempt_, {job.id, job.queue, job.token}};
    auto found = co_await tx.Execute(std::move(find));
    if (!found) co_return std::unexpected(std::move(found.error()));
    if (found->rows.empty()) {
      Statement st{message_state_, {job.id, job.queue}};
      auto exists = co_await tx.Execute(std::move(st));
      if (!exists) co_return std::unexpected(std::move(exists.error()));
      job.failure = exists->rows.empty() ? NoMessage().error() : Stale().error();
      co_return core::Result<void>{};
    }
    const std::int64_t attempt = Int(found->rows[0][0]);
    const bool exhausted = attempt >= job.settings.max_attempts;
    std::int64_t delay = 0;
    if (job.delay_ms) {
      delay = *job.delay_ms;
    } else {
      // Exponential (min * 2^(attempt-1), capped) with jitter: uniform in [d/2, d].
      std::int64_t d = job.settings.backoff_min_ms;
      for (std::int64_t i = 1; i < attempt && d < job.settings.backoff_max_ms; ++i) d *= 2;
      d = std::min(d, job.settings.backoff_max_ms);
      delay = d / 2 + RandomBelow(d - d / 2 + 1);
    }
    Value error = job.error.empty() ? Value(store::Null{}) : Value(job.error);
    std::string sql = exhausted ? (job.settings.dead_letter ? kill_ : delete_one_) : retry_;
    Statement update{std::move(sql), {job.id, job.queue, job.token}};
    if (!exhausted || job.settings.dead_letter) {
      update.params.emplace_back(exhausted ? job.now : job.now + delay);
      update.params.emplace_back(std::move(error));
    }
    auto updated = co_await tx.Execute(std::move(update));
    if (!updated) co_return std::unexpected(std::move(updated.error()));
    if (updated->affected == 0) {
      job.failure = Stale().error();
      co_return core::Result<void>{};
    }
    job.outcome = exhausted ? NackOutcome::kDead : NackOutcome::kRetried;
    if (auto counted = co_await Count(tx, job.queue, 0, 0, 1, exhausted ? 1 : 0); !counted) co_return counted;
    if (!exhausted) co_return co_await tx.Notify(std::string(kChannel), job.queue);
    co_return core::Result<void>{};
  }

  store::Database& db_;
  const store::Dialect& d_;
  WaitRegistry waits_;

  struct CacheEntry {
    QueueSettings settings;
    std::chrono::steady_clock::time_point loaded;
    bool exists = false;
  };
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CacheEntry> cache_;
  std::unordered_map<std::string, std::int64_t> swept_;  ///< Guarded by cache_mutex_: last expiry sweep per queue.

  std::string select_queue_, list_queues_, create_queue_, update_queue_, insert_keyed_, find_key_, counters_,
      expire_dead_, expire_drop_, claim_, next_visible_, delete_one_, message_state_, leased_attempt_, retry_,
      kill_, release_, extend_, dead_page_, replay_dead_one_, replay_dead_all_, replay_done_one_, replay_done_range_, stats_,
      stats_counters_, purge_, peek_;
  std::map<std::size_t, std::string> insert_chunk_, ack_chunk_, delete_chunk_;
  std::unique_ptr<store::Subscription> notify_subscription_;
};

// ---- Engine: thin forwarding plus the simple single-statement operations ----

Engine::Engine(store::Database& database) : impl_(std::make_unique<Impl>(database)) {}
Engine::~Engine() = default;

void Engine::Shutdown() { impl_->waits_.WakeAll(true); }

Task<core::Result<QueueInfo>> Engine::Get(unsigned shard, std::string queue) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  auto loaded = co_await impl_->Load(shard, queue);
  if (!loaded) co_return std::unexpected(std::move(loaded.error()));
  if (!*loaded) co_return NoQueue();
  co_return std::move(**loaded);
}

Task<core::Result<std::vector<QueueInfo>>> Engine::List(unsigned shard) {
  Statement st{impl_->list_queues_, {}};
  auto rows = co_await impl_->db_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  std::vector<QueueInfo> out;
  out.reserve(rows->rows.size());
  for (const auto& row : rows->rows) out.push_back(RowToInfo(row));
  co_return out;
}

Task<core::Result<std::pair<QueueInfo, bool>>> Engine::Put(unsigned shard, std::string queue, QueueSettings settings) {
  if (!ValidQueueName(queue)) {
    co_return std::unexpected(Invalid("name", "invalid", "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"));
  }
  if (auto valid = ValidateSettings(settings); !valid) co_return std::unexpected(std::move(valid.error()));
  bool created = false;
  const std::int64_t now = NowMs();
  Impl* impl = impl_.get();
  auto done = co_await impl->db_.Transact(shard, [impl, &queue, &settings, now, &created](store::Transaction& tx) {
    return impl->PutBody(tx, queue, settings, now, created);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  auto loaded = co_await impl->Load(shard, queue);
  if (!loaded) co_return std::unexpected(std::move(loaded.error()));
  if (!*loaded) co_return core::Fail(ErrorCode::kInternal, "The queue could not be read back.");
  co_return std::pair<QueueInfo, bool>(std::move(**loaded), created);
}

Task<core::Result<std::vector<Produced>>> Engine::Produce(unsigned shard, std::string queue,
                                                          std::vector<NewMessage> messages) {
  if (!ValidQueueName(queue)) {
    co_return std::unexpected(Invalid("queue", "invalid", "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"));
  }
  if (auto valid = ValidateMessages(messages); !valid) co_return std::unexpected(std::move(valid.error()));
  ProduceJob job;
  job.queue = std::move(queue);
  job.messages = std::move(messages);
  job.now = NowMs();
  job.create_queue = !impl_->Known(job.queue);
  Impl* impl = impl_.get();
  auto done = co_await impl->db_.Transact(shard, [impl, &job](store::Transaction& tx) { return impl->ProduceBody(tx, job); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (job.create_queue) (void)co_await impl->Load(shard, job.queue);  // Now known: later produces skip the insert.
  co_return std::move(job.results);
}

Task<core::Result<std::vector<Produced>>> Engine::Produce(store::Transaction& tx, std::string queue,
                                                          std::vector<NewMessage> messages) {
  if (!ValidQueueName(queue)) {
    co_return std::unexpected(Invalid("queue", "invalid", "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"));
  }
  if (auto valid = ValidateMessages(messages); !valid) co_return std::unexpected(std::move(valid.error()));
  ProduceJob job;
  job.queue = std::move(queue);
  job.messages = std::move(messages);
  job.now = NowMs();
  auto done = co_await impl_->ProduceBody(tx, job);
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return std::move(job.results);
}

Task<core::Result<std::vector<Message>>> Engine::Claim(unsigned shard, std::string queue, ClaimOptions options) {
  co_return co_await impl_->Claim(shard, std::move(queue), options);
}

Task<core::Result<void>> Engine::Ack(unsigned shard, std::string queue, std::string id, std::string lease_token) {
  std::vector<AckItem> items;
  items.push_back(AckItem{std::move(id), std::move(lease_token)});
  auto outcomes = co_await impl_->AckBatch(shard, std::move(queue), std::move(items));
  if (!outcomes) co_return std::unexpected(std::move(outcomes.error()));
  switch ((*outcomes)[0]) {
    case AckOutcome::kAcked: co_return core::Result<void>{};
    case AckOutcome::kNotFound: co_return NoMessage();
    case AckOutcome::kStale: break;
  }
  co_return Stale();
}

Task<core::Result<std::vector<AckOutcome>>> Engine::AckBatch(unsigned shard, std::string queue,
                                                             std::vector<AckItem> items) {
  co_return co_await impl_->AckBatch(shard, std::move(queue), std::move(items));
}

Task<core::Result<NackOutcome>> Engine::Nack(unsigned shard, std::string queue, std::string id, std::string lease_token,
                                             std::optional<std::int64_t> delay_ms, std::string error) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  if (delay_ms && (*delay_ms < 0 || *delay_ms > 86'400'000))
    co_return std::unexpected(Invalid("delay_ms", "out_of_range", "must be 0 to 86400000"));
  auto settings = co_await impl_->SettingsFor(shard, queue);
  if (!settings) co_return std::unexpected(std::move(settings.error()));
  NackJob job;
  job.queue = std::move(queue);
  job.id = std::move(id);
  job.token = std::move(lease_token);
  job.error = std::move(error);
  if (job.error.size() > kMaxErrorText) job.error.resize(kMaxErrorText);
  job.delay_ms = delay_ms;
  job.settings = *settings;
  job.now = NowMs();
  Impl* impl = impl_.get();
  auto done = co_await store::TransactRelaxed(impl->db_, shard,
                                              [impl, &job](store::Transaction& tx) { return impl->NackBody(tx, job); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (job.failure) co_return std::unexpected(std::move(*job.failure));
  co_return job.outcome;
}

namespace {
/// Runs one statement in its own transaction; returns its result.
Task<core::Result<void>> RunOne(store::Transaction& tx, Statement& statement, store::ResultSet& out) {
  auto r = co_await tx.Execute(std::move(statement));
  if (!r) co_return std::unexpected(std::move(r.error()));
  out = std::move(*r);
  co_return core::Result<void>{};
}

/// Runs statements one after another in one transaction, then notifies `queue` if any row changed.
Task<core::Result<void>> RunAll(store::Transaction& tx, std::vector<Statement>& statements, std::int64_t& affected,
                                const std::string& queue) {
  for (auto& st : statements) {
    auto r = co_await tx.Execute(std::move(st));
    if (!r) co_return std::unexpected(std::move(r.error()));
    affected += r->affected;
  }
  if (affected > 0) co_return co_await tx.Notify(std::string(kChannel), queue);
  co_return core::Result<void>{};
}
}  // namespace

Task<core::Result<void>> Engine::Release(unsigned shard, std::string queue, std::string id, std::string lease_token,
                                         std::int64_t delay_ms) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  if (delay_ms < 0 || delay_ms > 86'400'000)
    co_return std::unexpected(Invalid("delay_ms", "out_of_range", "must be 0 to 86400000"));
  std::vector<Statement> statements;
  statements.push_back(Statement{impl_->release_, {id, queue, lease_token, NowMs() + delay_ms}});
  std::int64_t affected = 0;
  auto done = co_await store::TransactRelaxed(impl_->db_, shard, [&](store::Transaction& tx) {
    return RunAll(tx, statements, affected, queue);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (affected > 0) co_return core::Result<void>{};
  Statement check{impl_->message_state_, {id, queue}};
  auto found = co_await impl_->db_.Query(shard, std::move(check));
  if (!found) co_return std::unexpected(std::move(found.error()));
  if (found->rows.empty()) co_return NoMessage();
  co_return Stale();
}

Task<core::Result<std::int64_t>> Engine::Extend(unsigned shard, std::string queue, std::string id,
                                                std::string lease_token, std::int64_t lease_ms) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  if (lease_ms != 0 && (lease_ms < 100 || lease_ms > 43'200'000))
    co_return std::unexpected(Invalid("lease_ms", "out_of_range", "must be 100 to 43200000"));
  auto settings = co_await impl_->SettingsFor(shard, queue);
  if (!settings) co_return std::unexpected(std::move(settings.error()));
  const std::int64_t until = NowMs() + (lease_ms ? lease_ms : settings->lease_ms);
  Statement st{impl_->extend_, {id, queue, lease_token, until}};
  store::ResultSet result;
  auto done = co_await store::TransactRelaxed(impl_->db_, shard,
                                              [&st, &result](store::Transaction& tx) { return RunOne(tx, st, result); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (result.affected > 0) co_return until;
  Statement check{impl_->message_state_, {id, queue}};
  auto found = co_await impl_->db_.Query(shard, std::move(check));
  if (!found) co_return std::unexpected(std::move(found.error()));
  if (found->rows.empty()) co_return NoMessage();
  co_return Stale();
}

Task<core::Result<DeadLetterPage>> Engine::DeadLetters(unsigned shard, std::string queue, std::int64_t limit,
                                                       std::string cursor) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  std::int64_t after_time = -1;
  std::string after_id;
  if (!cursor.empty()) {
    const auto dot = cursor.find('.');
    try {
      if (dot == std::string::npos) throw std::invalid_argument("cursor");
      after_time = std::stoll(cursor.substr(0, dot));
      after_id = cursor.substr(dot + 1);
    } catch (...) {
      co_return std::unexpected(Invalid("cursor", "invalid", "not a cursor from a previous page"));
    }
  }
  Statement st{impl_->dead_page_, {queue, after_time, after_id, limit + 1}};
  auto rows = co_await impl_->db_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  DeadLetterPage page;
  for (auto& row : rows->rows) {
    if (static_cast<std::int64_t>(page.items.size()) == limit) {
      const Message& last = page.items.back();
      page.next_cursor = std::to_string(last.dead_at) + "." + last.id;
      break;
    }
    Message m;
    m.id = Text(row[0]);
    m.payload = Text(row[1]);
    m.headers = Text(row[2]);
    m.priority = static_cast<int>(Int(row[3]));
    m.attempt = Int(row[4]);
    m.created_at = Int(row[5]);
    m.last_error = Text(row[6]);
    m.dead_at = Int(row[7]);
    m.idempotency_key = Text(row[8]);
    page.items.push_back(std::move(m));
  }
  co_return page;
}

Task<core::Result<std::int64_t>> Engine::ReplayDead(unsigned shard, std::string queue, std::vector<std::string> ids,
                                                    bool all) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  if (ids.size() > kMaxBatch) co_return core::Fail(ErrorCode::kPayloadTooLarge, "At most 1000 ids per request.");
  const std::int64_t now = NowMs();
  std::vector<Statement> statements;
  if (all) {
    statements.push_back(Statement{impl_->replay_dead_all_, {queue, now}});
  } else {
    for (auto& id : ids) statements.push_back(Statement{impl_->replay_dead_one_, {std::move(id), queue, now}});
  }
  std::int64_t affected = 0;
  auto done = co_await impl_->db_.Transact(shard, [&](store::Transaction& tx) {
    return RunAll(tx, statements, affected, queue);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return affected;
}

Task<core::Result<std::int64_t>> Engine::ReplayCompleted(unsigned shard, std::string queue, CompletedSelector selector) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  if (selector.ids.size() > kMaxBatch) co_return core::Fail(ErrorCode::kPayloadTooLarge, "At most 1000 ids per request.");
  const std::int64_t now = NowMs();
  std::vector<Statement> statements;
  if (selector.ids.empty()) {
    statements.push_back(Statement{impl_->replay_done_range_,
                                   {queue, selector.from.value_or(0), selector.to.value_or(now + 1), now}});
  } else {
    for (auto& id : selector.ids) statements.push_back(Statement{impl_->replay_done_one_, {std::move(id), queue, now}});
  }
  std::int64_t affected = 0;
  auto done = co_await impl_->db_.Transact(shard, [&](store::Transaction& tx) {
    return RunAll(tx, statements, affected, queue);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return affected;
}

Task<core::Result<Message>> Engine::Peek(unsigned shard, std::string queue, std::string id) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  Statement st{impl_->peek_, {id, queue}};
  auto rows = co_await impl_->db_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return NoMessage();
  const auto& row = rows->rows[0];
  Message m;
  m.id = Text(row[0]);
  m.payload = Text(row[1]);
  m.headers = Text(row[2]);
  m.priority = static_cast<int>(Int(row[3]));
  m.attempt = Int(row[4]);
  m.created_at = Int(row[5]);
  m.last_error = Text(row[6]);
  m.visible_at = Int(row[7]);
  m.idempotency_key = Text(row[8]);
  m.state = static_cast<State>(Int(row[9]));
  if (m.state == State::kLeased) m.lease_expires_at = m.visible_at;
  if (m.state == State::kDead) m.dead_at = m.visible_at;
  co_return m;
}

Task<core::Result<QueueStats>> Engine::Stats(unsigned shard, std::string queue) {
  if (!ValidQueueName(queue)) co_return NoQueue();
  const std::int64_t now = NowMs();
  Statement by_state{impl_->stats_, {queue, now}};
  auto rows = co_await impl_->db_.Query(shard, std::move(by_state));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  QueueStats s;
  for (const auto& row : rows->rows) {
    const std::int64_t count = Int(row[1]);
    switch (Int(row[0])) {
      case 0: {
        s.delayed = Int(row[3]);
        s.ready = count - s.delayed;
        const std::int64_t oldest = Int(row[2]);
        if (s.ready > 0 && oldest <= now) s.oldest_age_ms = now - oldest;
        break;
      }
      case 1: s.in_flight = count; break;
      case 2: s.completed = count; break;
      case 3: s.dead = count; break;
      default: break;
    }
  }
  Statement counters{impl_->stats_counters_, {queue}};
  auto sums = co_await impl_->db_.Query(shard, std::move(counters));
  if (!sums) co_return std::unexpected(std::move(sums.error()));
  if (!sums->rows.empty()) {
    s.produced = Int(sums->rows[0][0]);
    s.acked = Int(sums->rows[0][1]);
    s.nacked = Int(sums->rows[0][2]);
    s.failed = Int(sums->rows[0][3]);
  }
  s.waiting_claims = impl_->waits_.Waiting(queue);
  co_return s;
}

Task<core::Result<std::int64_t>> Engine::Purge(unsigned shard) {
  auto queues = co_await List(shard);
  if (!queues) co_return std::unexpected(std::move(queues.error()));
  std::int64_t total = 0;
  const std::int64_t now = NowMs();
  for (const auto& q : *queues) {
    for (;;) {
      Statement st{impl_->purge_, {q.name, now - q.settings.retention_ms, kPurgeChunk}};
      store::ResultSet result;
      auto done = co_await impl_->db_.Transact(shard, [&st, &result](store::Transaction& tx) { return RunOne(tx, st, result); });
      if (!done) co_return std::unexpected(std::move(done.error()));
      total += result.affected;
      if (result.affected < kPurgeChunk) break;
    }
  }
  co_return total;
}

}  // namespace basalt::queue
