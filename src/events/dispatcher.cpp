#include "events/dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
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

#include <boost/json/serialize.hpp>

#include "core/ids.hpp"
#include "events/outbox.hpp"
#include "events/webhooks.hpp"
#include "obs/log.hpp"
#include "queue/engine.hpp"
#include "store/deferred.hpp"
#include "store/values.hpp"

namespace basalt::events {
namespace {

namespace asio = boost::asio;
using store::Statement;
using store::Value;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::int64_t kPublishBatch = 500;
constexpr std::int64_t kEnqueueBatch = 200;  // events per enqueue transaction

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
Value OptionalInt(int status) { return status > 0 ? Value(std::int64_t{status}) : Value(store::Null{}); }

void LogError(std::string_view what, const core::Error& e) {
  obs::Log(obs::LogLevel::kWarn, std::string(what), {{"error", e.message}, {"cause", e.cause}});
}

/// What a delivery message carries (DeliveryPayload), parsed; nullopt when malformed.
struct Parsed {
  std::string webhook_id, event_id, body;
};
std::optional<Parsed> ParsePayload(const std::string& payload) {
  boost::system::error_code ec;
  auto v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  const auto* hook = o.if_contains("webhook_id");
  const auto* event_id = o.if_contains("event_id");
  const auto* event = o.if_contains("event");
  if (!hook || !hook->is_string() || !event_id || !event_id->is_string() || !event || !event->is_object())
    return std::nullopt;
  return Parsed{std::string(hook->as_string()), std::string(event_id->as_string()), boost::json::serialize(*event)};
}

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
  Impl(store::Database& d, queue::Engine& q, unsigned s, Hub& h, DispatcherOptions o, Sender snd)
      : db(d),
        engine(q),
        shard(s),
        hub(h),
        options(std::move(o)),
        sender(std::move(snd)),
        tick(ctx),
        worker_tick(ctx) {}

  store::Database& db;
  queue::Engine& engine;
  unsigned shard;
  Hub& hub;
  DispatcherOptions options;
  Sender sender;
  asio::io_context ctx{1};
  asio::steady_timer tick;
  asio::steady_timer worker_tick;
  std::thread thread;
  std::unique_ptr<store::Subscription> listening;
  std::atomic<bool> stopping{false};
  std::atomic<bool> notified{false};
  /// The highest PostgreSQL transaction id notified and not yet seen visible (0: none).
  std::atomic<std::int64_t> awaited_txid{0};
  std::optional<Position> realtime_position;
  std::int64_t last_purge_ms = 0;
  std::int64_t last_idle_advance_ms = 0;
  unsigned in_flight = 0;
  unsigned loops = 0;  // MainLoop and WorkerLoop still running
  std::promise<void> first_step;  // Start() waits for the first step (the initial position)
  bool first_step_done = false;

  asio::awaitable<void> MainLoop();
  asio::awaitable<void> WorkerLoop();
  asio::awaitable<bool> PublishStep();
  asio::awaitable<bool> EnqueueStep();
  asio::awaitable<bool> AwaitedInvisible();
  asio::awaitable<void> PurgeStep();
  asio::awaitable<void> Deliver(queue::Message m);
  asio::awaitable<void> Pause(asio::steady_timer& timer, std::chrono::milliseconds d);
  asio::awaitable<void> Drain();

