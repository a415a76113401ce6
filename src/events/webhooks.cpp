#include "events/webhooks.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <chrono>
#include <set>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include "core/ids.hpp"
#include "core/time.hpp"
#include "queue/engine.hpp"
#include "store/values.hpp"

namespace basalt::events {
namespace {

using core::ErrorCode;
using store::Statement;
using store::Value;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::optional<std::int64_t> OptInt(const Value& v) {
  if (std::holds_alternative<store::Null>(v)) return std::nullopt;
  return store::IntOf(v);
}

std::string Base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::optional<std::string> FromBase64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * in.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t size = static_cast<std::size_t>(n);
  if (!in.empty() && in.back() == '=') --size;
  if (in.size() > 1 && in[in.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

std::string EventsJson(const std::vector<std::string>& names) {
  boost::json::array a;
  for (const auto& n : names) a.emplace_back(n);
  return boost::json::serialize(a);
}

std::vector<std::string> ParseEventsJson(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& item : v.as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

constexpr std::string_view kWebhookColumns = "id, url, events, active, created_at, updated_at";

Webhook ToWebhook(const std::vector<Value>& r) {
  Webhook w;
  w.id = store::TextOf(r[0]);
  w.url = store::TextOf(r[1]);
  w.events = ParseEventsJson(store::TextOf(r[2]));
  w.active = store::IntOf(r[3]) != 0;
  w.created_at = store::TextOf(r[4]);
  w.updated_at = store::TextOf(r[5]);
  return w;
}

/// The log row joined with its queue message (?1 = the webhook queue): the state and the next
/// attempt come from the message while it exists.
std::string DeliverySelect(const store::Dialect& d) {
  return "SELECT dl.id, dl.webhook_id, dl.event_id, dl.event_type,"
         " CASE WHEN m.state IN (0, 1) THEN 'pending' WHEN m.state = 3 THEN 'failed' ELSE dl.state END,"
         " dl.attempts, CASE WHEN m.state = 0 THEN m.visible_at ELSE NULL END, dl.created_at, dl.updated_at,"
         " dl.status_code, dl.latency_ms, dl.delivered_at, dl.error, dl.redelivery_of"
         " FROM basalt_webhook_deliveries dl LEFT JOIN basalt_queue_messages m ON m.id = dl.id AND m.queue = " +
         d.Placeholder(1);
}

Delivery ToDelivery(const std::vector<Value>& r) {
  Delivery d;
  d.id = store::TextOf(r[0]);
  d.webhook_id = store::TextOf(r[1]);
  d.event_id = store::TextOf(r[2]);
  d.event_type = store::TextOf(r[3]);
  d.state = store::TextOf(r[4]);
  d.attempts = store::IntOf(r[5]);
  d.next_attempt_at_ms = OptInt(r[6]);
  d.created_at_ms = store::IntOf(r[7]);
  d.updated_at_ms = store::IntOf(r[8]);
  d.status_code = OptInt(r[9]);
  d.latency_ms = OptInt(r[10]);
  d.delivered_at_ms = OptInt(r[11]);
  d.error = store::TextOf(r[12]);
  d.redelivery_of = store::TextOf(r[13]);
  return d;
}

core::Error NotFound(std::string what) { return core::Error::Make(ErrorCode::kNotFound, "No such " + what + "."); }

Task<core::Result<void>> RunAll(store::Transaction& tx, std::vector<Statement>& statements, std::int64_t& affected_first) {
  for (std::size_t i = 0; i < statements.size(); ++i) {
    auto r = co_await tx.Execute(std::move(statements[i]));
    if (!r) co_return std::unexpected(std::move(r.error()));
    if (i == 0) affected_first = r->affected;
  }
  co_return core::Result<void>{};
}

/// Runs statements in one transaction; returns the rows changed by the first.
Task<core::Result<std::int64_t>> Write(store::Database& db, unsigned shard, std::vector<Statement> statements) {
  std::int64_t affected = 0;
  auto done = co_await db.Transact(shard, [&statements, &affected](store::Transaction& tx) {
    return RunAll(tx, statements, affected);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return affected;
}

}  // namespace

core::Result<void> ValidateEventNames(const std::vector<std::string>& names) {
  if (names.empty() || names.size() > 50)
    return core::Fail(ErrorCode::kValidation, "'events' must list 1 to 50 event names.");
  std::set<std::string> seen;
  for (const auto& n : names) {
    bool ok = n == "*";
    if (!ok) {
      const auto dot = n.rfind('.');
      const std::string_view collection = std::string_view(n).substr(0, dot == std::string::npos ? 0 : dot);
      const std::string_view kind = dot == std::string::npos ? std::string_view() : std::string_view(n).substr(dot + 1);
      ok = !collection.empty() && collection.size() <= 61 &&
           std::all_of(collection.begin(), collection.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }) &&
           (kind == "created" || kind == "updated" || kind == "deleted" || kind == "*");
    }
    if (!ok) {
      core::Error e = core::Error::Make(ErrorCode::kValidation, "The webhook is invalid.");
      e.fields.push_back({"events", "invalid",
                          "'" + n.substr(0, 80) + "' is not <collection>.<created|updated|deleted|*> or *"});
      return std::unexpected(std::move(e));
    }
    if (!seen.insert(n).second) {
      core::Error e = core::Error::Make(ErrorCode::kValidation, "The webhook is invalid.");
      e.fields.push_back({"events", "duplicate", "'" + n.substr(0, 80) + "' is listed twice"});
      return std::unexpected(std::move(e));
    }
  }
  return {};
}

bool Matches(const std::vector<std::string>& names, std::string_view collection, std::string_view kind) {
  for (const auto& n : names) {
    if (n == "*") return true;
    if (n.size() == collection.size() + 1 + kind.size() && n.starts_with(collection) && n[collection.size()] == '.' &&
        std::string_view(n).substr(collection.size() + 1) == kind)
      return true;
    if (n.size() == collection.size() + 2 && n.starts_with(collection) && n.ends_with(".*")) return true;
  }
  return false;
}

std::string NewSecret() {
  unsigned char key[32];
  if (RAND_bytes(key, sizeof key) != 1) throw std::runtime_error("RAND_bytes failed");
  return "whsec_" + Base64(key, sizeof key);
}

std::string Sign(std::string_view secret, std::string_view id, std::int64_t timestamp, std::string_view body) {
  std::string_view encoded = secret;
  if (encoded.starts_with("whsec_")) encoded.remove_prefix(6);
  const std::string key = FromBase64(encoded).value_or(std::string(encoded));
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id);
  content += '.';
  content += std::to_string(timestamp);
  content += '.';
  content.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &mac_len);
  return "v1," + Base64(mac, mac_len);
}

std::string DestinationOf(std::string_view url) {
  std::string lower(url);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto scheme_end = lower.find("://");
  if (scheme_end == std::string::npos) return lower;
  const std::string scheme = lower.substr(0, scheme_end);
  std::string authority = lower.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  const bool has_port = !authority.empty() && authority.back() != ']' && authority.rfind(':') != std::string::npos &&
                        (authority.front() != '[' || authority.rfind(']') < authority.rfind(':'));
  if (!has_port) authority += scheme == "https" ? ":443" : ":80";
  return scheme + "://" + authority;
}

std::string DeliveryPayload(std::string_view webhook_id, std::string_view event_id, std::string_view event_type,
                            std::string_view event_json) {
  const auto quoted = [](std::string_view v) { return boost::json::serialize(boost::json::string(v)); };
  std::string out;
  out.reserve(event_json.size() + 160);
  out += "{\"webhook_id\":";
  out += quoted(webhook_id);
  out += ",\"event_id\":";
  out += quoted(event_id);
  out += ",\"event_type\":";
  out += quoted(event_type);
  out += ",\"event\":";
  out += event_json;
  out += "}";
  return out;
}

std::string DeliveryInsertSql(const store::Dialect& d) {
  return "INSERT INTO basalt_webhook_deliveries (id, webhook_id, event_id, event_type, state, attempts, redelivery_of,"
         " created_at, updated_at) VALUES (" +
         d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) +
         ", 'pending', 0, " + d.Placeholder(5) + ", " + d.Placeholder(6) + ", " + d.Placeholder(6) +
         ") ON CONFLICT (id) DO NOTHING";
}

Task<core::Result<std::pair<Webhook, std::string>>> CreateWebhook(store::Database& db, unsigned shard, std::string url,
                                                                  std::vector<std::string> events) {
  const auto& d = db.dialect();
  Webhook w;
  w.id = core::FormatUuid(core::NewUuidV7());
  w.url = std::move(url);
  w.events = std::move(events);
  w.created_at = w.updated_at = core::FormatRfc3339(std::chrono::system_clock::now());
  std::string secret = NewSecret();
  std::vector<Statement> st;
  st.push_back({"INSERT INTO basalt_webhooks (id, url, events, secret, active, created_at, updated_at) VALUES (" +
                    d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) +
                    ", 1, " + d.Placeholder(5) + ", " + d.Placeholder(5) + ")",
                {w.id, w.url, EventsJson(w.events), secret, w.created_at}});
  auto done = co_await Write(db, shard, std::move(st));
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return std::pair<Webhook, std::string>{std::move(w), std::move(secret)};
}

Task<core::Result<std::vector<Webhook>>> ListWebhooks(store::Database& db, unsigned shard) {
  Statement st{"SELECT " + std::string(kWebhookColumns) + " FROM basalt_webhooks ORDER BY id", {}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  std::vector<Webhook> out;
  for (const auto& r : rows->rows) out.push_back(ToWebhook(r));
  co_return out;
}

Task<core::Result<Webhook>> GetWebhook(store::Database& db, unsigned shard, std::string id) {
  Statement st{"SELECT " + std::string(kWebhookColumns) + " FROM basalt_webhooks WHERE id = " +
                   db.dialect().Placeholder(1),
               {std::move(id)}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::unexpected(NotFound("webhook"));
  co_return ToWebhook(rows->rows[0]);
}

Task<core::Result<Webhook>> UpdateWebhook(store::Database& db, unsigned shard, std::string id,
                                          std::optional<std::string> url, std::optional<std::vector<std::string>> events,
                                          std::optional<bool> active) {
  const auto& d = db.dialect();
  std::string sets = "updated_at = " + d.Placeholder(1);
  std::vector<Value> params{core::FormatRfc3339(std::chrono::system_clock::now())};
  if (url) {
    params.emplace_back(*url);
    sets += ", url = " + d.Placeholder(static_cast<int>(params.size()));
  }
  if (events) {
    params.emplace_back(EventsJson(*events));
    sets += ", events = " + d.Placeholder(static_cast<int>(params.size()));
  }
  if (active) {
    params.emplace_back(std::int64_t{*active ? 1 : 0});
    sets += ", active = " + d.Placeholder(static_cast<int>(params.size()));
  }
  params.emplace_back(id);
  std::vector<Statement> st;
  st.push_back({"UPDATE basalt_webhooks SET " + sets + " WHERE id = " + d.Placeholder(static_cast<int>(params.size())),
                std::move(params)});
  auto done = co_await Write(db, shard, std::move(st));
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (*done == 0) co_return std::unexpected(NotFound("webhook"));
  co_return co_await GetWebhook(db, shard, std::move(id));
}

Task<core::Result<void>> DeleteWebhook(store::Database& db, unsigned shard, std::string id) {
  const auto& d = db.dialect();
  std::vector<Statement> st;
  st.push_back({"DELETE FROM basalt_webhooks WHERE id = " + d.Placeholder(1), {id}});
  st.push_back({"DELETE FROM basalt_webhook_attempts WHERE delivery_id IN (SELECT id FROM basalt_webhook_deliveries"
                " WHERE webhook_id = " + d.Placeholder(1) + ")",
                {id}});
  st.push_back({"DELETE FROM basalt_webhook_deliveries WHERE webhook_id = " + d.Placeholder(1), {id}});
  auto done = co_await Write(db, shard, std::move(st));
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (*done == 0) co_return std::unexpected(NotFound("webhook"));
  co_return core::Result<void>{};
}

Task<core::Result<std::vector<Delivery>>> ListDeliveries(store::Database& db, unsigned shard, std::string webhook_id,
                                                         std::int64_t limit) {
  const auto& d = db.dialect();
  Statement st{DeliverySelect(d) + " WHERE dl.webhook_id = " + d.Placeholder(2) +
                   " ORDER BY dl.created_at DESC, dl.id DESC LIMIT " + d.Placeholder(3),
               {std::string(kWebhookQueue), webhook_id, limit}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  std::vector<Delivery> out;
  for (const auto& r : rows->rows) out.push_back(ToDelivery(r));
  if (out.empty()) co_return out;
  std::string ids;
  std::vector<Value> params;
  for (const auto& delivery : out) {
    params.emplace_back(delivery.id);
    ids += (ids.empty() ? "" : ", ") + d.Placeholder(static_cast<int>(params.size()));
  }
  Statement log{"SELECT delivery_id, attempt, at, status_code, latency_ms, error FROM basalt_webhook_attempts"
                " WHERE delivery_id IN (" + ids + ") ORDER BY delivery_id, attempt",
                std::move(params)};
  auto attempts = co_await db.Query(shard, std::move(log));
  if (!attempts) co_return std::unexpected(std::move(attempts.error()));
  for (const auto& r : attempts->rows) {
    const std::string id = store::TextOf(r[0]);
    for (auto& delivery : out) {
      if (delivery.id != id) continue;
      delivery.log.push_back(Attempt{store::IntOf(r[1]), store::IntOf(r[2]), OptInt(r[3]), store::IntOf(r[4]), store::TextOf(r[5])});
    }
  }
  co_return out;
}

namespace {

/// Produces the new message and its log row (one transaction).
Task<core::Result<void>> RedeliverBody(store::Transaction& tx, const store::Dialect& d, queue::Engine& engine,
                                       const Delivery& original, const std::string& payload, std::string& new_id) {
  std::vector<queue::NewMessage> messages(1);
  messages[0].payload = payload;
  std::string queue_name(kWebhookQueue);
  auto produced = co_await engine.Produce(tx, std::move(queue_name), std::move(messages));
  if (!produced) co_return std::unexpected(std::move(produced.error()));
  new_id = (*produced)[0].id;
  Statement insert{DeliveryInsertSql(d),
                   {new_id, original.webhook_id, original.event_id, original.event_type, original.id, NowMs()}};
  auto inserted = co_await tx.Execute(std::move(insert));
  if (!inserted) co_return std::unexpected(std::move(inserted.error()));
  co_return core::Result<void>{};
}

/// One delivery of a webhook (with its log), or kNotFound.
Task<core::Result<Delivery>> GetDelivery(store::Database& db, unsigned shard, const std::string& webhook_id,
                                         const std::string& delivery_id) {
  const auto& d = db.dialect();
  Statement st{DeliverySelect(d) + " WHERE dl.id = " + d.Placeholder(2) + " AND dl.webhook_id = " + d.Placeholder(3),
               {std::string(kWebhookQueue), delivery_id, webhook_id}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::unexpected(NotFound("delivery"));
  co_return ToDelivery(rows->rows[0]);
}

}  // namespace

Task<core::Result<Delivery>> Redeliver(store::Database& db, queue::Engine& engine, unsigned shard,
                                       std::string webhook_id, std::string delivery_id) {
  auto original = co_await GetDelivery(db, shard, webhook_id, delivery_id);
  if (!original) co_return std::unexpected(std::move(original.error()));
  std::string queue_name(kWebhookQueue);
  std::string message_id = delivery_id;
  auto message = co_await engine.Peek(shard, std::move(queue_name), std::move(message_id));
  if (!message) {
    if (message.error().code != ErrorCode::kNotFound) co_return std::unexpected(std::move(message.error()));
    co_return core::Fail(ErrorCode::kConflict,
                         "The delivery's message is no longer retained by the queue; it cannot be sent again.");
  }
  std::string new_id;
  const auto& d = db.dialect();
  const Delivery& o = *original;
  std::string payload = std::move(message->payload);
  auto done = co_await db.Transact(shard, [&d, &engine, &o, &payload, &new_id](store::Transaction& tx) {
    return RedeliverBody(tx, d, engine, o, payload, new_id);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return co_await GetDelivery(db, shard, webhook_id, new_id);
}

Task<core::Result<std::optional<Breaker>>> GetBreaker(store::Database& db, unsigned shard, std::string destination) {
  Statement st{"SELECT destination, state, failures, open_until FROM basalt_webhook_breakers WHERE destination = " +
                   db.dialect().Placeholder(1),
               {std::move(destination)}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::optional<Breaker>{};
  const auto& r = rows->rows[0];
  co_return std::optional<Breaker>{Breaker{store::TextOf(r[0]), store::TextOf(r[1]), store::IntOf(r[2]), store::IntOf(r[3])}};
}

}  // namespace basalt::events
