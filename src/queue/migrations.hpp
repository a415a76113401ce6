#pragma once
/// The queue engine's system tables (migration versions 900-949), for both backends.

#include <vector>

#include "store/migrations.hpp"

namespace basalt::queue {

/// basalt_queues, basalt_queue_messages (+ claim, state and idempotency indexes),
/// basalt_queue_counters. Appended by app/system_migrations.cpp.
std::vector<store::Migration> SystemMigrations();

}  // namespace basalt::queue
