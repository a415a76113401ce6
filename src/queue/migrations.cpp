#include "queue/migrations.hpp"

namespace basalt::queue {

std::vector<store::Migration> SystemMigrations() {
  return {{.version = 900,
           .name = "queue engine",
           .up = "CREATE TABLE basalt_queues ("
                 " name TEXT PRIMARY KEY NOT NULL, max_attempts BIGINT NOT NULL, backoff_min_ms BIGINT NOT NULL,"
                 " backoff_max_ms BIGINT NOT NULL, lease_ms BIGINT NOT NULL, retention_ms BIGINT NOT NULL,"
                 " dead_letter BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
                 "CREATE TABLE basalt_queue_messages ("
                 " id TEXT PRIMARY KEY NOT NULL, queue TEXT NOT NULL, state BIGINT NOT NULL, priority BIGINT NOT NULL,"
                 " seq BIGINT NOT NULL, visible_at BIGINT NOT NULL, attempt BIGINT NOT NULL, payload TEXT NOT NULL,"
                 " headers TEXT, idempotency_key TEXT, lease_token TEXT, last_error TEXT, created_at BIGINT NOT NULL);"
                 "CREATE INDEX basalt_queue_messages_claim ON basalt_queue_messages"
                 " (queue, priority DESC, seq, visible_at) WHERE state < 2;"
                 "CREATE INDEX basalt_queue_messages_state ON basalt_queue_messages (queue, state, visible_at);"
                 "CREATE UNIQUE INDEX basalt_queue_messages_key ON basalt_queue_messages (queue, idempotency_key)"
                 " WHERE idempotency_key IS NOT NULL;"
                 "CREATE TABLE basalt_queue_counters ("
                 " queue TEXT NOT NULL, slot BIGINT NOT NULL, produced BIGINT NOT NULL, acked BIGINT NOT NULL,"
                 " nacked BIGINT NOT NULL, failed BIGINT NOT NULL, PRIMARY KEY (queue, slot));",
           .down = "DROP TABLE basalt_queue_counters; DROP TABLE basalt_queue_messages; DROP TABLE basalt_queues;"}};
}

}  // namespace basalt::queue
