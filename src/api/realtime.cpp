// GET /api/v1/realtime?collection=posts&filter=...: record changes as Server-Sent Events.
//
// Each event is `id: <outbox sequence>`, `event: basalt.record.<created|updated|deleted>`,
// `data: <the CloudEvent JSON>`. A subscriber sees only records its collection's view rule (and
// its filter) allows, evaluated in SQL against the event's own copy of the record, with the same
// rule compilation as the records handlers. An admin-only view rule answers 401 before the
// stream starts, as GET on the records does. `Last-Event-ID` (header, or `last_event_id` in the
// query for clients that cannot set headers) resumes from the retained outbox without gaps; an
// id no longer retained is 409. A subscriber that falls more than `realtime.max_pending` events
// behind gets `event: basalt.overflow` and the stream ends (resume with Last-Event-ID).

#include "api/realtime.hpp"

#include <charconv>
#include <chrono>

#include <boost/json.hpp>

#include "api/data_routes.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "api/visibility.hpp"
#include "events/hub.hpp"
#include "events/outbox.hpp"
#include "schema/catalog.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using events::Position;

constexpr std::int64_t kBacklogPage = 200;

core::Error BadParam(std::string param, std::string message) {
  core::Error e = core::Error::Make(core::ErrorCode::kBadRequest, message);
  e.fields.push_back({std::move(param), "invalid", std::move(message)});
  return e;
}

/// What the stream needs after the handler returned.
struct StreamState {
  const RealtimeServices* services = nullptr;
  unsigned shard = 0;
  std::shared_ptr<const schema::Snapshot> snap;
  const schema::CollectionSpec* spec = nullptr;
  std::string collection;
  detail::Visibility visibility;
  std::optional<Position> resume;  ///< Last-Event-ID's position.
};

std::string Frame(const events::Event& e) {
  std::string out;
  out.reserve(e.payload.size() + 64);
  out += "id: ";
  out += std::to_string(e.position.seq);
  out += "\nevent: basalt.record.";
  out += e.kind;
  out += "\ndata: ";
  out += e.payload;  // one line: serialised JSON escapes every newline
  out += "\n\n";
  return out;
}

/// True when the subscriber may see this event's record.
http::Task<core::Result<bool>> Visible(const StreamState& s, const events::Event& e) {
  if (s.visibility.everything) co_return true;
  boost::system::error_code ec;
  json::value ce = json::parse(e.payload, ec);
  if (ec || !ce.is_object()) co_return false;
  const json::value* data = ce.as_object().if_contains("data");
  if (!data || !data->is_object()) co_return false;
  store::Statement check = detail::VisibilityQuery(s.services->data.database.dialect(), *s.spec, s.visibility,
                                                   data->as_object());
  auto rows = co_await s.services->data.database.Query(s.shard, std::move(check));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  co_return !rows->rows.empty();
}

/// Sends `e` when visible; false when the stream must end.
http::Task<bool> Send(const StreamState& s, http::StreamWriter& out, const events::Event& e) {
  auto visible = co_await Visible(s, e);
  if (!visible) co_return false;
  if (!*visible) co_return true;
  co_return co_await out.Write(Frame(e));
}

http::Task<void> Produce(std::shared_ptr<StreamState> state, http::StreamWriter& out) {
  const StreamState& s = *state;
  const RealtimeServices& services = *s.services;
  auto subscription = services.hub.Subscribe(s.collection, services.options.max_pending, out.Waker());
  struct Unsubscribe {
    events::Hub& hub;
    std::shared_ptr<events::Subscription> sub;
    ~Unsubscribe() { hub.Unsubscribe(sub); }
  } guard{services.hub, subscription};
  std::string hello = ": connected\n\n";
  if (!co_await out.Write(std::move(hello))) co_return;
  Position last{};
  bool have_last = false;
  if (s.resume) {
    // The backlog after Last-Event-ID, then the live queue; the live queue may repeat events the
    // backlog already sent (positions <= last are skipped), but never misses one: the
    // subscription existed before the backlog was read.
    last = *s.resume;
    have_last = true;
    for (;;) {
      auto rows = co_await services.data.database.Query(
          s.shard, events::ReadAfter(services.data.database.dialect(), last, kBacklogPage, s.collection));
      if (!rows) co_return;
      const auto backlog = events::ToEvents(*rows);
      for (const auto& e : backlog) {
        if (!co_await Send(s, out, e)) co_return;
        last = e.position;
      }
      if (static_cast<std::int64_t>(backlog.size()) < kBacklogPage) break;
    }
  }
  auto last_write = std::chrono::steady_clock::now();
  while (!out.closing()) {
    if (subscription->overflowed()) {
      std::string overflow = "event: basalt.overflow\ndata: {\"reason\":\"the subscriber fell too far behind\"}\n\n";
      co_await out.Write(std::move(overflow));
      co_return;
    }
    auto batch = subscription->Take();
    if (batch.empty()) {
      co_await out.Wait(services.options.heartbeat);
      if (std::chrono::steady_clock::now() - last_write >= services.options.heartbeat) {
        std::string heartbeat = ": heartbeat\n\n";
        if (!co_await out.Write(std::move(heartbeat))) co_return;
        last_write = std::chrono::steady_clock::now();
      }
      continue;
    }
    for (const auto& e : batch) {
      if (have_last && e->position <= last) continue;
      if (!co_await Send(s, out, *e)) co_return;
      last = e->position;
      have_last = true;
    }
    last_write = std::chrono::steady_clock::now();
  }
}

