// GET /api/v1/audit-log and the admin-token audit stage (see audit_log.hpp).

#include "api/audit_log.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <memory>

#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "core/time.hpp"
#include "obs/log.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;

constexpr std::string_view kPath = "/api/v1/audit-log";
constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
constexpr std::size_t kMaxUserAgent = 256;

core::Error BadParam(std::string param, std::string message) {
  core::Error e = core::Error::Make(core::ErrorCode::kBadRequest, "The query parameter '" + param + "' is invalid: " + message);
  e.fields.push_back({std::move(param), "invalid", std::move(message)});
  return e;
}

bool ParseInt(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool Digits(std::string_view s, std::size_t n, int& out) {
  if (s.size() < n) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

/// RFC 3339 date-time ("2026-11-28T06:00:00Z", "...T06:00:00.250+01:00"; 't'/'z' accepted) to Unix
/// milliseconds; nullopt when malformed.
std::optional<std::int64_t> ParseRfc3339(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (!Digits(s, 4, year) || s.size() < 19 || s[4] != '-' || !Digits(s.substr(5), 2, month) || s[7] != '-' ||
      !Digits(s.substr(8), 2, day) || (s[10] != 'T' && s[10] != 't') || !Digits(s.substr(11), 2, hour) ||
      s[13] != ':' || !Digits(s.substr(14), 2, minute) || s[16] != ':' || !Digits(s.substr(17), 2, second))
    return std::nullopt;
  s.remove_prefix(19);
  std::int64_t ms = 0;
  if (!s.empty() && s[0] == '.') {
    s.remove_prefix(1);
    std::size_t n = 0;
    int scale = 100;
    while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) {
      if (scale > 0) ms += (s[n] - '0') * scale;
      scale /= 10;
      ++n;
    }
    if (n == 0) return std::nullopt;
    s.remove_prefix(n);
  }
  std::int64_t offset_min = 0;
  if (s == "Z" || s == "z") {
  } else if (s.size() == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':') {
    int oh, om;
    if (!Digits(s.substr(1), 2, oh) || !Digits(s.substr(4), 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_min = (oh * 60 + om) * (s[0] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  return ((days * 24 + hour) * 60 + minute - offset_min) * 60'000 + std::int64_t{second} * 1000 + ms;
}

struct Params {
  audit::ListQuery query;
  int limit = kDefaultLimit;
};

core::Result<Params> ParseParams(std::string_view q) {
  Params p;
  std::size_t pos = 0;
  while (pos < q.size()) {
    std::size_t end = q.find('&', pos);
    if (end == std::string_view::npos) end = q.size();
    const std::string_view pair = q.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto key = detail::DecodeComponent(pair.substr(0, eq));
    auto value = detail::DecodeComponent(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) return std::unexpected(BadParam("query", "malformed percent-encoding"));
    if (value->size() > 1024) return std::unexpected(BadParam(*key, "longer than 1024 bytes"));
    if (*key == "action") {
      p.query.action = std::move(*value);
    } else if (*key == "actor_kind") {
      auto kind = audit::ParseActorKind(*value);
      if (!kind) return std::unexpected(BadParam("actor_kind", "must be one of user, api_key, service, admin_token, system, anonymous"));
      p.query.actor_kind = *kind;
    } else if (*key == "actor_id" || *key == "actor") {
      p.query.actor_id = std::move(*value);
    } else if (*key == "target") {
      p.query.target = std::move(*value);
    } else if (*key == "outcome") {
      auto outcome = audit::ParseOutcome(*value);
      if (!outcome) return std::unexpected(BadParam("outcome", "must be one of success, failure, denied"));
      p.query.outcome = *outcome;
    } else if (*key == "since" || *key == "until") {
      auto ms = ParseRfc3339(*value);
      if (!ms) return std::unexpected(BadParam(*key, "must be an RFC 3339 date-time, e.g. 2026-11-28T06:00:00Z"));
      (*key == "since" ? p.query.since_ms : p.query.until_ms) = *ms;
    } else if (*key == "limit") {
      std::int64_t n = 0;
      if (!ParseInt(*value, n) || n < 1) return std::unexpected(BadParam("limit", "must be a positive integer"));
      if (n > kMaxLimit) return std::unexpected(BadParam("limit", "must be at most 500"));
      p.limit = static_cast<int>(n);
    } else if (*key == "cursor") {
      std::int64_t n = 0;
      if (!ParseInt(*value, n) || n < 1) return std::unexpected(BadParam("cursor", "is not a cursor from this list"));
      p.query.before_sequence = n;
    } else {
      return std::unexpected(BadParam(*key, "unknown parameter"));
    }
  }
  p.query.limit = p.limit + 1;  // one more tells whether there is a next page
  return p;
}

std::string NextLink(const http::Request& req, const std::string& cursor) {
  std::string query;
  const std::string_view q = req.query();
  std::size_t pos = 0;
  while (pos < q.size()) {
    std::size_t end = q.find('&', pos);
    if (end == std::string_view::npos) end = q.size();
    const std::string_view pair = q.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty() || pair.starts_with("cursor=") || pair == "cursor") continue;
    query += std::string(pair) + "&";
  }
  return "<" + std::string(req.path()) + "?" + query + "cursor=" + cursor + ">; rel=\"next\"";
}

json::object ToJson(const audit::Record& r) {
  json::array changes;
  for (const auto& c : r.entry.changes) changes.emplace_back(c);
  return json::object{
      {"id", r.id},
      {"sequence", r.sequence},
      {"time", core::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(r.time_ms)))},
      {"actor_kind", audit::Name(r.entry.actor_kind)},
      {"actor_id", r.entry.actor_id},
      {"action", r.entry.action},
      {"target", r.entry.target},
      {"outcome", audit::Name(r.entry.outcome)},
      {"ip", r.entry.ip},
      {"user_agent", r.entry.user_agent},
      {"request_id", r.entry.request_id},
      {"changes", std::move(changes)},
      {"prev_hash", r.prev_hash},
      {"hash", r.hash},
  };
}

http::Task<http::Response> ListAuditLog(audit::AuditLog& log, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kAuditRead)) co_return *denied;
  auto params = ParseParams(req.query());
  if (!params) co_return detail::Fail(req, params.error());
  audit::ListQuery query = params->query;
  auto records = co_await log.List(req.shard(), std::move(query));
  if (!records) {
    obs::Log(obs::LogLevel::kError, "audit log: cannot list",
             {{"request_id", req.request_id()}, {"cause", records.error().cause}});
    co_return http::Problem(core::Error::Make(core::ErrorCode::kInternal, "The audit log could not be read."),
                            req.request_id());
  }
  const bool more = records->size() > static_cast<std::size_t>(params->limit);
  if (more) records->resize(static_cast<std::size_t>(params->limit));
  json::array items;
  items.reserve(records->size());
  for (const auto& r : *records) items.emplace_back(ToJson(r));
  std::string cursor;
  if (more && !records->empty()) cursor = std::to_string(records->back().sequence);
  json::object body;
  body["items"] = std::move(items);
  body["next_cursor"] = cursor.empty() ? json::value(nullptr) : json::value(cursor);
  http::Response res = http::Response::Json(200, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  if (!cursor.empty()) res.Add("Link", NextLink(req, cursor));
  co_return res;
}

/// Record writes: /api/v1/collections/{name}/records[/{id}] and /api/v1/batch.
bool WritesRecords(std::string_view path) {
  constexpr std::string_view kCollections = "/api/v1/collections/";
  if (path == "/api/v1/batch") return true;
  if (!path.starts_with(kCollections)) return false;
  path.remove_prefix(kCollections.size());
  const auto slash = path.find('/');
  return slash != std::string_view::npos && path.substr(slash).starts_with("/records");
}

bool ChangesState(http::Method m) {
  return m != http::Method::kGet && m != http::Method::kHead && m != http::Method::kOptions;
}

audit::Outcome OutcomeOf(int status) {
  if (status < 400) return audit::Outcome::kSuccess;
  if (status == 401 || status == 403 || status == 429) return audit::Outcome::kDenied;
  return audit::Outcome::kFailure;
}

}  // namespace

