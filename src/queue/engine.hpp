#pragma once
/// The durable queue engine: named queues of JSON messages with priorities, delays, idempotency
/// keys, leases, retries with backoff, dead letters, replay and stats, on any store::Database.
///
/// Delivery is at-least-once. A claim hands out messages under a lease (a random `lease_token`
/// and `lease_expires_at`); the holder acks, nacks or extends with that token. A message whose
/// lease expired is claimable again (checked at claim time, no sweeper needed); a message claimed
/// `max_attempts` times whose lease expires or that is nacked goes to the dead-letter list with its
/// last error (an expired one: moved by the next claim of its queue that comes back short of
/// `max`, or by a full one at most a second later; it is never claimed meanwhile). Long-polling claims wait on Database::Listen notifications (an in-process signal on
/// SQLite, LISTEN/NOTIFY on PostgreSQL), never by polling the table.
///
/// Times are Unix milliseconds (UTC). Every call takes the caller's `shard` (I/O thread index) for
/// Database::Query/Transact. Errors: kValidation (bad input, with field errors), kNotFound (no such
/// queue or message), kConflict (stale lease token), kUnavailable/kInternal (database).

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::queue {

template <class T>
using Task = store::Task<T>;

/// Limits enforced by the engine (the HTTP API reports them as 413/422).
inline constexpr std::size_t kMaxBatch = 1000;          ///< Messages per produce, claim, ack, replay.
inline constexpr std::int64_t kMaxWaitMs = 30'000;      ///< Longest long-poll.
inline constexpr int kMaxPriority = 9;                  ///< Priorities are 0 (lowest) to 9.
inline constexpr std::size_t kMaxNameLength = 128;      ///< Queue names: [A-Za-z0-9][A-Za-z0-9_.-]*.
inline constexpr std::size_t kMaxIdempotencyKey = 255;  ///< Idempotency keys: 1 to 255 bytes.
inline constexpr std::size_t kMaxErrorText = 4096;      ///< Nack error texts are cut to this.

/// Settings of one queue; every field has a default (a queue created on first use gets these).
struct QueueSettings {
  std::int64_t max_attempts = 5;          ///< Claims before an expired or nacked message is dead (1..1000).
  std::int64_t backoff_min_ms = 1000;     ///< Retry delay after the first failed attempt (0..86400000).
  std::int64_t backoff_max_ms = 300'000;  ///< Cap of the exponential delay (>= backoff_min_ms).
  std::int64_t lease_ms = 30'000;         ///< Default lease of a claim (100..43200000).
  std::int64_t retention_ms = 86'400'000; ///< Completed messages kept this long (0: deleted on ack).
  bool dead_letter = true;                ///< Keep exhausted messages as dead letters (false: drop them).
};

/// Checks ranges; kValidation with one field error per bad field (fields named as in JSON).
core::Result<void> ValidateSettings(const QueueSettings& settings);

/// True for a valid queue name: 1..128 of [A-Za-z0-9_.-], starting with a letter or digit.
bool ValidQueueName(std::string_view name);

/// Names starting with this prefix are reserved for Basalt's own queues (e.g. "basalt.webhooks"):
/// the HTTP API lets admins inspect them and replay their dead letters, but not produce to,
/// consume from or reconfigure them. The engine itself does not check it.
inline constexpr std::string_view kSystemQueuePrefix = "basalt.";
/// True for a reserved (system) queue name.
inline bool IsSystemQueue(std::string_view name) { return name.starts_with(kSystemQueuePrefix); }

/// A queue and its settings.
struct QueueInfo {
  std::string name;
  QueueSettings settings;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

/// A message to produce.
struct NewMessage {
  std::string payload = "null";  ///< Serialised JSON (the engine stores it as given).
  std::string headers;           ///< Serialised JSON object of string headers, or "" for none.
  int priority = 0;              ///< 0..9; higher is claimed first.
  std::int64_t delay_ms = 0;     ///< Not claimable before now + delay_ms (>= 0).
  std::optional<std::int64_t> available_at;  ///< Absolute alternative to delay_ms (wins when set).
  std::string idempotency_key;   ///< "" for none. A key seen in this queue within retention
                                 ///< returns the original id with duplicate = true.
};

/// The result of producing one message.
struct Produced {
  std::string id;          ///< The new message's id (UUIDv7), or the original's for a duplicate.
  bool duplicate = false;  ///< True when the idempotency key matched an existing message.
};

/// Message states (stored as integers).
enum class State : int {
  kReady = 0,      ///< Waiting (possibly delayed until `available_at`).
  kLeased = 1,     ///< Claimed; claimable again once its lease expired.
  kCompleted = 2,  ///< Acked; kept for `retention_ms` (replayable), then purged.
  kDead = 3,       ///< Attempts exhausted; in the dead-letter list until replayed.
};

/// A message as claims and the dead-letter list return it.
struct Message {
  std::string id;
  std::string payload;  ///< Serialised JSON.
  std::string headers;  ///< Serialised JSON object, or "" when none.
  int priority = 0;
  std::int64_t attempt = 0;        ///< Claims so far, this one included.
  std::string lease_token;         ///< Claims only.
  std::int64_t lease_expires_at = 0;  ///< Claims only.
  std::int64_t created_at = 0;
  std::string last_error;          ///< From the last nack or lease expiry; "" when none.
  std::int64_t dead_at = 0;        ///< Dead letters only.
  std::string idempotency_key;
  State state = State::kReady;     ///< Peek only (claims are kLeased, dead letters kDead).
  std::int64_t visible_at = 0;     ///< Peek only: see State (claimable from, lease expiry, done at).
};

/// What a claim asks for.
struct ClaimOptions {
  std::int64_t max = 10;      ///< 1..1000 messages.
  std::int64_t lease_ms = 0;  ///< 0: the queue's lease_ms; else 100..43200000.
  std::int64_t wait_ms = 0;   ///< 0..30000: long-poll while nothing is claimable.
};

/// One item of a batch ack.
struct AckItem {
  std::string id;
  std::string lease_token;
};

/// The outcome of acking one message.
enum class AckOutcome {
  kAcked,     ///< Done (completed, or deleted when retention_ms is 0).
  kNotFound,  ///< No such message in this queue.
  kStale,     ///< The message is not leased with this token (expired and re-claimed, acked...).
};

/// The outcome of a nack.
enum class NackOutcome {
  kRetried,  ///< Back to ready, claimable after the delay.
  kDead,     ///< Attempts exhausted: moved to the dead-letter list (or dropped).
};

/// Stats of one queue.
struct QueueStats {
  std::int64_t ready = 0;      ///< Claimable now.
  std::int64_t delayed = 0;    ///< Waiting for available_at or a retry backoff.
  std::int64_t in_flight = 0;  ///< Leased (including leases that expired and await a new claim).
  std::int64_t completed = 0;  ///< Acked and retained.
  std::int64_t dead = 0;       ///< Dead letters.
  std::int64_t oldest_age_ms = 0;  ///< How long the oldest claimable message has waited (0: none).
  std::int64_t produced = 0;   ///< Counters since the queue was created (all processes).
  std::int64_t acked = 0;
  std::int64_t nacked = 0;
  std::int64_t failed = 0;     ///< Messages that exhausted their attempts.
  std::int64_t waiting_claims = 0;  ///< Long-polling claims waiting in this process now.
};

/// A page of dead letters.
struct DeadLetterPage {
  std::vector<Message> items;
  std::string next_cursor;  ///< "" at the end.
};

/// What a replay of completed messages selects: `ids`, or completion time in [from, to).
struct CompletedSelector {
  std::vector<std::string> ids;
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
};

/// Milliseconds since the Unix epoch, now.
std::int64_t NowMs();

/// The engine. Thread-safe; one per process, shared by every I/O thread. Holds a reference to the
/// database, which must outlive it.
class Engine {
 public:
  explicit Engine(store::Database& database);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// The queue, or kNotFound.
  Task<core::Result<QueueInfo>> Get(unsigned shard, std::string queue);
  /// Every queue, by name.
  Task<core::Result<std::vector<QueueInfo>>> List(unsigned shard);
  /// Creates or replaces the queue's settings. Returns the queue and true when it was created.
  Task<core::Result<std::pair<QueueInfo, bool>>> Put(unsigned shard, std::string queue, QueueSettings settings);

  /// Produces up to kMaxBatch messages in one transaction (the queue is created on first use).
  /// Results are in input order.
  Task<core::Result<std::vector<Produced>>> Produce(unsigned shard, std::string queue, std::vector<NewMessage> messages);
  /// The same inside the caller's transaction (e.g. an outbox dispatcher enqueueing atomically
  /// with its own writes): the messages exist, and waiting consumers are woken, only if `tx`
  /// commits. Only awaits `tx`, so it is valid inside a SQLite Transact callback.
  Task<core::Result<std::vector<Produced>>> Produce(store::Transaction& tx, std::string queue,
                                                    std::vector<NewMessage> messages);

  /// Claims up to `options.max` claimable messages, highest priority first, then oldest. When
  /// none is claimable and wait_ms > 0, waits until one is (a produce, a nack, a replay, a delay
  /// or a lease running out) or wait_ms passes, whichever comes first; then returns what it got
  /// (possibly nothing). Shutdown() ends every wait at once.
  Task<core::Result<std::vector<Message>>> Claim(unsigned shard, std::string queue, ClaimOptions options);

  /// Acks one message: kNotFound, or kConflict for a stale token.
  Task<core::Result<void>> Ack(unsigned shard, std::string queue, std::string id, std::string lease_token);
  /// Acks many in one transaction; one outcome per item, in order.
  Task<core::Result<std::vector<AckOutcome>>> AckBatch(unsigned shard, std::string queue, std::vector<AckItem> items);
  /// Gives a message back: claimable after `delay_ms` (nullopt: the queue's backoff for this
  /// attempt, exponential with jitter), or dead when its attempts are exhausted. kNotFound,
  /// kConflict for a stale token.
  Task<core::Result<NackOutcome>> Nack(unsigned shard, std::string queue, std::string id, std::string lease_token,
                                       std::optional<std::int64_t> delay_ms, std::string error);
  /// Gives a message back without spending the attempt its claim took: claimable again after
  /// `delay_ms` (0..86400000), never dead-lettered by this call (e.g. a consumer that must wait
  /// for a reason unrelated to the message, like an open circuit breaker). kNotFound, kConflict
  /// for a stale token.
  Task<core::Result<void>> Release(unsigned shard, std::string queue, std::string id, std::string lease_token,
                                   std::int64_t delay_ms);
  /// Extends a lease to now + lease_ms (0: the queue's). Returns the new lease_expires_at.
  Task<core::Result<std::int64_t>> Extend(unsigned shard, std::string queue, std::string id, std::string lease_token,
                                          std::int64_t lease_ms);

  /// Dead letters by time of death, then id; `cursor` from a previous page ("" for the first).
  Task<core::Result<DeadLetterPage>> DeadLetters(unsigned shard, std::string queue, std::int64_t limit,
                                                 std::string cursor);
  /// Requeues dead letters (`ids`, or all when `all`) as fresh messages (attempt 0). Returns how
  /// many were requeued (unknown ids are skipped).
  Task<core::Result<std::int64_t>> ReplayDead(unsigned shard, std::string queue, std::vector<std::string> ids, bool all);
  /// Re-delivers retained completed messages. Returns how many.
  Task<core::Result<std::int64_t>> ReplayCompleted(unsigned shard, std::string queue, CompletedSelector selector);

  /// One message in any state, or kNotFound.
  Task<core::Result<Message>> Peek(unsigned shard, std::string queue, std::string id);

  /// Stats of one queue (kNotFound when it does not exist).
  Task<core::Result<QueueStats>> Stats(unsigned shard, std::string queue);

  /// Deletes completed messages older than their queue's retention. Returns how many.
  Task<core::Result<std::int64_t>> Purge(unsigned shard);

  /// Ends every long-poll now and makes later claims return at once (graceful shutdown).
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace basalt::queue