  store::Task<core::Result<void>> EnqueueBody(store::Transaction& tx, std::size_t& events, std::size_t& deliveries);
  store::Task<core::Result<void>> RecordBody(store::Transaction& tx, const std::string& id, const std::string& state,
                                             int status, std::int64_t latency, const std::string& error,
                                             const std::string& destination);
  store::Task<core::Result<void>> ExecuteAll(store::Transaction& tx, std::vector<Statement>& statements,
                                             std::int64_t& first_affected);
  store::Task<core::Result<std::int64_t>> Run(std::vector<Statement> statements);
  void OnNotification(std::string_view payload, bool lost);
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

// On the backend's notification thread: remember the transaction id, wake the loop.
void Dispatcher::Impl::OnNotification(std::string_view payload, bool lost) {
  std::int64_t txid = 0;
  if (!lost) std::from_chars(payload.data(), payload.data() + payload.size(), txid);
  std::int64_t seen = awaited_txid.load();
  while (txid > seen && !awaited_txid.compare_exchange_weak(seen, txid)) {
  }
  if (notified.exchange(true)) return;
  asio::post(ctx, [this] { tick.cancel(); });
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
  // Locks the cursor row (an UPDATE takes its row lock on both backends) and reads it.
  Statement lock{"UPDATE basalt_event_cursors SET seq = seq WHERE name = 'webhooks' RETURNING txid, seq", {}};
  auto cur = co_await tx.Execute(std::move(lock));
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
  for (const auto& r : hooks->rows) webhooks.emplace_back(store::TextOf(r[0]), ParseNames(store::TextOf(r[1])));
  // One message per (event, matching webhook), with its log row; produced in chunks of at most
  // the engine's batch size.
  struct Pending {
    std::string webhook_id, event_id, event_type;
  };
  std::vector<Pending> pending;
  std::vector<queue::NewMessage> all;
  for (const Event& e : events) {
    for (const auto& [id, names] : webhooks) {
      if (!Matches(names, e.collection, e.kind)) continue;
      queue::NewMessage m;
      std::string type = e.collection + "." + e.kind;
      m.payload = DeliveryPayload(id, e.id, type, e.payload);
      m.idempotency_key = e.id + ":" + id;
      all.push_back(std::move(m));
      pending.push_back(Pending{id, e.id, std::move(type)});
    }
  }
  const std::int64_t now = NowMs();
  const std::string insert = DeliveryInsertSql(d);
  for (std::size_t first = 0; first < all.size(); first += queue::kMaxBatch) {
    const std::size_t last = std::min(all.size(), first + queue::kMaxBatch);
    std::vector<queue::NewMessage> chunk(std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(first)),
                                         std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(last)));
    std::string queue_name(kWebhookQueue);
    auto produced = co_await engine.Produce(tx, std::move(queue_name), std::move(chunk));
    if (!produced) co_return std::unexpected(std::move(produced.error()));
    for (std::size_t k = 0; k < produced->size(); ++k) {
      const Pending& p = pending[first + k];
      Statement row{insert, {(*produced)[k].id, p.webhook_id, p.event_id, p.event_type, store::Null{}, now}};
      auto r = co_await store::ExecuteDeferred(tx, std::move(row));  // PostgreSQL: no round trip each.
      if (!r) co_return std::unexpected(std::move(r.error()));
      if (!(*produced)[k].duplicate) ++delivery_count;
    }
  }
  Statement move{"UPDATE basalt_event_cursors SET txid = " + d.Placeholder(1) + ", seq = " + d.Placeholder(2) +
                     " WHERE name = 'webhooks'",
                 {events.back().position.txid, events.back().position.seq}};
  if (auto r = co_await store::ExecuteDeferred(tx, std::move(move)); !r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

asio::awaitable<bool> Dispatcher::Impl::EnqueueStep() {
  // A read first, so an idle system runs no write transaction: one query says whether an event
  // lies after the cursor and whether any webhook is active.
  // (The row comparison seeks the (txid, seq) index on both backends.)
  Statement look{"SELECT (SELECT 1 FROM basalt_events_visible e WHERE (e.txid, e.seq) > (SELECT txid, seq FROM"
                 " basalt_event_cursors WHERE name = 'webhooks') ORDER BY e.txid, e.seq LIMIT 1),"
                 " (SELECT 1 FROM basalt_webhooks WHERE active = 1 LIMIT 1)",
                 {}};
  auto looked = co_await db.Query(shard, std::move(look));
  if (!looked) {
    LogError("events: cannot read the outbox", looked.error());
    co_return false;
  }
  if (looked->rows.empty() || std::holds_alternative<store::Null>(looked->rows[0][0])) co_return false;
  // Without any active webhook the cursor only has to move now and then (so the purge can pass),
  // not after every write.
  const bool no_hooks = std::holds_alternative<store::Null>(looked->rows[0][1]);
  const std::int64_t now = NowMs();
  if (no_hooks && now - last_idle_advance_ms < 5000) co_return false;
  if (no_hooks) last_idle_advance_ms = now;
  std::size_t events = 0, deliveries = 0;
  auto done = co_await db.Transact(shard, [this, &events, &deliveries](store::Transaction& tx) {
    return EnqueueBody(tx, events, deliveries);
  });
  if (!done) {
    LogError("events: cannot enqueue webhook deliveries", done.error());
    co_return false;
  }
  co_return static_cast<std::int64_t>(events) == kEnqueueBatch;
}

// True while a notified PostgreSQL transaction's events are not visible yet (see outbox.hpp).
asio::awaitable<bool> Dispatcher::Impl::AwaitedInvisible() {
  const std::int64_t txid = awaited_txid.load();
  if (txid <= 0) co_return false;  // SQLite notifies 0: committed means visible.
  Statement st{"SELECT 1 FROM basalt_events_visible WHERE txid >= " + db.dialect().Placeholder(1) + " LIMIT 1", {txid}};
  auto rows = co_await db.Query(shard, std::move(st));
  if (!rows) {
    LogError("events: cannot read the outbox", rows.error());
    co_return false;
  }
  if (rows->rows.empty()) co_return true;
  std::int64_t expected = txid;
  awaited_txid.compare_exchange_strong(expected, 0);
  co_return false;
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
    tick.cancel();  // a loop that started a pause after the first cancel
    worker_tick.cancel();
  }
  ctx.stop();
}

asio::awaitable<void> Dispatcher::Impl::MainLoop() {
  ++loops;
  std::chrono::milliseconds recheck{0};  // backoff while a notified transaction is invisible
  auto recheck_until = std::chrono::steady_clock::now();
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
    if (notified.load()) {
      // Woken by writes while working: go again soon, but at most every 5 ms, so a busy server
      // does not spend a core on the dispatcher (the wake-up costs a few queries, not one per write).
      co_await Pause(tick, std::chrono::milliseconds(5));
      continue;
    }
    bool invisible = false;
    try {
      invisible = co_await AwaitedInvisible();
    } catch (const std::exception& e) {
      obs::Log(obs::LogLevel::kError, "events: dispatcher step failed", {{"error", e.what()}});
    }
    if (invisible) {
      const auto now = std::chrono::steady_clock::now();
      if (recheck.count() == 0) {
        recheck = std::chrono::milliseconds(5);
        recheck_until = now + std::chrono::seconds(30);
      } else {
        recheck = std::min(recheck * 2, std::chrono::milliseconds(1000));
      }
      if (now < recheck_until) {
        co_await Pause(tick, recheck);
        continue;
      }
      awaited_txid.store(0);  // Give up on it; the safety-net poll will see it.
    }
    recheck = std::chrono::milliseconds(0);
    // A notification that came while AwaitedInvisible was suspended cancelled no wait: look at
    // the flag again. No suspension between this check and the wait, and a later notification's
    // cancel is posted to this thread, so it reaches the wait.
    if (notified.load()) continue;
    co_await Pause(tick, options.poll);
  }
  --loops;
}

