#include "events/outbox.hpp"

#include <chrono>
#include <optional>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "core/ids.hpp"
#include "core/time.hpp"
#include "store/deferred.hpp"
#include "store/values.hpp"

namespace basalt::events {
namespace {

std::string Quoted(std::string_view s) { return boost::json::serialize(boost::json::string(s)); }

constexpr std::string_view kColumns = "seq, txid, id, collection, type, record_id, created_at, payload";

}  // namespace

std::string_view KindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kCreated: return "created";
    case ChangeKind::kUpdated: return "updated";
    case ChangeKind::kDeleted: break;
  }
  return "deleted";
}

store::Statement OutboxInsert(const store::Dialect& d, std::string_view collection, std::string_view record_id,
                              ChangeKind kind, std::string_view record_json, const std::vector<std::string>& changed) {
  const auto now = std::chrono::system_clock::now();
  const std::string id = core::FormatUuid(core::NewUuidV7());
  std::string ce;
  ce.reserve(record_json.size() + 320);
  ce += R"({"specversion":"1.0","id":")";
  ce += id;
  ce += R"(","source":)";
  ce += Quoted("/api/v1/collections/" + std::string(collection));
  ce += R"(,"type":"basalt.record.)";
  ce += KindName(kind);
  ce += R"(","subject":)";
  ce += Quoted(std::string(collection) + "/" + std::string(record_id));
  ce += R"(,"time":")";
  ce += core::FormatRfc3339(now);
  ce += R"(","datacontenttype":"application/json")";
  if (kind == ChangeKind::kUpdated) {
    std::string names;
    for (const auto& c : changed) names += (names.empty() ? "" : ",") + c;
    ce += R"(,"changedfields":)";
    ce += Quoted(names);
  }
  ce += R"(,"data":)";
  ce += record_json;
  ce += "}";
  const std::int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return store::Statement{"INSERT INTO basalt_events (id, collection, type, record_id, created_at, payload) VALUES (" +
                              d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                              d.Placeholder(4) + ", " + d.Placeholder(5) + ", " + d.Placeholder(6) + ")",
                          {id, std::string(collection), std::string(KindName(kind)), std::string(record_id), ms,
                           std::move(ce)}};
}

store::Task<core::Result<void>> AppendEvent(store::Transaction& tx, const store::Dialect& dialect,
                                            std::string_view collection, std::string_view record_id, ChangeKind kind,
                                            std::string_view record_json, const std::vector<std::string>& changed,
                                            bool defer) {
  store::Statement insert = OutboxInsert(dialect, collection, record_id, kind, record_json, changed);
  insert.sql += " RETURNING txid";
  // The notification's payload is the row's txid. Identical payloads of one transaction may merge:
  // one notification per transaction and txid.
  co_return co_await store::ExecuteAndNotify(tx, std::move(insert), std::string(kEventsChannel), defer);
}

store::Statement ReadAfter(const store::Dialect& d, Position after, std::int64_t limit, std::string_view collection) {
  store::Statement st;
  st.sql = "SELECT " + std::string(kColumns) + " FROM basalt_events_visible WHERE (txid > " + d.Placeholder(1) +
           " OR (txid = " + d.Placeholder(1) + " AND seq > " + d.Placeholder(2) + "))";
  st.params = {after.txid, after.seq};
  if (!collection.empty()) {
    st.sql += " AND collection = " + d.Placeholder(3);
    st.params.emplace_back(std::string(collection));
  }
  st.sql += " ORDER BY txid, seq LIMIT " + d.Placeholder(static_cast<int>(st.params.size()) + 1);
  st.params.emplace_back(limit);
  return st;
}

store::Statement LastPosition() {
  return {"SELECT txid, seq FROM basalt_events_visible ORDER BY txid DESC, seq DESC LIMIT 1", {}};
}

store::Statement PositionOf(const store::Dialect& d, std::int64_t seq) {
  return {"SELECT txid, seq FROM basalt_events WHERE seq = " + d.Placeholder(1), {seq}};
}

