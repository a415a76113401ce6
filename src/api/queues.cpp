// /api/v1/queues/...: the queue engine over HTTP. Shapes (DESIGN.md "Canonical shapes"):
//   PUT  /api/v1/queues/{queue}                         settings -> 201 created / 200 replaced
//   GET  /api/v1/queues, GET /api/v1/queues/{queue}     settings and stats
//   POST /api/v1/queues/{queue}/messages                {"messages": [...]} -> 201 {"messages": [{"id", "duplicate"}]}
//   POST /api/v1/queues/{queue}/claims                  {"max", "lease_ms", "wait_ms"} -> 200 {"messages": [...]}
//   POST /api/v1/queues/{queue}/messages/{id}/ack|nack|extend
//   POST /api/v1/queues/{queue}/acks                    batch ack {"messages": [{"id", "lease_token"}]}
//   GET  /api/v1/queues/{queue}/dead-letters, POST .../dead-letters/replay {"ids"} | {"all": true}
//   POST /api/v1/queues/{queue}/completed/replay        {"ids"} | {"from", "to"} (RFC 3339)
// Every route goes through Authorize(): `queues:produce`, `queues:consume` or `queues:admin`, or
// their per-queue forms (`queues:produce:<queue>`); listing all queues needs `queues:admin`.

#include "api/queues.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>

#include <boost/json.hpp>

#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "core/time.hpp"
#include "queue/engine.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using core::ErrorCode;

constexpr std::string_view kBase = "/api/v1/queues";
/// A produce batch of 1,000 messages needs more than the server's default body limit.
constexpr std::uint64_t kProduceBodyLimit = 16 * 1024 * 1024;

/// What a caller wants to do with a queue.
enum class QueueAction {
  kProduce,  ///< Add messages.
  kConsume,  ///< Claim, ack, nack, extend.
  kAdmin,    ///< Settings, stats, dead letters, replay.
};

http::Response ReservedQueue(const http::Request& req) {
  return http::Problem(core::Error::Make(ErrorCode::kForbidden,
                                         "Queues named basalt.* are reserved for Basalt: they can be inspected and "
                                         "their dead letters replayed, not produced to, consumed from or reconfigured."),
                       req.request_id());
}

std::string_view PermissionOf(QueueAction action) {
  switch (action) {
    case QueueAction::kProduce: return auth::kQueuesProduce;
    case QueueAction::kConsume: return auth::kQueuesConsume;
    case QueueAction::kAdmin: break;
  }
  return auth::kQueuesAdmin;
}

/// The permission check of every queue route: nullopt to proceed, else the 401/403 answer. The
/// permission of the action for `queue` (its per-queue form counts); `queue` "" (the list of all
/// queues) needs the unrestricted permission.
std::optional<http::Response> Authorize(const http::Request& req, QueueAction action, std::string_view queue) {
  if (auto denied = detail::RequirePermission(req, PermissionOf(action), queue)) return denied;
  // Basalt's own queues ("basalt.*", e.g. basalt.webhooks) are inspected and their dead letters
  // replayed like any other, but only Basalt produces to and consumes from them.
  if (action != QueueAction::kAdmin && queue::IsSystemQueue(queue)) return ReservedQueue(req);
  return std::nullopt;
}

core::Error Invalid(std::string field, std::string code, std::string message) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The request is invalid.");
  e.fields.push_back({std::move(field), std::move(code), std::move(message)});
  return e;
}

