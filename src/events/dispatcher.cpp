#include "events/dispatcher.hpp"

#include <atomic>
#include <future>
#include <optional>
#include <random>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "core/ids.hpp"
#include "events/outbox.hpp"
#include "events/webhooks.hpp"
#include "obs/log.hpp"

namespace basalt::events {
namespace {

namespace asio = boost::asio;
using store::Statement;
using store::Value;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::int64_t kPublishBatch = 500;
constexpr std::int64_t kEnqueueBatch = 200;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::string Text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}
std::int64_t Int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  return 0;
}
Value OptionalInt(int status) { return status > 0 ? Value(std::int64_t{status}) : Value(store::Null{}); }

void LogError(std::string_view what, const core::Error& e) {
  obs::Log(obs::LogLevel::kWarn, std::string(what), {{"error", e.message}, {"cause", e.cause}});
}

/// A claimed delivery with what sending needs.
struct Claimed {
  std::string id, event_id, body, url, secret, lease_token;
  std::int64_t attempts = 0;  ///< Before this attempt.
};

std::vector<std::string> ParseNames(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& item : v.as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

}  // namespace

struct Dispatcher::Impl {
  Impl(store::Database& d, unsigned s, Hub& h, DispatcherOptions o, Sender snd)
      : db(d), shard(s), hub(h), options(std::move(o)), sender(std::move(snd)), tick(ctx), worker_tick(ctx) {}

  store::Database& db;
  unsigned shard;
  Hub& hub;
  DispatcherOptions options;
  Sender sender;
  asio::io_context ctx{1};
  asio::steady_timer tick;
  asio::steady_timer worker_tick;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> notified{false};
  std::optional<Position> realtime_position;
  std::int64_t last_purge_ms = 0;
  std::int64_t last_idle_advance_ms = 0;
  unsigned in_flight = 0;
  unsigned loops = 0;  // MainLoop and WorkerLoop still running
  std::promise<void> first_step;  // Start() waits for the first step (the initial position)
  bool first_step_done = false;
  std::mt19937_64 random{std::random_device{}()};

  asio::awaitable<void> MainLoop();
  asio::awaitable<void> WorkerLoop();
  asio::awaitable<bool> PublishStep();
  asio::awaitable<bool> EnqueueStep();
  asio::awaitable<void> PurgeStep();
  asio::awaitable<std::size_t> ClaimStep(std::int64_t want);
  asio::awaitable<void> Deliver(Claimed c);
  asio::awaitable<void> Pause(asio::steady_timer& timer, std::chrono::milliseconds d);
  asio::awaitable<void> Drain();

  store::Task<core::Result<void>> EnqueueBody(store::Transaction& tx, std::size_t& events, std::size_t& deliveries);
  store::Task<core::Result<void>> RecordBody(store::Transaction& tx, const Claimed& c, int status, std::int64_t latency,
                                             const std::string& error, const std::string& destination);
  store::Task<core::Result<void>> ExecuteAll(store::Transaction& tx, std::vector<Statement>& statements,
                                             std::int64_t& first_affected);
  store::Task<core::Result<std::int64_t>> Run(std::vector<Statement> statements);
  std::int64_t Backoff(std::int64_t attempt);
};

asio::awaitable<void> Dispatcher::Impl::Pause(asio::steady_timer& timer, std::chrono::milliseconds d) {
  timer.expires_after(d);
  co_await timer.async_wait(kUseTuple);
}

store::Task<core::Result<void>> Dispatcher::Impl::ExecuteAll(store::Transaction& tx, std::vector<Statement>& statements,
                                                             std::int64_t& first_affected) {
  for (std::size_t i = 0; i < statements.size(); ++i) {
    auto r = co_await tx.Execute(std::move(statements[i]));
    if (!r) co_return std::unexpected(std::move(r.error()));
    if (i == 0) first_affected = r->affected;
  }
  co_return core::Result<void>{};
}