std::vector<Event> ToEvents(const store::ResultSet& rows) {
  std::vector<Event> out;
  out.reserve(rows.rows.size());
  for (const auto& r : rows.rows) {
    Event e;
    e.position = {store::IntOf(r[1]), store::IntOf(r[0])};
    e.id = store::TextOf(r[2]);
    e.collection = store::TextOf(r[3]);
    e.kind = store::TextOf(r[4]);
    e.record_id = store::TextOf(r[5]);
    e.created_at_ms = store::IntOf(r[6]);
    e.payload = store::TextOf(r[7]);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Position> ToPosition(const store::ResultSet& rows) {
  if (rows.rows.empty()) return std::nullopt;
  return Position{store::IntOf(rows.rows[0][0]), store::IntOf(rows.rows[0][1])};
}

std::vector<store::Migration> Migrations(std::string_view dialect_name) {
  const bool pg = dialect_name == "postgres";
  std::string events =
      pg ? "CREATE TABLE basalt_events (seq BIGSERIAL PRIMARY KEY,"
           " txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),"
         : "CREATE TABLE basalt_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, txid BIGINT NOT NULL DEFAULT 0,";
  events +=
      " id TEXT NOT NULL, collection TEXT NOT NULL, type TEXT NOT NULL, record_id TEXT NOT NULL,"
      " created_at BIGINT NOT NULL, payload TEXT NOT NULL);"
      "CREATE INDEX basalt_events_order ON basalt_events (txid, seq);"
      "CREATE INDEX basalt_events_created ON basalt_events (created_at);";
  events += pg ? "CREATE VIEW basalt_events_visible AS SELECT * FROM basalt_events"
                 " WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint;"
               : "CREATE VIEW basalt_events_visible AS SELECT * FROM basalt_events;";
  events +=
      "CREATE TABLE basalt_event_cursors (name TEXT PRIMARY KEY, txid BIGINT NOT NULL, seq BIGINT NOT NULL);"
      "INSERT INTO basalt_event_cursors (name, txid, seq) VALUES ('webhooks', 0, 0);";
  std::string webhooks =
      "CREATE TABLE basalt_webhooks (id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL,"
      " secret TEXT NOT NULL, active BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
      "CREATE TABLE basalt_webhook_deliveries (id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL,"
      " event_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,"
      " attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, lease_until BIGINT NOT NULL,"
      " lease_token TEXT, status_code BIGINT, latency_ms BIGINT, error TEXT, created_at BIGINT NOT NULL,"
      " updated_at BIGINT NOT NULL, delivered_at BIGINT, UNIQUE (webhook_id, event_id));"
      "CREATE INDEX basalt_webhook_deliveries_due ON basalt_webhook_deliveries (state, next_attempt_at);"
      "CREATE INDEX basalt_webhook_deliveries_hook ON basalt_webhook_deliveries (webhook_id, created_at);"
      "CREATE TABLE basalt_webhook_attempts (delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL,"
      " at BIGINT NOT NULL, status_code BIGINT, latency_ms BIGINT NOT NULL, error TEXT,"
      " PRIMARY KEY (delivery_id, attempt));"
      "CREATE TABLE basalt_webhook_breakers (destination TEXT PRIMARY KEY, state TEXT NOT NULL,"
      " failures BIGINT NOT NULL, open_until BIGINT NOT NULL);";
  return {{.version = 950,
           .name = "events outbox",
           .up = std::move(events),
           .down = "DROP TABLE basalt_event_cursors; DROP VIEW basalt_events_visible; DROP TABLE basalt_events;"},
          {.version = 951,
           .name = "webhooks",
           .up = std::move(webhooks),
           .down = "DROP TABLE basalt_webhook_breakers; DROP TABLE basalt_webhook_attempts;"
                   " DROP TABLE basalt_webhook_deliveries; DROP TABLE basalt_webhooks;"},
          // Deliveries travel through the queue (basalt.webhooks) now: the private retry table
          // (state, lease, next attempt, body) gives way to a log keyed by the message id.
          // Deliveries still pending in the old table are not carried over.
          {.version = 952,
           .name = "webhook deliveries through the queue",
           .up = "DROP TABLE basalt_webhook_attempts; DROP TABLE basalt_webhook_deliveries;"
                 "CREATE TABLE basalt_webhook_deliveries (id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL,"
                 " event_id TEXT NOT NULL, event_type TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL,"
                 " status_code BIGINT, latency_ms BIGINT, error TEXT, redelivery_of TEXT,"
                 " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, delivered_at BIGINT);"
                 "CREATE INDEX basalt_webhook_deliveries_hook ON basalt_webhook_deliveries (webhook_id, created_at);"
                 "CREATE INDEX basalt_webhook_deliveries_done ON basalt_webhook_deliveries (updated_at);"
                 "CREATE TABLE basalt_webhook_attempts (delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL,"
                 " at BIGINT NOT NULL, status_code BIGINT, latency_ms BIGINT NOT NULL, error TEXT,"
                 " PRIMARY KEY (delivery_id, attempt));",
           .down = "DROP TABLE basalt_webhook_attempts; DROP TABLE basalt_webhook_deliveries;"
                   "CREATE TABLE basalt_webhook_deliveries (id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL,"
                   " event_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,"
                   " attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, lease_until BIGINT NOT NULL,"
                   " lease_token TEXT, status_code BIGINT, latency_ms BIGINT, error TEXT, created_at BIGINT NOT NULL,"
                   " updated_at BIGINT NOT NULL, delivered_at BIGINT, UNIQUE (webhook_id, event_id));"
                   "CREATE INDEX basalt_webhook_deliveries_due ON basalt_webhook_deliveries (state, next_attempt_at);"
                   "CREATE INDEX basalt_webhook_deliveries_hook ON basalt_webhook_deliveries (webhook_id, created_at);"
                   "CREATE TABLE basalt_webhook_attempts (delivery_id TEXT NOT NULL, attempt BIGINT NOT NULL,"
                   " at BIGINT NOT NULL, status_code BIGINT, latency_ms BIGINT NOT NULL, error TEXT,"
                   " PRIMARY KEY (delivery_id, attempt));"}};
}

}  // namespace basalt::events
