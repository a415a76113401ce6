#pragma once
/// /api/v1/queues/...: the durable queue over HTTP (queue/engine.hpp), in DESIGN.md's canonical
/// shapes, plus the queue gauges and counters for /metrics.

#include <string>

#include "core/error.hpp"
#include "http/router.hpp"
#include "http/task.hpp"

namespace basalt::queue {
class Engine;
}

namespace basalt::api {

/// Registers every queue route. `engine` must outlive the router.
core::Result<void> RegisterQueues(http::Router& router, queue::Engine& engine);

/// Appends the queue metrics (Prometheus text format) sampled now from the database: per queue
/// gauges of messages by state, oldest claimable age, and the produced/acked/nacked/failed
/// counters. Errors are reported as a comment line, never as a failed scrape.
http::Task<void> RenderQueueMetrics(queue::Engine& engine, unsigned shard, std::string& out);

}  // namespace basalt::api
