#pragma once
/// Webhooks: registrations, signed deliveries, the delivery log and the per-destination circuit
/// breaker. Storage only; the HTTP handlers are api/webhooks.cpp and the sending happens in the
/// dispatcher's webhook worker (events/dispatcher.hpp) through a Sender that app/ provides.
///
/// Deliveries travel through the durable queue (queue::Engine) as messages of the system queue
/// kWebhookQueue: one message per (outbox event, matching webhook), with the idempotency key
/// "<event id>:<webhook id>", whose payload is DeliveryPayload. The delivery log
/// (`basalt_webhook_deliveries` and `basalt_webhook_attempts`) has one row per message, keyed by
/// the message id, written by the dispatcher in the transaction that produces the message and
/// updated by the worker after every attempt.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::queue {
class Engine;
}

namespace basalt::events {

/// The system queue of webhook deliveries (the "basalt." prefix is reserved, see queue::IsSystemQueue).
inline constexpr std::string_view kWebhookQueue = "basalt.webhooks";

/// A registered webhook (the secret is only returned by CreateWebhook).
struct Webhook {
  std::string id;
  std::string url;
  std::vector<std::string> events;  ///< "posts.created", "posts.*", "*".
  bool active = true;
  std::string created_at, updated_at;
};

/// One sending attempt of a delivery.
struct Attempt {
  std::int64_t attempt = 0;
  std::int64_t at_ms = 0;
  std::optional<std::int64_t> status_code;
  std::int64_t latency_ms = 0;
  std::string error;
};

/// One delivery (one queue message: `id` is the message id) and its log.
struct Delivery {
  std::string id, webhook_id, event_id, event_type;
  /// "pending" (the message waits or is being sent), "succeeded", "failed" (a dead letter). Read
  /// from the queue while the message exists, so a replayed dead letter shows "pending" at once.
  std::string state;
  std::int64_t attempts = 0;  ///< Sending attempts recorded so far (a replay continues the count).
  std::int64_t created_at_ms = 0, updated_at_ms = 0;
  std::optional<std::int64_t> next_attempt_at_ms;  ///< When the waiting message becomes claimable.
  std::optional<std::int64_t> status_code, latency_ms, delivered_at_ms;
  std::string error;
  std::string redelivery_of;  ///< The delivery this one sends again (manual redelivery), or "".
  std::vector<Attempt> log;
};

/// The JSON payload of a delivery message: {"webhook_id", "event_id", "event_type", "event"}
/// with `event_json` (the CloudEvent, already JSON) embedded as the "event" member.
std::string DeliveryPayload(std::string_view webhook_id, std::string_view event_id, std::string_view event_type,
                            std::string_view event_json);
/// The INSERT of a delivery's log row (state pending, no attempt yet); a row that exists already
/// (a duplicate produce) is left alone. Parameters: id, webhook_id, event_id, event_type,
/// redelivery_of (text or NULL), now (ms).
std::string DeliveryInsertSql(const store::Dialect& dialect);

/// A destination's circuit breaker.
struct Breaker {
  std::string destination;
  std::string state = "closed";  ///< "closed", "open", "half_open".
  std::int64_t failures = 0;
  std::int64_t open_until_ms = 0;
};

/// Checks event names: `<collection>.<created|updated|deleted|*>` or `*`, 1..50 distinct names.
core::Result<void> ValidateEventNames(const std::vector<std::string>& names);
/// True when a webhook listening to `names` wants `collection`'s `kind` event.
bool Matches(const std::vector<std::string>& names, std::string_view collection, std::string_view kind);
/// "whsec_" + base64 of 32 random bytes.
std::string NewSecret();
/// Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
/// the key being the base64-decoded part of `secret` after "whsec_".
std::string Sign(std::string_view secret, std::string_view id, std::int64_t timestamp, std::string_view body);
/// "scheme://host:port" of a URL (lower case), the breaker's key.
std::string DestinationOf(std::string_view url);

using store::Task;

Task<core::Result<std::pair<Webhook, std::string>>> CreateWebhook(store::Database& db, unsigned shard, std::string url,
                                                                  std::vector<std::string> events);
Task<core::Result<std::vector<Webhook>>> ListWebhooks(store::Database& db, unsigned shard);
/// kNotFound when absent.
Task<core::Result<Webhook>> GetWebhook(store::Database& db, unsigned shard, std::string id);
/// Changes what is given. kNotFound when absent.
Task<core::Result<Webhook>> UpdateWebhook(store::Database& db, unsigned shard, std::string id,
                                          std::optional<std::string> url, std::optional<std::vector<std::string>> events,
                                          std::optional<bool> active);
/// Deletes the webhook and its delivery log. kNotFound when absent. Its messages still queued are
/// dropped by the worker (acked unsent) when it finds the webhook gone.
Task<core::Result<void>> DeleteWebhook(store::Database& db, unsigned shard, std::string id);
/// The newest `limit` deliveries of a webhook with their attempts.
Task<core::Result<std::vector<Delivery>>> ListDeliveries(store::Database& db, unsigned shard, std::string webhook_id,
                                                         std::int64_t limit);
/// Sends a delivery again: produces a new message with the same payload (so the same
/// `webhook-id`) and a new log row pointing back at the original (`redelivery_of`), in one
/// transaction. Returns the new delivery. kNotFound when absent; kConflict when its message is no
/// longer retained in the queue (purged after `retention`).
Task<core::Result<Delivery>> Redeliver(store::Database& db, queue::Engine& queue, unsigned shard,
                                       std::string webhook_id, std::string delivery_id);
/// The breaker of a destination, if it ever failed or succeeded.
Task<core::Result<std::optional<Breaker>>> GetBreaker(store::Database& db, unsigned shard, std::string destination);

}  // namespace basalt::events
