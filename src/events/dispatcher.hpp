#pragma once
/// The dispatcher: a background thread with its own io_context that reads new outbox events in
/// order and fans them out.
///
/// - Wake-up: every transaction that appends events notifies events::kEventsChannel (after its
///   commit: in-process on SQLite, LISTEN/NOTIFY on PostgreSQL, so other instances' writes wake
///   it too) and the dispatcher listens. On PostgreSQL a notified transaction's events can still
///   be invisible (an older transaction is running, see outbox.hpp); the dispatcher then looks
///   again after 5, 10, 20 ... ms (at most 1 s apart, for at most 30 s) until they are visible.
///   Besides, it looks every `poll` (default 5 s) as a safety net for a lost notification.
/// - Realtime (roles api and all): every instance reads every event after its own in-memory
///   position (start: the end of the outbox) and publishes it to its Hub.
/// - Webhooks (roles worker and all): exactly once cluster-wide, a transaction locks the
///   `webhooks` cursor row (an UPDATE takes its row lock on both backends), reads the events
///   after it, produces one message per (event, matching webhook) onto the system queue
///   kWebhookQueue (idempotency key "<event id>:<webhook id>") with its delivery-log row, and
///   moves the cursor, so a crash enqueues nothing or everything and a re-dispatch is a duplicate.
///   The webhook worker claims those messages (a long-poll, woken by the produce), consults the
///   destination's circuit breaker (open: the message is released with a delay, no attempt
///   spent), sends it signed through the Sender, records the attempt, and acks (2xx) or nacks
///   (the queue's exponential backoff; exhausted attempts become the queue's dead letters).
/// - Retention: events older than `retention` (and already enqueued) and finished delivery-log
///   rows older than it are purged every minute (worker role).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "events/hub.hpp"
#include "store/database.hpp"

namespace basalt::queue {
class Engine;
}

namespace basalt::events {

/// One outbound HTTP request of a delivery.
struct OutboundRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// Its outcome: the status (0 when no response came) and an error message when it failed.
struct OutboundResult {
  int status = 0;
  std::string error;
};

/// Sends a request (app/ adapts http::Fetch). Runs on the dispatcher's io_context.
using Sender = std::function<store::Task<OutboundResult>(OutboundRequest)>;

/// The webhook queue's settings (written to kWebhookQueue when the worker starts) and the worker's.
struct DeliveryOptions {
  unsigned max_attempts = 8;
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_max{3'600'000};
  unsigned breaker_threshold = 5;
  std::chrono::milliseconds breaker_cooldown{30'000};
  std::chrono::milliseconds lease{120'000};  ///< Longer than a request's total timeout.
  unsigned concurrency = 16;
};

struct DispatcherOptions {
  bool realtime = true;  ///< Publish to this process's subscribers.
  bool webhooks = true;  ///< Enqueue and send webhook deliveries; purge.
  std::chrono::milliseconds poll{5000};  ///< Safety-net look when no notification came.
  std::chrono::seconds retention{86'400};
  DeliveryOptions delivery;
};

class Dispatcher {
 public:
  /// `shard` must be a database shard no I/O thread uses (the dispatcher's thread owns it).
  /// `queue` carries the webhook deliveries; both must outlive the dispatcher.
  Dispatcher(store::Database& database, queue::Engine& queue, unsigned shard, Hub& hub, DispatcherOptions options,
             Sender sender);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts listening and the thread.
  void Start();
  /// Wakes the dispatcher now. Thread-safe, cheap. (The kEventsChannel listener calls it.)
  void Notify();
  /// Stops the thread. With webhooks on, it first calls queue::Engine::Shutdown (ending the
  /// worker's long-poll; call Stop only when the process stops). Deliveries still in flight after
  /// a few seconds are abandoned: their lease expires and they are sent again later, so a
  /// receiver may see a delivery twice after a crash or a stop mid-request.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace basalt::events