audit::ActorKind ActorKindOf(const http::Principal& principal) {
  using K = http::Principal::Kind;
  switch (principal.kind) {
    case K::kUser: return audit::ActorKind::kUser;
    case K::kApiKey: return audit::ActorKind::kApiKey;
    case K::kService: return audit::ActorKind::kService;
    case K::kAdminToken: return audit::ActorKind::kAdminToken;
    case K::kAnonymous: break;
  }
  return audit::ActorKind::kAnonymous;
}

namespace {

// The User-Agent as recorded: its first kMaxUserAgent bytes, printable ASCII only (any other byte
// becomes '?'). A header value may carry any byte (obs-text), and PostgreSQL refuses text that is
// not UTF-8: a crafted header, or a cut through a multi-byte character, must not keep an entry (a
// failed login, say) out of the log.
std::string RecordedUserAgent(std::string_view user_agent) {
  std::string out(user_agent.substr(0, kMaxUserAgent));
  for (char& c : out) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7F) c = '?';
  }
  return out;
}

}  // namespace

audit::Entry AuditEntry(const http::Request& req, std::string action, std::string target, audit::Outcome outcome) {
  audit::Entry e;
  e.actor_kind = ActorKindOf(req.principal());
  e.actor_id = req.principal().id;
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = outcome;
  e.ip = std::string(req.remote_address());
  e.user_agent = RecordedUserAgent(req.Header("User-Agent").value_or(""));
  e.request_id = req.request_id();
  return e;
}

core::Result<void> RegisterAuditLog(http::Router& router, audit::AuditLog& log) {
  audit::AuditLog* l = &log;
  return router.Add(http::Method::kGet, std::string(kPath),
                    [l](http::Request& req) -> http::Task<http::Response> { return ListAuditLog(*l, req); });
}

namespace {

// What an admin request that changes state is recorded as; null when it is not recorded.
const char* AdminAction(const http::Request& req) {
  if (!ChangesState(req.method())) return nullptr;
  if (req.principal().kind == http::Principal::Kind::kAdminToken) return "admin_token.used";
  // A superuser's record write: the collection's rules did not apply.
  if (req.principal().superuser() && WritesRecords(req.path())) return "admin.data_write";
  return nullptr;
}

}  // namespace

http::Middleware AdminTokenAuditStage(audit::AuditLog& log) {
  audit::AuditLog* l = &log;
  return {"admin_audit",
          [l](http::Request& req, http::Next next) -> http::Task<http::Response> {
            const char* action = AdminAction(req);  // not null: the stage applies
            http::Response res = co_await next(req);
            audit::Entry entry = AuditEntry(req, action, std::string(req.method_name()) + " " + std::string(req.path()),
                                            OutcomeOf(res.status));
            auto appended = co_await l->Append(req.shard(), std::move(entry));
            if (!appended) {
              obs::Log(obs::LogLevel::kError, "audit log: cannot record an admin token use",
                       {{"request_id", req.request_id()}, {"cause", appended.error().cause}});
            }
            co_return res;
          },
          [](const http::Request& req) { return AdminAction(req) != nullptr; }};
}

}  // namespace basalt::api