http::Task<http::Response> Subscribe(const RealtimeServices& services, http::Request& req) {
  std::string collection, filter, last_event_id;
  for (std::string_view q = req.query(); !q.empty();) {
    const std::size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    auto key = detail::DecodeComponent(pair.substr(0, eq));
    auto value = detail::DecodeComponent(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) co_return detail::Fail(req, BadParam("query", "malformed percent-encoding"));
    if (*key == "collection") collection = std::move(*value);
    else if (*key == "filter") filter = std::move(*value);
    else if (*key == "last_event_id") last_event_id = std::move(*value);
  }
  if (auto h = req.Header("Last-Event-ID")) last_event_id = std::string(*h);
  if (collection.empty()) co_return detail::Fail(req, BadParam("collection", "'collection' is required"));
  // API keys and service tokens need records:read (or records:read:<collection>), as on GET records.
  if (auto denied = detail::RequireScope(req, auth::kRecordsRead, collection)) co_return *denied;
  auto state = std::make_shared<StreamState>();
  state->services = &services;
  state->shard = req.shard();
  state->collection = collection;
  state->snap = services.data.catalog.snapshot();
  const schema::Collection* found = state->snap->Find(collection);
  if (!found && schema::IsValidName(collection, 61)) {
    auto refreshed = co_await services.data.catalog.Refresh(req.shard());
    if (refreshed && *refreshed) {
      state->snap = services.data.catalog.snapshot();
      found = state->snap->Find(collection);
    }
  }
  if (!found) co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kNotFound, "No such collection."));
  state->spec = &found->spec;
  auto visibility = detail::CompileVisibility(services.data.database.dialect(), *state->snap, found->spec,
                                              detail::Identify(req), filter, &services.data.keys);
  if (!visibility) co_return detail::Fail(req, visibility.error());
  state->visibility = std::move(*visibility);
  if (!last_event_id.empty()) {
    std::int64_t seq = 0;
    const auto [ptr, ec] = std::from_chars(last_event_id.data(), last_event_id.data() + last_event_id.size(), seq);
    if (ec != std::errc() || ptr != last_event_id.data() + last_event_id.size() || seq < 0)
      co_return detail::Fail(req, BadParam("Last-Event-ID", "must be an event id from this stream"));
    if (seq > 0) {
      auto rows = co_await services.data.database.Query(req.shard(),
                                                        events::PositionOf(services.data.database.dialect(), seq));
      if (!rows) co_return detail::Fail(req, rows.error());
      state->resume = events::ToPosition(*rows);
      if (!state->resume) {
        co_return detail::Fail(req, core::Error::Make(core::ErrorCode::kConflict,
                                                      "Last-Event-ID is no longer retained; subscribe again without it."));
      }
    } else {
      state->resume = Position{};
    }
  }
  http::Response res;
  res.status = 200;
  res.Set("Content-Type", "text/event-stream");
  res.Set("Cache-Control", "no-store");
  res.Set("X-Accel-Buffering", "no");
  res.stream = [state](http::StreamWriter& out) { return Produce(state, out); };
  co_return res;
}

}  // namespace

core::Result<void> RegisterRealtime(http::Router& router, const RealtimeServices& services) {
  const RealtimeServices* s = &services;
  return router.Add(http::Method::kGet, "/api/v1/realtime", [s](http::Request& req) { return Subscribe(*s, req); });
}

}  // namespace basalt::api
