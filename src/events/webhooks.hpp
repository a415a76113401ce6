#pragma once
/// Webhooks: registrations, signed deliveries, the delivery log and the per-destination circuit
/// breaker. Storage only; the HTTP handlers are api/webhooks.cpp and the sending happens in the
/// dispatcher's delivery worker (events/dispatcher.hpp) through a Sender that app/ provides.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::events {

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

/// One (event, webhook) delivery and its log.
struct Delivery {
  std::string id, webhook_id, event_id, event_type;
  std::string state;  ///< "pending", "succeeded", "failed".
  std::int64_t attempts = 0;
  std::int64_t next_attempt_at_ms = 0, created_at_ms = 0, updated_at_ms = 0;
  std::optional<std::int64_t> status_code, latency_ms, delivered_at_ms;
  std::string error;
  std::vector<Attempt> log;
};

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
/// Deletes the webhook, its deliveries and their log. kNotFound when absent.
Task<core::Result<void>> DeleteWebhook(store::Database& db, unsigned shard, std::string id);
/// The newest `limit` deliveries of a webhook with their attempts.
Task<core::Result<std::vector<Delivery>>> ListDeliveries(store::Database& db, unsigned shard, std::string webhook_id,
                                                         std::int64_t limit);
/// Sends a delivery again (its state becomes pending, due now). kNotFound when absent.
Task<core::Result<Delivery>> Redeliver(store::Database& db, unsigned shard, std::string webhook_id,
                                       std::string delivery_id);
/// The breaker of a destination, if it ever failed or succeeded.
Task<core::Result<std::optional<Breaker>>> GetBreaker(store::Database& db, unsigned shard, std::string destination);

}  // namespace basalt::events
