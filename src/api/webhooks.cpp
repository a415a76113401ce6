// /api/v1/webhooks: register URLs for record events (permission `webhooks:manage`). The secret is
// returned once, by the POST. URLs are checked at registration (syntax, and the resolved
// addresses against `webhooks.allow_private`) and again by the client at every connect.

#include <charconv>
#include <chrono>

#include <boost/json.hpp>

#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "api/realtime.hpp"
#include "core/time.hpp"
#include "events/webhooks.hpp"
#include "http/client.hpp"
#include "queue/engine.hpp"
#include "store/database.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using core::ErrorCode;

struct Ctx {
  store::Database& db;
  queue::Engine& queue;
  WebhookOptions options;
};

std::string Time(std::int64_t ms) {
  return core::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

json::value OptionalInt(const std::optional<std::int64_t>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::object WebhookJson(const events::Webhook& w) {
  json::array names;
  for (const auto& n : w.events) names.emplace_back(n);
  return json::object{{"id", w.id},         {"url", w.url},           {"events", std::move(names)},
                      {"active", w.active}, {"created_at", w.created_at}, {"updated_at", w.updated_at}};
}

json::object DeliveryJson(const events::Delivery& d) {
  json::array log;
  for (const auto& a : d.log) {
    log.push_back(json::object{{"attempt", a.attempt},
                               {"at", Time(a.at_ms)},
                               {"status_code", OptionalInt(a.status_code)},
                               {"latency_ms", a.latency_ms},
                               {"error", a.error.empty() ? json::value(nullptr) : json::value(a.error)}});
  }
  return json::object{{"id", d.id},
                      {"webhook_id", d.webhook_id},
                      {"event_id", d.event_id},
                      {"event_type", d.event_type},
                      {"state", d.state},
                      {"attempts", d.attempts},
                      {"status_code", OptionalInt(d.status_code)},
                      {"latency_ms", OptionalInt(d.latency_ms)},
                      {"error", d.error.empty() ? json::value(nullptr) : json::value(d.error)},
                      {"created_at", Time(d.created_at_ms)},
                      {"updated_at", Time(d.updated_at_ms)},
                      {"next_attempt_at", d.next_attempt_at_ms ? json::value(Time(*d.next_attempt_at_ms)) : json::value(nullptr)},
                      {"delivered_at", d.delivered_at_ms ? json::value(Time(*d.delivered_at_ms)) : json::value(nullptr)},
                      {"redelivery_of", d.redelivery_of.empty() ? json::value(nullptr) : json::value(d.redelivery_of)},
                      {"log", std::move(log)}};
}

http::Response JsonResponse(int status, const json::object& body) {
  http::Response res = http::Response::Json(status, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  return res;
}

/// 401 without credentials, 403 without the permission `webhooks:manage`.
std::optional<http::Response> Deny(const http::Request& req) {
  return detail::RequirePermission(req, auth::kWebhooksManage);
}

core::Error Invalid(std::string field, std::string code, std::string message) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The webhook is invalid.");
  e.fields.push_back({std::move(field), std::move(code), std::move(message)});
  return e;
}

struct Input {
  std::optional<std::string> url;
  std::optional<std::vector<std::string>> events;
  std::optional<bool> active;
};

core::Result<Input> ParseInput(const http::Request& req, bool create) {
  auto body = detail::ParseBody(req, !create);
  if (!body) return std::unexpected(std::move(body.error()));
  if (!body->is_object()) return core::Fail(ErrorCode::kBadRequest, "The body must be a JSON object.");
  Input in;
  for (const auto& [key, value] : body->as_object()) {
    if (key == "url") {
      if (!value.is_string()) return std::unexpected(Invalid("url", "type", "must be a string"));
      in.url = std::string(value.as_string());
      if (auto ok = http::CheckUrlSyntax(*in.url); !ok) return std::unexpected(Invalid("url", "invalid", ok.error().message));
    } else if (key == "events") {
      if (!value.is_array()) return std::unexpected(Invalid("events", "type", "must be an array of strings"));
      std::vector<std::string> names;
      for (const auto& n : value.as_array()) {
        if (!n.is_string()) return std::unexpected(Invalid("events", "type", "must be an array of strings"));
        names.emplace_back(n.as_string());
      }
      if (auto ok = events::ValidateEventNames(names); !ok) return std::unexpected(std::move(ok.error()));
      in.events = std::move(names);
    } else if (key == "active") {
      if (!value.is_bool()) return std::unexpected(Invalid("active", "type", "must be true or false"));
      in.active = value.as_bool();
    } else {
      return std::unexpected(Invalid(std::string(key).substr(0, 64), "unknown", "unknown member"));
    }
  }
  if (create && !in.url) return std::unexpected(Invalid("url", "required", "is required"));
  if (create && !in.events) return std::unexpected(Invalid("events", "required", "is required"));
  return in;
}

http::Task<core::Result<void>> CheckDestination(const Ctx& c, const std::string& url) {
  std::string copy = url;
  auto ok = co_await http::CheckDestination(std::move(copy), c.options.allow_private);
  if (!ok) co_return std::unexpected(Invalid("url", "refused", ok.error().message));
  co_return core::Result<void>{};
}

http::Task<http::Response> Create(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  auto in = ParseInput(req, true);
  if (!in) co_return detail::Fail(req, in.error());
  if (auto ok = co_await CheckDestination(c, *in->url); !ok) co_return detail::Fail(req, ok.error());
  auto created = co_await events::CreateWebhook(c.db, req.shard(), std::move(*in->url), std::move(*in->events));
  if (!created) co_return detail::Fail(req, created.error());
  json::object body = WebhookJson(created->first);
  body["secret"] = created->second;
  http::Response res = JsonResponse(201, body);
  res.Set("Location", "/api/v1/webhooks/" + created->first.id);
  co_return res;
}

http::Task<http::Response> List(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  auto hooks = co_await events::ListWebhooks(c.db, req.shard());
  if (!hooks) co_return detail::Fail(req, hooks.error());
  json::array items;
  for (const auto& w : *hooks) items.emplace_back(WebhookJson(w));
  co_return JsonResponse(200, json::object{{"items", std::move(items)}});
}

http::Task<http::Response> View(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  std::string id(req.Param("id"));
  auto hook = co_await events::GetWebhook(c.db, req.shard(), std::move(id));
  if (!hook) co_return detail::Fail(req, hook.error());
  json::object body = WebhookJson(*hook);
  std::string destination = events::DestinationOf(hook->url);
  auto breaker = co_await events::GetBreaker(c.db, req.shard(), destination);
  if (!breaker) co_return detail::Fail(req, breaker.error());
  const events::Breaker b = breaker->value_or(events::Breaker{events::DestinationOf(hook->url)});
  body["breaker"] = json::object{{"destination", b.destination},
                                 {"state", b.state},
                                 {"failures", b.failures},
                                 {"open_until", b.open_until_ms ? json::value(Time(b.open_until_ms)) : json::value(nullptr)}};
  co_return JsonResponse(200, body);
}

http::Task<http::Response> Update(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  auto in = ParseInput(req, false);
  if (!in) co_return detail::Fail(req, in.error());
  if (in->url) {
    if (auto ok = co_await CheckDestination(c, *in->url); !ok) co_return detail::Fail(req, ok.error());
  }
  std::string id(req.Param("id"));
  auto hook = co_await events::UpdateWebhook(c.db, req.shard(), std::move(id), std::move(in->url),
                                             std::move(in->events), in->active);
  if (!hook) co_return detail::Fail(req, hook.error());
  co_return JsonResponse(200, WebhookJson(*hook));
}

http::Task<http::Response> Delete(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  std::string id(req.Param("id"));
  auto done = co_await events::DeleteWebhook(c.db, req.shard(), std::move(id));
  if (!done) co_return detail::Fail(req, done.error());
  co_return http::Response::Empty(204);
}

http::Task<http::Response> Deliveries(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  std::int64_t limit = 50;
  for (std::string_view q = req.query(); !q.empty();) {
    const std::size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (!pair.starts_with("limit=")) continue;
    const std::string_view v = pair.substr(6);
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
    if (ec != std::errc() || ptr != v.data() + v.size() || limit < 1 || limit > 500) {
      core::Error e = core::Error::Make(ErrorCode::kBadRequest, "limit must be an integer from 1 to 500");
      e.fields.push_back({"limit", "invalid", "must be an integer from 1 to 500"});
      co_return detail::Fail(req, e);
    }
  }
  std::string id(req.Param("id"));
  std::string id_copy = id;
  auto hook = co_await events::GetWebhook(c.db, req.shard(), std::move(id_copy));
  if (!hook) co_return detail::Fail(req, hook.error());
  auto list = co_await events::ListDeliveries(c.db, req.shard(), std::move(id), limit);
  if (!list) co_return detail::Fail(req, list.error());
  json::array items;
  for (const auto& d : *list) items.emplace_back(DeliveryJson(d));
  co_return JsonResponse(200, json::object{{"items", std::move(items)}});
}

http::Task<http::Response> Redeliver(const Ctx& c, http::Request& req) {
  if (auto denied = Deny(req)) co_return *denied;
  std::string id(req.Param("id"));
  std::string delivery(req.Param("delivery"));
  auto d = co_await events::Redeliver(c.db, c.queue, req.shard(), std::move(id), std::move(delivery));
  if (!d) co_return detail::Fail(req, d.error());
  co_return JsonResponse(202, DeliveryJson(*d));
}

}  // namespace

core::Result<void> RegisterWebhooks(http::Router& router, const DataServices& data, queue::Engine& queue,
                                    WebhookOptions options) {
  auto c = std::make_shared<Ctx>(Ctx{data.database, queue, options});
  const std::string base = "/api/v1/webhooks";
  const std::string one = base + "/{id}";
  using M = http::Method;
  for (auto r : {router.Add(M::kPost, base, [c](http::Request& req) { return Create(*c, req); }),
                 router.Add(M::kGet, base, [c](http::Request& req) { return List(*c, req); }),
                 router.Add(M::kGet, one, [c](http::Request& req) { return View(*c, req); }),
                 router.Add(M::kPatch, one, [c](http::Request& req) { return Update(*c, req); }),
                 router.Add(M::kDelete, one, [c](http::Request& req) { return Delete(*c, req); }),
                 router.Add(M::kGet, one + "/deliveries", [c](http::Request& req) { return Deliveries(*c, req); }),
                 router.Add(M::kPost, one + "/deliveries/{delivery}/redeliver",
                            [c](http::Request& req) { return Redeliver(*c, req); })}) {
    if (!r) return r;
  }
  return {};
}

}  // namespace basalt::api