store::Task<core::Result<void>> Dispatcher::Impl::RecordBody(store::Transaction& tx, const std::string& id,
                                                             const std::string& state, int status, std::int64_t latency,
                                                             const std::string& error, const std::string& destination) {
  const auto& d = db.dialect();
  const std::int64_t now = NowMs();
  const bool ok = state == "succeeded";
  Statement update{"UPDATE basalt_webhook_deliveries SET state = " + d.Placeholder(1) +
                       ", attempts = attempts + 1, status_code = " + d.Placeholder(2) + ", latency_ms = " +
                       d.Placeholder(3) + ", error = " + d.Placeholder(4) + ", updated_at = " + d.Placeholder(5) +
                       ", delivered_at = COALESCE(" + d.Placeholder(6) + ", delivered_at) WHERE id = " +
                       d.Placeholder(7) + " RETURNING attempts",
                   {state, OptionalInt(status), latency, ok ? Value(store::Null{}) : Value(error), now,
                    ok ? Value(now) : Value(store::Null{}), id}};
  auto updated = co_await tx.Execute(std::move(update));
  if (!updated) co_return std::unexpected(std::move(updated.error()));
  if (!updated->rows.empty()) {
    Statement attempt{"INSERT INTO basalt_webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error)"
                      " VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                          d.Placeholder(4) + ", " + d.Placeholder(5) + ", " + d.Placeholder(6) +
                          ") ON CONFLICT (delivery_id, attempt) DO NOTHING",
                      {id, store::IntOf(updated->rows[0][0]), now, OptionalInt(status), latency,
                       ok ? Value(store::Null{}) : Value(error)}};
    if (auto r = co_await tx.Execute(std::move(attempt)); !r) co_return std::unexpected(std::move(r.error()));
  }
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

asio::awaitable<void> Dispatcher::Impl::Deliver(queue::Message m) {
  try {
    const auto& d = db.dialect();
    const std::string queue_name(kWebhookQueue);
    std::optional<Parsed> parsed = ParsePayload(m.payload);
    if (!parsed) {
      std::string q = queue_name, id = m.id, token = m.lease_token, why = "not a webhook delivery message";
      auto nacked = co_await engine.Nack(shard, std::move(q), std::move(id), std::move(token), std::nullopt,
                                         std::move(why));
      if (!nacked) LogError("events: cannot nack a malformed webhook message", nacked.error());
    } else {
      Statement hook_st{"SELECT url, secret FROM basalt_webhooks WHERE id = " + d.Placeholder(1), {parsed->webhook_id}};
      auto hook = co_await db.Query(shard, std::move(hook_st));
      if (!hook) {
        LogError("events: cannot read a webhook", hook.error());
        std::string q = queue_name, id = m.id, token = m.lease_token;
        auto released = co_await engine.Release(shard, std::move(q), std::move(id), std::move(token), 1000);
        if (!released) LogError("events: cannot release a webhook message", released.error());
      } else if (hook->rows.empty()) {
        // The webhook was deleted: nothing to send; the message is done.
        std::string q = queue_name, id = m.id, token = m.lease_token;
        auto acked = co_await engine.Ack(shard, std::move(q), std::move(id), std::move(token));
        if (!acked) LogError("events: cannot ack a message of a deleted webhook", acked.error());
      } else {
        const std::string url = store::TextOf(hook->rows[0][0]);
        const std::string secret = store::TextOf(hook->rows[0][1]);
        const std::string destination = DestinationOf(url);
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
            probe.push_back({"UPDATE basalt_webhook_breakers SET state = 'half_open', open_until = " +
                                 d.Placeholder(1) + " WHERE destination = " + d.Placeholder(2) +
                                 " AND state <> 'closed' AND open_until <= " + d.Placeholder(3),
                             {now + cooldown, destination, now}});
            auto won = co_await Run(std::move(probe));
            if (!won || *won == 0) defer_until = now + std::min<std::int64_t>(cooldown, 1000);
          }
        }
        if (defer_until) {
          // An open circuit: give the message back for later without spending its attempt.
          std::string q = queue_name, id = m.id, token = m.lease_token;
          const std::int64_t delay = std::clamp<std::int64_t>(*defer_until - now, 1, 86'400'000);
          auto released = co_await engine.Release(shard, std::move(q), std::move(id), std::move(token), delay);
          if (!released) LogError("events: cannot defer a webhook message", released.error());
        } else {
          const std::int64_t timestamp = NowMs() / 1000;
          OutboundRequest request;
          request.url = url;
          request.headers = {{"Content-Type", "application/cloudevents+json"},
                             {"webhook-id", parsed->event_id},
                             {"webhook-timestamp", std::to_string(timestamp)},
                             {"webhook-signature", Sign(secret, parsed->event_id, timestamp, parsed->body)}};
          request.body = parsed->body;
          const auto started = std::chrono::steady_clock::now();
          OutboundResult result = co_await sender(std::move(request));
          const std::int64_t latency =
              std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
          const bool ok = result.status >= 200 && result.status < 300;
          std::string error = result.error;
          if (!ok && error.empty()) {
            error = result.status >= 300 && result.status < 400
                        ? "redirect not followed (HTTP " + std::to_string(result.status) + ")"
                        : "HTTP " + std::to_string(result.status);
          }
          // The log first: a crash before the ack sends the message again and logs that attempt too.
          const bool exhausted = m.attempt >= static_cast<std::int64_t>(options.delivery.max_attempts);
          const std::string state = ok ? "succeeded" : exhausted ? "failed" : "pending";
          const std::string id = m.id;
          auto recorded = co_await db.Transact(
              shard, [this, &id, &state, &result, latency, &error, &destination](store::Transaction& tx) {
                return RecordBody(tx, id, state, result.status, latency, error, destination);
              });
          if (!recorded) LogError("events: cannot record a delivery attempt", recorded.error());
          std::string q = queue_name, mid = m.id, token = m.lease_token;
          if (ok) {
            auto acked = co_await engine.Ack(shard, std::move(q), std::move(mid), std::move(token));
            if (!acked) LogError("events: cannot ack a webhook message", acked.error());
          } else {
            std::string why = error;
            auto nacked = co_await engine.Nack(shard, std::move(q), std::move(mid), std::move(token), std::nullopt,
                                               std::move(why));
            if (!nacked) LogError("events: cannot nack a webhook message", nacked.error());
          }
        }
      }
    }
  } catch (const std::exception& e) {
    obs::Log(obs::LogLevel::kError, "events: delivery failed", {{"error", e.what()}});
  }
  --in_flight;
  worker_tick.cancel();
}