std::string Rfc3339(std::int64_t ms) {
  return core::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

/// Latest time accepted in a request (2200-01-01T00:00:00Z): far enough, and clear of the
/// nanosecond system_clock's range (year 2262), which time formatting goes through.
constexpr std::int64_t kMaxTimeMs = 7'258'118'400'000;

/// RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`) -> Unix milliseconds; nullopt when
/// malformed or outside 1970..2199.
std::optional<std::int64_t> ParseTime(std::string_view s) {
  auto digits = [&](std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !digits(0, 4, year) || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' || !digits(8, 2, day) ||
      (s[10] != 'T' && s[10] != 't') || !digits(11, 2, hour) || s[13] != ':' || !digits(14, 2, minute) || s[16] != ':' ||
      !digits(17, 2, second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    std::size_t n = 0;
    for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++n) {
      if (n < 3) millis = millis * 10 + (s[pos] - '0');
    }
    if (n == 0 || n > 9) return std::nullopt;
    for (; n < 3; ++n) millis *= 10;
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || s[pos + 3] != ':' || !digits(pos + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  const std::int64_t ms = ((days * 24 + hour) * 60 + minute - offset) * 60'000 + std::min(second, 59) * 1000 + millis;
  if (ms < 0 || ms >= kMaxTimeMs) return std::nullopt;
  return ms;
}

/// Reads the body as a JSON object; an empty body is `{}` when `empty_ok`.
core::Result<json::object> BodyObject(const http::Request& req, bool empty_ok) {
  if (empty_ok && req.body().empty()) return json::object{};
  auto body = detail::ParseBody(req);
  if (!body) return std::unexpected(std::move(body.error()));
  if (!body->is_object()) return std::unexpected(Invalid("", "type", "the body must be a JSON object"));
  return std::move(body->as_object());
}

/// Collects field errors while reading an object.
class Reader {
 public:
  Reader(const json::object& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  /// Fails every member not in `known`.
  void OnlyKnown(std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : object_) {
      bool ok = false;
      for (auto k : known) ok = ok || key == k;
      if (!ok) Add(std::string(key), "unknown_field", "unknown field");
    }
  }
  std::optional<std::int64_t> Int(std::string_view key, std::int64_t min, std::int64_t max) {
    const json::value* v = object_.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    std::int64_t n = 0;
    if (v->is_int64()) {
      n = v->as_int64();
    } else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      n = static_cast<std::int64_t>(v->as_uint64());
    } else if (v->is_double() && std::floor(v->as_double()) == v->as_double() && std::fabs(v->as_double()) < 9e15) {
      n = static_cast<std::int64_t>(v->as_double());
    } else {
      Add(std::string(key), "type", "must be an integer");
      return std::nullopt;
    }
    if (n < min || n > max) {
      Add(std::string(key), "out_of_range", "must be " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return n;
  }
  std::optional<std::string> String(std::string_view key, std::size_t min_len, std::size_t max_len) {
    const json::value* v = object_.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) {
      Add(std::string(key), "type", "must be a string");
      return std::nullopt;
    }
    const auto& s = v->as_string();
    if (s.size() < min_len || s.size() > max_len) {
      Add(std::string(key), "length", "must be " + std::to_string(min_len) + " to " + std::to_string(max_len) + " bytes");
      return std::nullopt;
    }
    return std::string(s);
  }
  std::optional<bool> Bool(std::string_view key) {
    const json::value* v = object_.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) {
      Add(std::string(key), "type", "must be true or false");
      return std::nullopt;
    }
    return v->as_bool();
  }
  std::optional<std::int64_t> Time(std::string_view key) {
    auto text = String(key, 1, 64);
    if (!text) return std::nullopt;
    auto ms = ParseTime(*text);
    if (!ms) Add(std::string(key), "invalid", "must be an RFC 3339 date-time between 1970 and 2199");
    return ms;
  }
  /// An array of 1..kMaxBatch strings (ids).
  std::optional<std::vector<std::string>> Ids(std::string_view key) {
    const json::value* v = object_.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_array()) {
      Add(std::string(key), "type", "must be an array of ids");
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : v->as_array()) {
      if (!item.is_string() || item.as_string().empty() || item.as_string().size() > 64) {
        Add(std::string(key), "type", "must be an array of ids");
        return std::nullopt;
      }
      out.emplace_back(item.as_string());
    }
    return out;
  }
  void Add(std::string field, std::string code, std::string message) {
    errors_.push_back({prefix_ + field, std::move(code), std::move(message)});
  }
  std::vector<core::FieldError>& errors() { return errors_; }

 private:
  const json::object& object_;
  std::string prefix_;
  std::vector<core::FieldError> errors_;
};

core::Error Failed(std::vector<core::FieldError> errors) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The request is invalid.");
  e.fields = std::move(errors);
  return e;
}

json::object SettingsJson(const queue::QueueSettings& s) {
  return json::object{{"max_attempts", s.max_attempts},   {"backoff_min_ms", s.backoff_min_ms},
                      {"backoff_max_ms", s.backoff_max_ms}, {"lease_ms", s.lease_ms},
                      {"retention_ms", s.retention_ms},     {"dead_letter", s.dead_letter}};
}

