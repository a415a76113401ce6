#pragma once
/// GET /api/v1/realtime (Server-Sent Events) and /api/v1/webhooks.

#include <chrono>
#include <cstddef>

#include "api/data_routes.hpp"
#include "core/error.hpp"
#include "http/router.hpp"

namespace basalt::events {
class Hub;
}
namespace basalt::queue {
class Engine;
}

namespace basalt::api {

struct RealtimeOptions {
  std::size_t max_pending = 4096;            ///< Events queued per subscriber before it is cut off.
  std::chrono::milliseconds heartbeat{15'000};  ///< A comment line when nothing else was sent.
};

/// What the realtime handler needs. References must outlive the router.
struct RealtimeServices {
  const DataServices& data;
  events::Hub& hub;
  RealtimeOptions options;
};

core::Result<void> RegisterRealtime(http::Router& router, const RealtimeServices& services);

struct WebhookOptions {
  bool allow_private = false;  ///< `webhooks.allow_private`.
};

/// POST/GET /api/v1/webhooks, GET/PATCH/DELETE /api/v1/webhooks/{id},
/// GET /api/v1/webhooks/{id}/deliveries, POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver.
/// Superuser only.
/// Redelivery produces onto `queue` (kWebhookQueue), which must outlive the router.
core::Result<void> RegisterWebhooks(http::Router& router, const DataServices& data, queue::Engine& queue,
                                    WebhookOptions options);

}  // namespace basalt::api