asio::awaitable<void> Dispatcher::Impl::WorkerLoop() {
  ++loops;
  const auto& o = options.delivery;
  queue::QueueSettings settings;
  settings.max_attempts = o.max_attempts;
  settings.backoff_min_ms = o.backoff_base.count();
  settings.backoff_max_ms = std::max(o.backoff_max.count(), o.backoff_base.count());
  settings.lease_ms = std::clamp<std::int64_t>(o.lease.count(), 100, 43'200'000);
  settings.retention_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count();
  settings.dead_letter = true;
  bool configured = false;
  while (!stopping.load()) {
    try {
      if (!configured) {
        std::string q(kWebhookQueue);
        auto put = co_await engine.Put(shard, std::move(q), settings);
        if (!put) {
          LogError("events: cannot configure the webhook queue", put.error());
          co_await Pause(worker_tick, std::chrono::milliseconds(1000));
          continue;
        }
        configured = true;
      }
      if (in_flight >= o.concurrency) {
        co_await Pause(worker_tick, std::chrono::milliseconds(1000));  // a finished delivery cancels it
        continue;
      }
      queue::ClaimOptions claim;
      claim.max = static_cast<std::int64_t>(o.concurrency - in_flight);
      claim.lease_ms = settings.lease_ms;
      claim.wait_ms = queue::kMaxWaitMs;  // woken at once by a produce; no polling
      std::string q(kWebhookQueue);
      const auto asked = std::chrono::steady_clock::now();
      auto claimed = co_await engine.Claim(shard, std::move(q), claim);
      if (!claimed) {
        LogError("events: cannot claim webhook messages", claimed.error());
        co_await Pause(worker_tick, std::chrono::milliseconds(1000));
        continue;
      }
      // Empty at once: the engine is shutting down (claims no longer wait) or another worker won
      // the race; do not spin.
      if (claimed->empty() && std::chrono::steady_clock::now() - asked < std::chrono::seconds(1)) {
        co_await Pause(worker_tick, std::chrono::milliseconds(200));
        continue;
      }
      for (auto& m : *claimed) {
        ++in_flight;
        asio::co_spawn(ctx, Deliver(std::move(m)), asio::detached);
      }
    } catch (const std::exception& e) {
      obs::Log(obs::LogLevel::kError, "events: webhook worker step failed", {{"error", e.what()}});
    }
  }
  --loops;
}

Dispatcher::Dispatcher(store::Database& database, queue::Engine& queue, unsigned shard, Hub& hub,
                       DispatcherOptions options, Sender sender)
    : impl_(std::make_unique<Impl>(database, queue, shard, hub, std::move(options), std::move(sender))) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  auto& s = *impl_;
  std::string channel(kEventsChannel);
  s.listening = s.db.Listen(std::move(channel), [&s](std::string_view payload, bool lost) {
    s.OnNotification(payload, lost);
  });
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

void Dispatcher::Notify() { impl_->OnNotification({}, false); }

void Dispatcher::Stop() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  s.listening.reset();  // waits for a callback in progress; none after this
  s.stopping.store(true);
  if (s.options.webhooks) s.engine.Shutdown();  // ends the worker's long-poll
  asio::co_spawn(s.ctx, s.Drain(), asio::detached);
  s.thread.join();
}

}  // namespace basalt::events