json::object QueueJson(const queue::QueueInfo& q) {
  return json::object{{"name", q.name},
                      {"settings", SettingsJson(q.settings)},
                      {"created_at", Rfc3339(q.created_at)},
                      {"updated_at", Rfc3339(q.updated_at)}};
}

json::object StatsJson(const queue::QueueStats& s) {
  return json::object{{"ready", s.ready},         {"delayed", s.delayed},   {"in_flight", s.in_flight},
                      {"completed", s.completed}, {"dead", s.dead},         {"oldest_age_ms", s.oldest_age_ms},
                      {"produced", s.produced},   {"acked", s.acked},       {"nacked", s.nacked},
                      {"failed", s.failed},       {"waiting_claims", s.waiting_claims}};
}

http::Response JsonOk(int status, const json::value& value) {
  http::Response res = http::Response::Json(status, json::serialize(value));
  res.Set("Cache-Control", "no-store");
  return res;
}

/// Appends `"key":<raw JSON>` for stored JSON text (written by us, so valid), or `{}`/null when empty.
void AppendRaw(std::string& out, std::string_view key, const std::string& raw, std::string_view when_empty) {
  out += '"';
  out += key;
  out += "\":";
  out += raw.empty() ? when_empty : std::string_view(raw);
}

std::string MessagesBody(const std::vector<queue::Message>& messages) {
  std::string out = "{\"messages\":[";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (i) out += ',';
    out += "{\"id\":\"" + m.id + "\",";
    AppendRaw(out, "payload", m.payload, "null");
    out += ',';
    AppendRaw(out, "headers", m.headers, "{}");
    out += ",\"priority\":" + std::to_string(m.priority) + ",\"attempt\":" + std::to_string(m.attempt) +
           ",\"lease_token\":\"" + m.lease_token + "\",\"lease_expires_at\":\"" + Rfc3339(m.lease_expires_at) +
           "\",\"created_at\":\"" + Rfc3339(m.created_at) + "\"";
    if (!m.idempotency_key.empty()) out += ",\"idempotency_key\":" + json::serialize(json::string(m.idempotency_key));
    if (!m.last_error.empty()) out += ",\"last_error\":" + json::serialize(json::string(m.last_error));
    out += '}';
  }
  out += "]}";
  return out;
}