store::Task<core::Result<std::int64_t>> Dispatcher::Impl::Run(std::vector<Statement> statements) {
  std::int64_t affected = 0;
  auto done = co_await db.Transact(shard, [this, &statements, &affected](store::Transaction& tx) {
    return ExecuteAll(tx, statements, affected);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return affected;
}

std::int64_t Dispatcher::Impl::Backoff(std::int64_t attempt) {
  const auto& o = options.delivery;
  double delay = static_cast<double>(o.backoff_base.count());
  for (std::int64_t i = 1; i < attempt && delay < static_cast<double>(o.backoff_max.count()); ++i) delay *= 2;
  delay = std::min(delay, static_cast<double>(o.backoff_max.count()));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return static_cast<std::int64_t>(delay * jitter(random));
}

asio::awaitable<bool> Dispatcher::Impl::PublishStep() {
  const auto& d = db.dialect();
  if (!realtime_position || hub.subscribers() == 0) {
    // Nobody listens: skip to the end (a resuming subscriber reads its backlog from the table).
    // The end is read before looking at the subscribers, so a subscriber that arrives meanwhile
    // misses nothing committed after it subscribed.
    auto rows = co_await db.Query(shard, LastPosition());
    if (!rows) {
      LogError("events: cannot read the outbox position", rows.error());
      co_return false;
    }
    const Position end = ToPosition(*rows).value_or(Position{});
    if (!realtime_position || hub.subscribers() == 0) realtime_position = end;
    if (hub.subscribers() == 0) co_return false;
  }
  auto rows = co_await db.Query(shard, ReadAfter(d, *realtime_position, kPublishBatch));
  if (!rows) {
    LogError("events: cannot read the outbox", rows.error());
    co_return false;
  }
  std::vector<std::shared_ptr<const Event>> events;
  for (auto& e : ToEvents(*rows)) events.push_back(std::make_shared<const Event>(std::move(e)));
  if (events.empty()) co_return false;
  realtime_position = events.back()->position;
  hub.Publish(events);
  co_return static_cast<std::int64_t>(events.size()) == kPublishBatch;
}

store::Task<core::Result<void>> Dispatcher::Impl::EnqueueBody(store::Transaction& tx, std::size_t& event_count,
                                                              std::size_t& delivery_count) {
  const auto& d = db.dialect();
  Statement lock{"UPDATE basalt_event_cursors SET seq = seq WHERE name = 'webhooks'", {}};
  if (auto r = co_await tx.Execute(std::move(lock)); !r) co_return std::unexpected(std::move(r.error()));
  Statement cursor{"SELECT txid, seq FROM basalt_event_cursors WHERE name = 'webhooks'", {}};
  auto cur = co_await tx.Execute(std::move(cursor));
  if (!cur) co_return std::unexpected(std::move(cur.error()));
  const Position from = ToPosition(*cur).value_or(Position{});
  auto rows = co_await tx.Execute(ReadAfter(d, from, kEnqueueBatch));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  const std::vector<Event> events = ToEvents(*rows);
  event_count = events.size();
  if (events.empty()) co_return core::Result<void>{};
  Statement hooks_st{"SELECT id, events FROM basalt_webhooks WHERE active = 1", {}};
  auto hooks = co_await tx.Execute(std::move(hooks_st));
  if (!hooks) co_return std::unexpected(std::move(hooks.error()));
  std::vector<std::pair<std::string, std::vector<std::string>>> webhooks;
  for (const auto& r : hooks->rows) webhooks.emplace_back(Text(r[0]), ParseNames(Text(r[1])));
  const std::int64_t now = NowMs();
  const std::string insert =
      "INSERT INTO basalt_webhook_deliveries (id, webhook_id, event_id, event_type, body, state, attempts,"
      " next_attempt_at, lease_until, created_at, updated_at) VALUES (" +
      d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) + ", " +
      d.Placeholder(5) + ", 'pending', 0, " + d.Placeholder(6) + ", 0, " + d.Placeholder(6) + ", " + d.Placeholder(6) +
      ") ON CONFLICT (webhook_id, event_id) DO NOTHING";
  for (const auto& e : events) {
    for (const auto& [id, names] : webhooks) {
      if (!Matches(names, e.collection, e.kind)) continue;
      Statement st{insert, {core::FormatUuid(core::NewUuidV7()), id, e.id, e.collection + "." + e.kind, e.payload, now}};
      auto r = co_await tx.Execute(std::move(st));
      if (!r) co_return std::unexpected(std::move(r.error()));
      ++delivery_count;
    }
  }
  Statement move{"UPDATE basalt_event_cursors SET txid = " + d.Placeholder(1) + ", seq = " + d.Placeholder(2) +
                     " WHERE name = 'webhooks'",
                 {events.back().position.txid, events.back().position.seq}};
  if (auto r = co_await tx.Execute(std::move(move)); !r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

asio::awaitable<bool> Dispatcher::Impl::EnqueueStep() {
  // A read first, so an idle system runs no write transaction.
  Statement cursor{"SELECT txid, seq FROM basalt_event_cursors WHERE name = 'webhooks'", {}};
  auto cur = co_await db.Query(shard, std::move(cursor));
  if (!cur) {
    LogError("events: cannot read the webhook cursor", cur.error());
    co_return false;
  }
  auto next = co_await db.Query(shard, ReadAfter(db.dialect(), ToPosition(*cur).value_or(Position{}), 1));
  if (!next) {
    LogError("events: cannot read the outbox", next.error());
    co_return false;
  }
  if (next->rows.empty()) co_return false;
  // Without any active webhook the cursor only has to move now and then (so the purge can pass),
  // not after every write.
  Statement hooks{"SELECT 1 FROM basalt_webhooks WHERE active = 1 LIMIT 1", {}};
  auto any = co_await db.Query(shard, std::move(hooks));
  if (!any) {
    LogError("events: cannot read webhooks", any.error());
    co_return false;
  }
  const std::int64_t now = NowMs();
  if (any->rows.empty() && now - last_idle_advance_ms < 5000) co_return false;
  if (any->rows.empty()) last_idle_advance_ms = now;
  std::size_t events = 0, deliveries = 0;
  auto done = co_await db.Transact(shard, [this, &events, &deliveries](store::Transaction& tx) {
    return EnqueueBody(tx, events, deliveries);
  });
  if (!done) {
    LogError("events: cannot enqueue webhook deliveries", done.error());
    co_return false;
  }
  if (deliveries > 0) worker_tick.cancel();
  co_return static_cast<std::int64_t>(events) == kEnqueueBatch;
}

asio::awaitable<void> Dispatcher::Impl::PurgeStep() {
  const std::int64_t now = NowMs();
  if (now - last_purge_ms < 60'000) co_return;
  last_purge_ms = now;
  const auto& d = db.dialect();
  const std::int64_t cutoff = now - std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count();
  std::vector<Statement> st;
  // Only events the webhook cursor has passed: an event is never purged before it was enqueued.
  st.push_back({"DELETE FROM basalt_events WHERE created_at < " + d.Placeholder(1) +
                    " AND EXISTS (SELECT 1 FROM basalt_event_cursors c WHERE c.name = 'webhooks' AND"
                    " (basalt_events.txid < c.txid OR (basalt_events.txid = c.txid AND basalt_events.seq <= c.seq)))",
                {cutoff}});
  st.push_back({"DELETE FROM basalt_webhook_attempts WHERE delivery_id IN (SELECT id FROM basalt_webhook_deliveries"
                " WHERE state <> 'pending' AND updated_at < " + d.Placeholder(1) + ")",
                {cutoff}});
  st.push_back({"DELETE FROM basalt_webhook_deliveries WHERE state <> 'pending' AND updated_at < " + d.Placeholder(1),
                {cutoff}});
  auto done = co_await Run(std::move(st));
  if (!done) LogError("events: purge failed", done.error());
}

// Stop: let the loops and in-flight deliveries finish (their database work must not be cut in
// the middle), at most five seconds, then stop the context.
asio::awaitable<void> Dispatcher::Impl::Drain() {
  tick.cancel();
  worker_tick.cancel();
  asio::steady_timer wait(ctx);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((loops > 0 || in_flight > 0) && std::chrono::steady_clock::now() < deadline) {
    co_await Pause(wait, std::chrono::milliseconds(10));
  }
  ctx.stop();
}

asio::awaitable<void> Dispatcher::Impl::MainLoop() {
  ++loops;
  while (!stopping.load()) {
    notified.store(false);
    bool more = false;
    try {
      if (options.realtime) more |= co_await PublishStep();
      if (options.webhooks) {
        more |= co_await EnqueueStep();
        co_await PurgeStep();
      }
    } catch (const std::exception& e) {
      obs::Log(obs::LogLevel::kError, "events: dispatcher step failed", {{"error", e.what()}});
    }
    if (!first_step_done) {
      first_step_done = true;
      first_step.set_value();
    }
    if (more || stopping.load()) continue;
    // Woken by writes while working: go again soon, but at most every 5 ms, so a busy server
    // does not spend a core on the dispatcher (the wake-up costs a few queries, not one per write).
    co_await Pause(tick, notified.load() ? std::chrono::milliseconds(5) : options.poll);
  }
  --loops;
}

asio::awaitable<std::size_t> Dispatcher::Impl::ClaimStep(std::int64_t want) {
  const auto& d = db.dialect();
  const std::int64_t now = NowMs();
  Statement due{"SELECT id FROM basalt_webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= " +
                    d.Placeholder(1) + " AND lease_until <= " + d.Placeholder(1) + " LIMIT 1",
                {now}};
  auto any = co_await db.Query(shard, std::move(due));
  if (!any) {
    LogError("events: cannot read due deliveries", any.error());
    co_return 0;
  }
  if (any->rows.empty()) co_return 0;
  const std::string token = core::FormatUuid(core::NewUuidV7());
  const std::int64_t lease_until =
      now + std::chrono::duration_cast<std::chrono::milliseconds>(options.delivery.lease).count();
  std::vector<Statement> claim;
  claim.push_back({"UPDATE basalt_webhook_deliveries SET lease_until = " + d.Placeholder(1) + ", lease_token = " +
                       d.Placeholder(2) +
                       " WHERE id IN (SELECT id FROM basalt_webhook_deliveries WHERE state = 'pending' AND"
                       " next_attempt_at <= " + d.Placeholder(3) + " AND lease_until <= " + d.Placeholder(3) +
                       " ORDER BY next_attempt_at LIMIT " + d.Placeholder(4) + ") AND state = 'pending' AND"
                       " lease_until <= " + d.Placeholder(3),
                   {lease_until, token, now, want}});
  auto claimed = co_await Run(std::move(claim));
  if (!claimed) {
    LogError("events: cannot claim deliveries", claimed.error());
    co_return 0;
  }
  if (*claimed == 0) co_return 0;
  Statement load{"SELECT dl.id, dl.event_id, dl.body, dl.attempts, w.url, w.secret FROM basalt_webhook_deliveries dl"
                 " JOIN basalt_webhooks w ON w.id = dl.webhook_id WHERE dl.lease_token = " + d.Placeholder(1),
                 {token}};
  auto rows = co_await db.Query(shard, std::move(load));
  if (!rows) {
    LogError("events: cannot load claimed deliveries", rows.error());
    co_return 0;
  }
  for (const auto& r : rows->rows) {
    Claimed c{Text(r[0]), Text(r[1]), Text(r[2]), Text(r[4]), Text(r[5]), token, Int(r[3])};
    ++in_flight;
    asio::co_spawn(ctx, Deliver(std::move(c)), asio::detached);
  }
  co_return rows->rows.size();
}

store::Task<core::Result<void>> Dispatcher::Impl::RecordBody(store::Transaction& tx, const Claimed& c, int status,
                                                             std::int64_t latency, const std::string& error,
                                                             const std::string& destination) {
  const auto& d = db.dialect();
  const std::int64_t now = NowMs();
  const bool ok = status >= 200 && status < 300;
  Statement update;
  if (ok) {
    update = {"UPDATE basalt_webhook_deliveries SET state = 'succeeded', attempts = attempts + 1, status_code = " +
                  d.Placeholder(1) + ", latency_ms = " + d.Placeholder(2) + ", error = NULL, delivered_at = " +
                  d.Placeholder(3) + ", updated_at = " + d.Placeholder(3) +
                  ", lease_until = 0, lease_token = NULL WHERE id = " + d.Placeholder(4) + " AND lease_token = " +
                  d.Placeholder(5),
              {OptionalInt(status), latency, now, c.id, c.lease_token}};
  } else {
    const bool last = c.attempts + 1 >= static_cast<std::int64_t>(options.delivery.max_attempts);
    update = {"UPDATE basalt_webhook_deliveries SET state = " + d.Placeholder(1) +
                  ", attempts = attempts + 1, status_code = " + d.Placeholder(2) + ", latency_ms = " +
                  d.Placeholder(3) + ", error = " + d.Placeholder(4) + ", next_attempt_at = " + d.Placeholder(5) +
                  ", updated_at = " + d.Placeholder(6) + ", lease_until = 0, lease_token = NULL WHERE id = " +
                  d.Placeholder(7) + " AND lease_token = " + d.Placeholder(8),
              {std::string(last ? "failed" : "pending"), OptionalInt(status), latency, error,
               now + Backoff(c.attempts + 1), now, c.id, c.lease_token}};
  }
  auto updated = co_await tx.Execute(std::move(update));
  if (!updated) co_return std::unexpected(std::move(updated.error()));
  if (updated->affected == 0) co_return core::Result<void>{};  // the lease was lost: another worker owns it now
  Statement attempt{"INSERT INTO basalt_webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error)"
                    " VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                        d.Placeholder(4) + ", " + d.Placeholder(5) + ", " + d.Placeholder(6) +
                        ") ON CONFLICT (delivery_id, attempt) DO NOTHING",
                    {c.id, c.attempts + 1, now, OptionalInt(status), latency,
                     ok ? Value(store::Null{}) : Value(error)}};
  if (auto r = co_await tx.Execute(std::move(attempt)); !r) co_return std::unexpected(std::move(r.error()));
  if (ok) {
    Statement close{"INSERT INTO basalt_webhook_breakers (destination, state, failures, open_until) VALUES (" +
                        d.Placeholder(1) + ", 'closed', 0, 0) ON CONFLICT (destination) DO UPDATE SET"
                        " state = 'closed', failures = 0, open_until = 0",
                    {destination}};
    if (auto r = co_await tx.Execute(std::move(close)); !r) co_return std::unexpected(std::move(r.error()));
    co_return core::Result<void>{};
  }
  Statement count{"INSERT INTO basalt_webhook_breakers (destination, state, failures, open_until) VALUES (" +
                      d.Placeholder(1) + ", 'closed', 1, 0) ON CONFLICT (destination) DO UPDATE SET"
                      " failures = basalt_webhook_breakers.failures + 1",
                  {destination}};
  if (auto r = co_await tx.Execute(std::move(count)); !r) co_return std::unexpected(std::move(r.error()));
  // Opens after `threshold` consecutive failures, and again at once when a half-open probe fails.
  Statement open{"UPDATE basalt_webhook_breakers SET state = 'open', open_until = " + d.Placeholder(1) +
                     " WHERE destination = " + d.Placeholder(2) + " AND (failures >= " + d.Placeholder(3) +
                     " OR state = 'half_open')",
                 {now + std::chrono::duration_cast<std::chrono::milliseconds>(options.delivery.breaker_cooldown).count(),
                  destination, std::int64_t{options.delivery.breaker_threshold}}};
  if (auto r = co_await tx.Execute(std::move(open)); !r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

asio::awaitable<void> Dispatcher::Impl::Deliver(Claimed c) {
  try {
    const auto& d = db.dialect();
    const std::string destination = DestinationOf(c.url);
    const std::int64_t now = NowMs();
    const std::int64_t cooldown =
        std::chrono::duration_cast<std::chrono::milliseconds>(options.delivery.breaker_cooldown).count();
    std::optional<std::int64_t> defer_until;
    auto breaker = co_await GetBreaker(db, shard, destination);
    if (!breaker) {
      LogError("events: cannot read a circuit breaker", breaker.error());
      defer_until = now + 1000;
    } else if (*breaker && (*breaker)->state != "closed") {
      if (now < (*breaker)->open_until_ms) {
        defer_until = (*breaker)->open_until_ms;
      } else {
        // Cool-down over: one delivery becomes the half-open probe; the others wait for it.
        std::vector<Statement> probe;
        probe.push_back({"UPDATE basalt_webhook_breakers SET state = 'half_open', open_until = " + d.Placeholder(1) +
                             " WHERE destination = " + d.Placeholder(2) + " AND state <> 'closed' AND open_until <= " +
                             d.Placeholder(3),
                         {now + cooldown, destination, now}});
        auto won = co_await Run(std::move(probe));
        if (!won || *won == 0) defer_until = now + std::min<std::int64_t>(cooldown, 1000);
      }
    }
    if (defer_until) {
      std::vector<Statement> defer;
      defer.push_back({"UPDATE basalt_webhook_deliveries SET next_attempt_at = " + d.Placeholder(1) +
                           ", lease_until = 0, lease_token = NULL WHERE id = " + d.Placeholder(2) +
                           " AND lease_token = " + d.Placeholder(3),
                       {*defer_until, c.id, c.lease_token}});
      auto deferred = co_await Run(std::move(defer));
      if (!deferred) LogError("events: cannot defer a delivery", deferred.error());
    } else {
      const std::int64_t timestamp = NowMs() / 1000;
      OutboundRequest request;
      request.url = c.url;
      request.headers = {{"Content-Type", "application/cloudevents+json"},
                         {"webhook-id", c.event_id},
                         {"webhook-timestamp", std::to_string(timestamp)},
                         {"webhook-signature", Sign(c.secret, c.event_id, timestamp, c.body)}};
      request.body = c.body;
      const auto started = std::chrono::steady_clock::now();
      OutboundResult result = co_await sender(std::move(request));
      const std::int64_t latency =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
      std::string error = result.error;
      if (error.empty() && (result.status < 200 || result.status >= 300)) {
        error = result.status >= 300 && result.status < 400 ? "redirect not followed (HTTP " +
                                                                  std::to_string(result.status) + ")"
                                                            : "HTTP " + std::to_string(result.status);
      }
      auto recorded = co_await db.Transact(shard, [this, &c, &result, latency, &error, &destination](
                                                      store::Transaction& tx) {
        return RecordBody(tx, c, result.status, latency, error, destination);
      });
      if (!recorded) LogError("events: cannot record a delivery attempt", recorded.error());
    }
  } catch (const std::exception& e) {
    obs::Log(obs::LogLevel::kError, "events: delivery failed", {{"error", e.what()}});
  }
  --in_flight;
  worker_tick.cancel();
}

asio::awaitable<void> Dispatcher::Impl::WorkerLoop() {
  const auto pause = std::min(options.poll, std::chrono::milliseconds(1000));
  ++loops;
  while (!stopping.load()) {
    std::size_t claimed = 0;
    try {
      if (in_flight < options.delivery.concurrency)
        claimed = co_await ClaimStep(static_cast<std::int64_t>(options.delivery.concurrency - in_flight));
    } catch (const std::exception& e) {
      obs::Log(obs::LogLevel::kError, "events: delivery worker step failed", {{"error", e.what()}});
    }
    if (claimed > 0 || stopping.load()) continue;
    co_await Pause(worker_tick, pause);
  }
  --loops;
}

Dispatcher::Dispatcher(store::Database& database, unsigned shard, Hub& hub, DispatcherOptions options, Sender sender)
    : impl_(std::make_unique<Impl>(database, shard, hub, std::move(options), std::move(sender))) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  auto& s = *impl_;
  asio::co_spawn(s.ctx, s.MainLoop(), asio::detached);
  if (s.options.webhooks) asio::co_spawn(s.ctx, s.WorkerLoop(), asio::detached);
  auto first = s.first_step.get_future();
  s.thread = std::thread([&s] {
    for (;;) {
      try {
        s.ctx.run();
        return;
      } catch (const std::exception& e) {
        obs::Log(obs::LogLevel::kError, "events: dispatcher thread caught an exception", {{"error", e.what()}});
      }
    }
  });
  // Subscribers arrive only after the dispatcher knows where the outbox ends (bounded wait).
  first.wait_for(std::chrono::seconds(10));
}

void Dispatcher::Notify() {
  auto& s = *impl_;
  if (s.notified.exchange(true)) return;
  asio::post(s.ctx, [&s] { s.tick.cancel(); });
}

void Dispatcher::Stop() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  s.stopping.store(true);
  asio::co_spawn(s.ctx, s.Drain(), asio::detached);
  s.thread.join();
}

}  // namespace basalt::events
