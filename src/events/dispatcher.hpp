#pragma once
/// The dispatcher: a background thread with its own io_context that reads new outbox events in
/// order and fans them out.
///
/// - Realtime (roles api and all): every instance reads every event after its own in-memory
///   position (start: the end of the outbox) and publishes it to its Hub. It wakes at once when
///   this process commits a record write (Notify) and otherwise polls every `poll` (other
///   instances' writes on PostgreSQL).
/// - Webhooks (roles worker and all): exactly once cluster-wide, a transaction locks the
///   `webhooks` cursor row (an UPDATE takes its row lock on both backends), reads the events
///   after it, inserts one delivery per (event, matching webhook) and moves the cursor, so two
///   instances never enqueue the same event twice and a crash enqueues nothing or everything.
///   The delivery worker claims due deliveries under a lease, consults the destination's
///   circuit breaker, sends them signed through the Sender, and records the attempt.
/// - Retention: events older than `retention` (and already enqueued) and finished deliveries
///   older than it are purged every minute (worker role).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "events/hub.hpp"
#include "store/database.hpp"

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
  std::chrono::milliseconds poll{250};
  std::chrono::seconds retention{86'400};
  DeliveryOptions delivery;
};

class Dispatcher {
 public:
  /// `shard` must be a database shard no I/O thread uses (the dispatcher's thread owns it).
  Dispatcher(store::Database& database, unsigned shard, Hub& hub, DispatcherOptions options, Sender sender);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts the thread.
  void Start();
  /// Wakes the dispatcher now (a record write committed). Thread-safe, cheap.
  void Notify();
  /// Stops the thread; in-flight deliveries are abandoned (their lease expires; they are sent
  /// again later, so a receiver may see a delivery twice after a crash or stop mid-request).
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace basalt::events