/// Parses `{"messages": [...]}` for a produce. Errors name fields as `messages[i].x`.
core::Result<std::vector<queue::NewMessage>> ParseProduce(const json::object& body) {
  Reader top(body, "");
  top.OnlyKnown({"messages"});
  const json::value* list = body.if_contains("messages");
  if (!list || !list->is_array()) {
    top.Add("messages", list ? "type" : "required", "an array of messages is required");
    return std::unexpected(Failed(std::move(top.errors())));
  }
  const auto& array = list->as_array();
  if (array.size() > queue::kMaxBatch) return core::Fail(ErrorCode::kPayloadTooLarge, "At most 1000 messages per request.");
  if (array.empty()) top.Add("messages", "required", "at least one message is required");
  std::vector<queue::NewMessage> out;
  out.reserve(array.size());
  std::vector<core::FieldError> errors = std::move(top.errors());
  for (std::size_t i = 0; i < array.size(); ++i) {
    const std::string prefix = "messages[" + std::to_string(i) + "].";
    if (!array[i].is_object()) {
      errors.push_back({prefix.substr(0, prefix.size() - 1), "type", "must be an object"});
      continue;
    }
    const auto& m = array[i].as_object();
    Reader r(m, prefix);
    r.OnlyKnown({"payload", "headers", "priority", "delay_ms", "available_at", "idempotency_key"});
    queue::NewMessage msg;
    if (const json::value* payload = m.if_contains("payload")) {
      msg.payload = json::serialize(*payload);
    } else {
      r.Add("payload", "required", "a JSON payload is required");
    }
    if (const json::value* headers = m.if_contains("headers"); headers && !headers->is_null()) {
      bool ok = headers->is_object();
      if (ok) {
        for (const auto& [k, v] : headers->as_object()) ok = ok && v.is_string();
      }
      if (ok) {
        if (!headers->as_object().empty()) msg.headers = json::serialize(*headers);
      } else {
        r.Add("headers", "type", "must be an object of strings");
      }
    }
    msg.priority = static_cast<int>(r.Int("priority", 0, queue::kMaxPriority).value_or(0));
    msg.delay_ms = r.Int("delay_ms", 0, 31'536'000'000).value_or(0);  // a year at most
    msg.available_at = r.Time("available_at");
    if (m.contains("delay_ms") && m.contains("available_at")) r.Add("available_at", "conflict", "give delay_ms or available_at, not both");
    msg.idempotency_key = r.String("idempotency_key", 1, queue::kMaxIdempotencyKey).value_or("");
    for (auto& e : r.errors()) errors.push_back(std::move(e));
    out.push_back(std::move(msg));
  }
  if (!errors.empty()) return std::unexpected(Failed(std::move(errors)));
  return out;
}

/// The settings of a PUT: every field optional (defaults), unknown ones refused.
core::Result<queue::QueueSettings> ParseSettings(const json::object& body) {
  Reader r(body, "");
  r.OnlyKnown({"name", "max_attempts", "backoff_min_ms", "backoff_max_ms", "lease_ms", "retention_ms", "dead_letter"});
  queue::QueueSettings s;
  s.max_attempts = r.Int("max_attempts", 1, 1000).value_or(s.max_attempts);
  s.backoff_min_ms = r.Int("backoff_min_ms", 0, 86'400'000).value_or(s.backoff_min_ms);
  s.backoff_max_ms = r.Int("backoff_max_ms", 0, 86'400'000).value_or(std::max(s.backoff_max_ms, s.backoff_min_ms));
  s.lease_ms = r.Int("lease_ms", 100, 43'200'000).value_or(s.lease_ms);
  s.retention_ms = r.Int("retention_ms", 0, 31'536'000'000).value_or(s.retention_ms);
  s.dead_letter = r.Bool("dead_letter").value_or(s.dead_letter);
  if (!r.errors().empty()) return std::unexpected(Failed(std::move(r.errors())));
  if (auto valid = queue::ValidateSettings(s); !valid) return std::unexpected(std::move(valid.error()));
  return s;
}

std::string_view AckOutcomeName(queue::AckOutcome o) {
  switch (o) {
    case queue::AckOutcome::kAcked: return "acked";
    case queue::AckOutcome::kNotFound: return "not_found";
    case queue::AckOutcome::kStale: return "stale";
  }
  return "stale";
}

/// The lease token of an ack/nack/extend body.
std::optional<std::string> LeaseToken(Reader& r) {
  auto token = r.String("lease_token", 1, 128);
  if (!token && r.errors().empty()) r.Add("lease_token", "required", "the lease token of the claim is required");
  return token;
}

struct Routes {
  queue::Engine& engine;

  http::Task<http::Response> PutQueue(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    if (queue::IsSystemQueue(queue)) co_return ReservedQueue(req);
    if (!queue::ValidQueueName(queue)) {
      co_return detail::Fail(req, Invalid("name", "invalid", "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"));
    }
    auto body = BodyObject(req, true);
    if (!body) co_return detail::Fail(req, body.error());
    if (const json::value* n = body->if_contains("name"); n && (!n->is_string() || n->as_string() != queue)) {
      co_return detail::Fail(req, Invalid("name", "mismatch", "must match the queue in the path"));
    }
    auto settings = ParseSettings(*body);
    if (!settings) co_return detail::Fail(req, settings.error());
    auto put = co_await engine.Put(req.shard(), queue, *settings);
    if (!put) co_return detail::Fail(req, put.error());
    http::Response res = JsonOk(put->second ? 201 : 200, QueueJson(put->first));
    if (put->second) res.Set("Location", std::string(kBase) + "/" + queue);
    co_return res;
  }

  http::Task<http::Response> ListQueues(http::Request& req) {
    if (auto denied = Authorize(req, QueueAction::kAdmin, "")) co_return *denied;
    auto list = co_await engine.List(req.shard());
    if (!list) co_return detail::Fail(req, list.error());
    json::array items;
    for (const auto& q : *list) items.emplace_back(QueueJson(q));
    co_return JsonOk(200, json::object{{"items", std::move(items)}});
  }

  http::Task<http::Response> GetQueue(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    auto info = co_await engine.Get(req.shard(), queue);
    if (!info) co_return detail::Fail(req, info.error());
    auto stats = co_await engine.Stats(req.shard(), queue);
    if (!stats) co_return detail::Fail(req, stats.error());
    json::object out = QueueJson(*info);
    out["stats"] = StatsJson(*stats);
    co_return JsonOk(200, out);
  }

  http::Task<http::Response> Produce(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kProduce, queue)) co_return *denied;
    if (!queue::ValidQueueName(queue)) {
      co_return detail::Fail(req, Invalid("queue", "invalid", "1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit"));
    }
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    auto messages = ParseProduce(*body);
    if (!messages) co_return detail::Fail(req, messages.error());
    auto produced = co_await engine.Produce(req.shard(), queue, std::move(*messages));
    if (!produced) co_return detail::Fail(req, produced.error());
    std::string out = "{\"messages\":[";
    for (std::size_t i = 0; i < produced->size(); ++i) {
      if (i) out += ',';
      out += "{\"id\":\"" + (*produced)[i].id + "\",\"duplicate\":" + ((*produced)[i].duplicate ? "true" : "false") + "}";
    }
    out += "]}";
    http::Response res = http::Response::Json(201, std::move(out));
    res.Set("Cache-Control", "no-store");
    co_return res;
  }

  http::Task<http::Response> PeekMessage(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    auto m = co_await engine.Peek(req.shard(), queue, std::string(req.Param("id")));
    if (!m) co_return detail::Fail(req, m.error());
    static constexpr std::string_view kStates[] = {"ready", "in_flight", "completed", "dead"};
    // The state's own time: when it becomes claimable, when its lease ends, when it finished.
    static constexpr std::string_view kTimes[] = {"available_at", "lease_expires_at", "completed_at", "dead_at"};
    const auto state_index = static_cast<std::size_t>(m->state);
    std::string out = "{\"id\":\"" + m->id + "\",\"state\":\"" +
                      std::string(state_index < 4 ? kStates[state_index] : "unknown") + "\",";
    AppendRaw(out, "payload", m->payload, "null");
    out += ',';
    AppendRaw(out, "headers", m->headers, "{}");
    out += ",\"priority\":" + std::to_string(m->priority) + ",\"attempt\":" + std::to_string(m->attempt) +
           ",\"created_at\":\"" + Rfc3339(m->created_at) + "\",\"" + std::string(kTimes[state_index < 4 ? state_index : 0]) + "\":\"" + Rfc3339(m->visible_at) +
           "\",\"last_error\":" + (m->last_error.empty() ? "null" : json::serialize(json::string(m->last_error))) + "}";
    http::Response res = http::Response::Json(200, std::move(out));
    res.Set("Cache-Control", "no-store");
    co_return res;
  }

  http::Task<http::Response> ClaimMessages(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kConsume, queue)) co_return *denied;
    if (!queue::ValidQueueName(queue)) co_return detail::Fail(req, core::Error::Make(ErrorCode::kNotFound, "No such queue."));
    auto body = BodyObject(req, true);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"max", "lease_ms", "wait_ms"});
    queue::ClaimOptions options;
    options.max = r.Int("max", 1, static_cast<std::int64_t>(queue::kMaxBatch)).value_or(10);
    options.lease_ms = r.Int("lease_ms", 100, 43'200'000).value_or(0);
    options.wait_ms = r.Int("wait_ms", 0, queue::kMaxWaitMs).value_or(0);
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    auto claimed = co_await engine.Claim(req.shard(), queue, options);
    if (!claimed) co_return detail::Fail(req, claimed.error());
    http::Response res = http::Response::Json(200, MessagesBody(*claimed));
    res.Set("Cache-Control", "no-store");
    co_return res;
  }

  http::Task<http::Response> Ack(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kConsume, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"lease_token"});
    auto token = LeaseToken(r);
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    auto acked = co_await engine.Ack(req.shard(), queue, std::string(req.Param("id")), *token);
    if (!acked) co_return detail::Fail(req, acked.error());
    co_return http::Response::Empty(204);
  }

  http::Task<http::Response> Nack(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kConsume, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"lease_token", "delay_ms", "error"});
    auto token = LeaseToken(r);
    auto delay = r.Int("delay_ms", 0, 86'400'000);
    auto error = r.String("error", 0, queue::kMaxErrorText);
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    const std::string id(req.Param("id"));
    auto nacked = co_await engine.Nack(req.shard(), queue, id, *token, delay, error.value_or(""));
    if (!nacked) co_return detail::Fail(req, nacked.error());
    co_return JsonOk(200, json::object{{"id", id}, {"state", *nacked == queue::NackOutcome::kDead ? "dead" : "ready"}});
  }

  http::Task<http::Response> Extend(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kConsume, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"lease_token", "lease_ms"});
    auto token = LeaseToken(r);
    auto lease = r.Int("lease_ms", 100, 43'200'000);
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    const std::string id(req.Param("id"));
    auto until = co_await engine.Extend(req.shard(), queue, id, *token, lease.value_or(0));
    if (!until) co_return detail::Fail(req, until.error());
    co_return JsonOk(200, json::object{{"id", id}, {"lease_expires_at", Rfc3339(*until)}});
  }

  http::Task<http::Response> AckBatch(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kConsume, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader top(*body, "");
    top.OnlyKnown({"messages"});
    const json::value* list = body->if_contains("messages");
    if (!list || !list->is_array() || list->as_array().empty()) {
      top.Add("messages", "required", "an array of {id, lease_token} is required");
      co_return detail::Fail(req, Failed(std::move(top.errors())));
    }
    if (list->as_array().size() > queue::kMaxBatch)
      co_return detail::Fail(req, core::Error::Make(ErrorCode::kPayloadTooLarge, "At most 1000 messages per request."));
    std::vector<queue::AckItem> items;
    std::vector<core::FieldError> errors = std::move(top.errors());
    for (std::size_t i = 0; i < list->as_array().size(); ++i) {
      const auto& item = list->as_array()[i];
      const std::string prefix = "messages[" + std::to_string(i) + "].";
      if (!item.is_object()) {
        errors.push_back({prefix.substr(0, prefix.size() - 1), "type", "must be an object"});
        continue;
      }
      Reader r(item.as_object(), prefix);
      r.OnlyKnown({"id", "lease_token"});
      auto id = r.String("id", 1, 64);
      if (!id && r.errors().empty()) r.Add("id", "required", "the message id is required");
      auto token = LeaseToken(r);
      for (auto& e : r.errors()) errors.push_back(std::move(e));
      if (id && token) items.push_back(queue::AckItem{*id, *token});
    }
    if (!errors.empty()) co_return detail::Fail(req, Failed(std::move(errors)));
    auto outcomes = co_await engine.AckBatch(req.shard(), queue, items);
    if (!outcomes) co_return detail::Fail(req, outcomes.error());
    json::array results;
    std::int64_t acked = 0;
    for (std::size_t i = 0; i < outcomes->size(); ++i) {
      if ((*outcomes)[i] == queue::AckOutcome::kAcked) ++acked;
      results.emplace_back(json::object{{"id", items[i].id}, {"result", AckOutcomeName((*outcomes)[i])}});
    }
    co_return JsonOk(200, json::object{{"acked", acked}, {"results", std::move(results)}});
  }

  http::Task<http::Response> DeadLetters(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    std::int64_t limit = 50;
    std::string cursor;
    std::string_view query = req.query();
    while (!query.empty()) {
      const auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      const auto eq = pair.find('=');
      const std::string_view key = pair.substr(0, eq);
      auto value = detail::DecodeComponent(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
      if (!value) co_return detail::Fail(req, core::Error::Make(ErrorCode::kBadRequest, "Malformed query string."));
      if (key == "limit") {
        try {
          std::size_t used = 0;
          limit = std::stoll(*value, &used);
          if (used != value->size() || limit < 1 || limit > 500) throw std::out_of_range("limit");
        } catch (...) {
          co_return detail::Fail(req, core::Error::Make(ErrorCode::kBadRequest, "limit must be 1 to 500."));
        }
      } else if (key == "cursor") {
        cursor = *value;
      }
    }
    auto info = co_await engine.Get(req.shard(), queue);
    if (!info) co_return detail::Fail(req, info.error());
    auto page = co_await engine.DeadLetters(req.shard(), queue, limit, cursor);
    if (!page) {
      core::Error e = page.error();
      if (e.code == ErrorCode::kValidation) e.code = ErrorCode::kBadRequest;
      co_return detail::Fail(req, e);
    }
    std::string out = "{\"items\":[";
    for (std::size_t i = 0; i < page->items.size(); ++i) {
      const auto& m = page->items[i];
      if (i) out += ',';
      out += "{\"id\":\"" + m.id + "\",";
      AppendRaw(out, "payload", m.payload, "null");
      out += ',';
      AppendRaw(out, "headers", m.headers, "{}");
      out += ",\"priority\":" + std::to_string(m.priority) + ",\"attempt\":" + std::to_string(m.attempt) +
             ",\"last_error\":" + (m.last_error.empty() ? "null" : json::serialize(json::string(m.last_error))) +
             ",\"created_at\":\"" + Rfc3339(m.created_at) + "\",\"dead_at\":\"" + Rfc3339(m.dead_at) + "\"}";
    }
    out += "],\"next_cursor\":";
    out += page->next_cursor.empty() ? "null" : json::serialize(json::string(page->next_cursor));
    out += '}';
    http::Response res = http::Response::Json(200, std::move(out));
    res.Set("Cache-Control", "no-store");
    if (!page->next_cursor.empty()) {
      std::string link = "<" + std::string(kBase) + "/" + queue + "/dead-letters?limit=" + std::to_string(limit) +
                         "&cursor=";
      for (char c : page->next_cursor) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') {
          link += c;
        } else {
          static constexpr char kHex[] = "0123456789ABCDEF";
          link += '%';
          link += kHex[static_cast<unsigned char>(c) >> 4];
          link += kHex[static_cast<unsigned char>(c) & 0xf];
        }
      }
      res.Set("Link", link + ">; rel=\"next\"");
    }
    co_return res;
  }

  http::Task<http::Response> ReplayDead(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"ids", "all"});
    auto ids = r.Ids("ids");
    const bool all = r.Bool("all").value_or(false);
    if (r.errors().empty() && ids.has_value() == all) r.Add("ids", "required", "give either ids or \"all\": true");
    if (ids && ids->size() > queue::kMaxBatch)
      co_return detail::Fail(req, core::Error::Make(ErrorCode::kPayloadTooLarge, "At most 1000 ids per request."));
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    auto info = co_await engine.Get(req.shard(), queue);
    if (!info) co_return detail::Fail(req, info.error());
    std::vector<std::string> chosen;
    if (ids) chosen = std::move(*ids);
    auto replayed = co_await engine.ReplayDead(req.shard(), queue, std::move(chosen), all);
    if (!replayed) co_return detail::Fail(req, replayed.error());
    co_return JsonOk(200, json::object{{"replayed", *replayed}});
  }

  http::Task<http::Response> ReplayCompleted(http::Request& req) {
    const std::string queue(req.Param("queue"));
    if (auto denied = Authorize(req, QueueAction::kAdmin, queue)) co_return *denied;
    auto body = BodyObject(req, false);
    if (!body) co_return detail::Fail(req, body.error());
    Reader r(*body, "");
    r.OnlyKnown({"ids", "from", "to"});
    queue::CompletedSelector selector;
    auto ids = r.Ids("ids");
    selector.from = r.Time("from");
    selector.to = r.Time("to");
    if (r.errors().empty()) {
      const bool range = selector.from || selector.to;
      if (ids.has_value() == range) r.Add("ids", "required", "give either ids or a time range (from, to)");
      if (ids && ids->empty()) r.Add("ids", "required", "at least one id");
      if (selector.from && selector.to && *selector.to <= *selector.from) r.Add("to", "out_of_range", "must be after from");
    }
    if (ids && ids->size() > queue::kMaxBatch)
      co_return detail::Fail(req, core::Error::Make(ErrorCode::kPayloadTooLarge, "At most 1000 ids per request."));
    if (!r.errors().empty()) co_return detail::Fail(req, Failed(std::move(r.errors())));
    if (ids) selector.ids = std::move(*ids);
    auto info = co_await engine.Get(req.shard(), queue);
    if (!info) co_return detail::Fail(req, info.error());
    auto replayed = co_await engine.ReplayCompleted(req.shard(), queue, std::move(selector));
    if (!replayed) co_return detail::Fail(req, replayed.error());
    co_return JsonOk(200, json::object{{"replayed", *replayed}});
  }
};

}  // namespace

core::Result<void> RegisterQueues(http::Router& router, queue::Engine& engine) {
  auto routes = std::make_shared<Routes>(Routes{engine});
  const std::string base(kBase);
  const std::string one = base + "/{queue}";
  using M = http::Method;
  using Member = http::Task<http::Response> (Routes::*)(http::Request&);
  struct Entry {
    M method;
    std::string path;
    Member member;
    http::RouteOptions options;
  };
  const std::vector<Entry> entries = {
      {M::kGet, base, &Routes::ListQueues, {}},
      {M::kGet, one, &Routes::GetQueue, {}},
      {M::kPut, one, &Routes::PutQueue, {}},
      {M::kPost, one + "/messages", &Routes::Produce, {.max_body_bytes = kProduceBodyLimit}},
      {M::kPost, one + "/claims", &Routes::ClaimMessages, {}},
      {M::kPost, one + "/acks", &Routes::AckBatch, {.max_body_bytes = kProduceBodyLimit}},
      {M::kGet, one + "/messages/{id}", &Routes::PeekMessage, {}},
      {M::kPost, one + "/messages/{id}/ack", &Routes::Ack, {}},
      {M::kPost, one + "/messages/{id}/nack", &Routes::Nack, {}},
      {M::kPost, one + "/messages/{id}/extend", &Routes::Extend, {}},
      {M::kGet, one + "/dead-letters", &Routes::DeadLetters, {}},
      {M::kPost, one + "/dead-letters/replay", &Routes::ReplayDead, {}},
      {M::kPost, one + "/completed/replay", &Routes::ReplayCompleted, {}},
  };
  for (const auto& e : entries) {
    Member member = e.member;
    auto added = router.Add(
        e.method, e.path, [routes, member](http::Request& req) { return ((*routes).*member)(req); }, e.options);
    if (!added) return added;
  }
  return {};
}

http::Task<void> RenderQueueMetrics(queue::Engine& engine, unsigned shard, std::string& out) {
  auto queues = co_await engine.List(shard);
  if (!queues) {
    out += "# basalt_queue metrics unavailable: database error\n";
    co_return;
  }
  struct Sample {
    std::string name;
    queue::QueueStats stats;
  };
  std::vector<Sample> samples;
  for (const auto& q : *queues) {
    auto stats = co_await engine.Stats(shard, q.name);
    if (stats) samples.push_back(Sample{q.name, *stats});
  }
  // Queue names are [A-Za-z0-9_.-]: safe inside a label value without escaping.
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  };
  family("basalt_queue_messages", "gauge", "Messages per queue by state.");
  for (const auto& s : samples) {
    const std::pair<std::string_view, std::int64_t> states[] = {{"ready", s.stats.ready},         {"delayed", s.stats.delayed},
                                                                {"in_flight", s.stats.in_flight}, {"completed", s.stats.completed},
                                                                {"dead", s.stats.dead}};
    for (const auto& [state, value] : states) {
      out += "basalt_queue_messages{queue=\"" + s.name + "\",state=\"" + std::string(state) + "\"} " +
             std::to_string(value) + "\n";
    }
  }
  family("basalt_queue_oldest_message_age_seconds", "gauge", "How long the oldest claimable message has waited.");
  for (const auto& s : samples) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(s.stats.oldest_age_ms) / 1000.0);
    out += "basalt_queue_oldest_message_age_seconds{queue=\"" + s.name + "\"} " + buf + "\n";
  }
  const std::pair<std::string_view, std::int64_t queue::QueueStats::*> counters[] = {
      {"basalt_queue_produced_total", &queue::QueueStats::produced},
      {"basalt_queue_acked_total", &queue::QueueStats::acked},
      {"basalt_queue_nacked_total", &queue::QueueStats::nacked},
      {"basalt_queue_dead_lettered_total", &queue::QueueStats::failed}};
  for (const auto& [name, member] : counters) {
    family(name, "counter", "Messages per queue since it was created (all processes).");
    for (const auto& s : samples) out += std::string(name) + "{queue=\"" + s.name + "\"} " + std::to_string(s.stats.*member) + "\n";
  }
}

}  // namespace basalt::api
