#include "app/serve.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <csignal>
#include <algorithm>
#include <filesystem>
#include <thread>

#include "api/audit_log.hpp"
#include "api/access_cache.hpp"
#include "api/access_routes.hpp"
#include "api/auth.hpp"
#include "api/authn.hpp"
#include "api/idempotency.hpp"
#include "api/openapi.hpp"
#include "api/queues.hpp"
#include "api/data_routes.hpp"
#include "api/realtime.hpp"
#include "api/routes.hpp"
#include "app/database.hpp"
#include "auth/access_store.hpp"
#include "core/crypto.hpp"
#include "http/rate_limit.hpp"
#include "app/queue_purger.hpp"
#include "events/dispatcher.hpp"
#include "events/hub.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/stages.hpp"
#include "obs/log.hpp"
#include "obs/metrics.hpp"
#include "queue/engine.hpp"
#include "schema/catalog.hpp"

namespace basalt::app {
namespace {

using std::chrono::milliseconds;

/// The CPUs this process may run on (its affinity mask: taskset, a cpuset, a container's CPU
/// list), else every online CPU: "one I/O thread per core" means per core it can use.
unsigned UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    if (const int n = CPU_COUNT(&set); n > 0) return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

http::ServerOptions ToServerOptions(const config::Settings& s, unsigned threads) {
  http::ServerOptions o;
  o.host = s.server.host;
  o.port = s.server.port;
  o.threads = threads;
  o.max_connections = s.server.max_connections;
  o.max_header_bytes = s.server.max_header_bytes;
  o.max_request_line_bytes = std::min(s.server.max_request_line_bytes, s.server.max_header_bytes);
  o.max_body_bytes = s.server.max_body_bytes;
  o.max_json_depth = s.server.max_json_depth;
  o.header_timeout = milliseconds(s.server.header_timeout_ms);
  o.body_timeout = milliseconds(s.server.body_timeout_ms);
  o.idle_timeout = milliseconds(s.server.idle_timeout_ms);
  o.shutdown_timeout = milliseconds(s.server.shutdown_timeout_ms);
  o.drain_delay = milliseconds(s.server.drain_delay_ms);
  o.tls_cert_file = s.tls.cert_file;
  o.tls_key_file = s.tls.key_file;
  return o;
}

// Connections are file descriptors: take every one the hard limit allows.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

/// The identity components, built from the settings; they outlive the server.
struct Identity {
  Identity(const config::Settings& s, store::Database& db, schema::Catalog& catalog)
      : passwords({.memory_kib = s.auth.argon2_memory_kib,
                   .iterations = s.auth.argon2_iterations,
                   .threads = s.auth.hash_threads}),
        tokens(db, {.issuer = s.auth.issuer,
                    .audience = s.auth.audience,
                    .ttl_s = s.auth.access_token_ttl_s,
                    .service_ttl_s = s.auth.service_token_ttl_s,
                    .leeway_s = s.auth.clock_skew_s,
                    .key_max_age_s = s.auth.key_rotation_s}),
        users(db),
        sessions(db, s.auth.refresh_token_ttl_s),
        throttle({.account_threshold = s.auth.lockout_threshold,
                  .ip_threshold = s.auth.ip_lockout_threshold,
                  .base_lock_s = s.auth.lockout_base_s,
                  .max_lock_s = s.auth.lockout_max_s}),
        services{db,       catalog,  passwords, tokens, users, sessions, throttle, setup,
                 {.registration = s.auth.registration == "closed"   ? api::Registration::kClosed
                                  : s.auth.registration == "invite" ? api::Registration::kInvite
                                                                    : api::Registration::kOpen,
                  .password_min_length = s.auth.password_min_length,
                  .invite_ttl_s = s.auth.invite_ttl_s},
                 nullptr} {}
  auth::PasswordHasher passwords;
  auth::TokenService tokens;
  auth::UserStore users;
  auth::SessionStore sessions;
  auth::LoginThrottle throttle;
  api::SetupToken setup;
  api::AuthServices services;
};

core::Result<std::unique_ptr<Identity>> StartIdentity(const config::Settings& settings, store::Database& db,
                                                      schema::Catalog& catalog) {
  if (auto ensured = RunBlocking(api::EnsureUsersCollection(catalog, 0)); !ensured)
    return std::unexpected(std::move(ensured.error()));
  auto identity = std::make_unique<Identity>(settings, db, catalog);
  if (auto loaded = RunBlocking(identity->tokens.Load(0)); !loaded) return std::unexpected(std::move(loaded.error()));
  auto count = RunBlocking(identity->users.Count(0));
  if (!count) return std::unexpected(std::move(count.error()));
  if (*count == 0) {
    // A fresh instance: a one-time token to create the first admin (dead once any user exists).
    const std::string token = "setup_" + core::RandomToken();
    identity->setup.Arm(token);
    obs::Log(obs::LogLevel::kWarn,
             "no users yet: create the first admin with POST /api/v1/auth/setup {token, email, password} "
             "or basalt admin create",
             {{"setup_token", token}});
  }
  return identity;
}

// The webhook Sender: the project's HTTP client with the webhook settings.
store::Task<events::OutboundResult> SendWebhook(config::WebhookSettings settings, events::OutboundRequest request) {
  http::ClientRequest out;
  out.method = "POST";
  out.url = std::move(request.url);
  out.headers = std::move(request.headers);
  out.body = std::move(request.body);
  out.connect_timeout = milliseconds(settings.connect_timeout_ms);
  out.total_timeout = milliseconds(settings.timeout_ms);
  out.allow_private = settings.allow_private;
  auto response = co_await http::Fetch(std::move(out));
  events::OutboundResult result;
  if (!response) {
    result.error = response.error().message;
  } else {
    result.status = response->status;
  }
  co_return result;
}

events::DispatcherOptions ToDispatcherOptions(const config::Settings& s) {
  events::DispatcherOptions o;
  o.realtime = s.server.role != "worker";
  o.webhooks = s.server.role != "api";
  o.poll = milliseconds(s.events.poll_ms);
  o.retention = std::chrono::seconds(s.events.retention_s);
  o.delivery.max_attempts = s.webhooks.max_attempts;
  o.delivery.backoff_base = milliseconds(s.webhooks.backoff_base_ms);
  o.delivery.backoff_max = milliseconds(s.webhooks.backoff_max_ms);
  o.delivery.breaker_threshold = s.webhooks.breaker_threshold;
  o.delivery.breaker_cooldown = milliseconds(s.webhooks.breaker_cooldown_ms);
  o.delivery.lease = milliseconds(std::max(60'000u, s.webhooks.timeout_ms * 2 + s.webhooks.connect_timeout_ms));
  return o;
}

}  // namespace

sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int Serve(const config::Settings& settings, const SettingsLoader& reload) {
  RaiseFileLimit();

  // Signals are taken by this thread with sigwait; every other thread inherits the block.
  const sigset_t signals = BlockShutdownSignals();
  std::signal(SIGPIPE, SIG_IGN);

  const unsigned threads = settings.server.threads ? settings.server.threads : UsableCpus();
  // One shard per I/O thread, plus one for background work (the queue purger), one for the
  // events dispatcher's thread and one for this thread (the audit entry of a reload).
  const unsigned background_shard = threads;
  const unsigned events_shard = threads + 1;
  const unsigned control_shard = threads + 2;
  auto database = OpenDatabase(settings, threads + 3);
  if (!database) {
    obs::Log(obs::LogLevel::kError, "cannot open the database",
             {{"error", database.error().message}, {"cause", database.error().cause}});
    return 1;
  }
  store::Database& db = **database;
  if (auto applied = MigrateUp(db); !applied) {
    obs::Log(obs::LogLevel::kError, "system migrations failed",
             {{"error", applied.error().message}, {"cause", applied.error().cause}});
    db.Close();
    return 1;
  } else if (*applied > 0) {
    obs::Log(obs::LogLevel::kInfo, "applied system migrations", {{"count", static_cast<std::int64_t>(*applied)}});
  }

  obs::HttpMetrics metrics(threads);
  http::Readiness readiness;

  schema::Catalog catalog(db);
  if (auto loaded = catalog.LoadBlocking(); !loaded) {
    obs::Log(obs::LogLevel::kError, "cannot load collections",
             {{"error", loaded.error().message}, {"cause", loaded.error().cause}});
    db.Close();
    return 1;
  }
  auto keys = LoadKeyRing(settings);
  if (!keys) {  // config::Load validated the ring; this only guards against drift
    obs::Log(obs::LogLevel::kError, "invalid secrets.keys", {{"error", keys.error().message}});
    db.Close();
    return 2;
  }
  if (!keys->empty())
    obs::Log(obs::LogLevel::kInfo, "secret field keys loaded",
             {{"active_key", keys->active_id()}, {"keys", static_cast<std::int64_t>(keys->ids().size())}});
  audit::AuditLog audit_log(db);
  const bool serves_api = settings.server.role != "worker";
  queue::Engine queues(db);
  events::Hub hub;
  events::Dispatcher dispatcher(db, queues, events_shard, hub, ToDispatcherOptions(settings),
                                [webhooks = settings.webhooks](events::OutboundRequest request) {
                                  return SendWebhook(webhooks, std::move(request));
                                });
  const api::DataServices data{db, catalog, *keys, &audit_log};
  const api::RealtimeServices realtime{data, hub,
                                       {.max_pending = settings.realtime.max_pending,
                                        .heartbeat = milliseconds(settings.realtime.heartbeat_ms)}};
  std::vector<api::MetricsSource> metric_sources;
  metric_sources.push_back([&queues](unsigned shard, std::string& out) { return api::RenderQueueMetrics(queues, shard, out); });

  // Identity: the users collection, password hashing workers, signing keys, sessions.
  auto identity = StartIdentity(settings, db, catalog);
  if (!identity) {
    obs::Log(obs::LogLevel::kError, "cannot start identity",
             {{"error", identity.error().message}, {"cause", identity.error().cause}});
    db.Close();
    return 1;
  }
  Identity& id = **identity;
  id.services.audit = &audit_log;

  // Machines and services: API keys, custom roles, OAuth2 clients; cached for the auth stage.
  auth::AccessStore access_store(db);
  api::AccessCache access_cache(access_store);
  const api::AccessServices access{access_store, access_cache, settings.auth.user_api_keys, id.tokens, &audit_log};

  http::Router router;
  for (auto r : {api::RegisterHealth(router, readiness),
                 settings.metrics.enabled
                     ? api::RegisterMetrics(router, metrics, settings.metrics.token, std::move(metric_sources))
                     : core::Result<void>{},
                 serves_api ? api::RegisterQueues(router, queues) : core::Result<void>{},
                 serves_api ? api::RegisterCollections(router, data) : core::Result<void>{},
                 serves_api ? api::RegisterRecords(router, data) : core::Result<void>{},
                 serves_api ? api::RegisterRealtime(router, realtime) : core::Result<void>{},
                 serves_api ? api::RegisterWebhooks(router, data, queues, {.allow_private = settings.webhooks.allow_private})
                            : core::Result<void>{},
                 serves_api ? api::RegisterOpenApi(router, data) : core::Result<void>{},
                 serves_api ? api::RegisterAuditLog(router, audit_log) : core::Result<void>{},
                 serves_api ? api::RegisterAuth(router, id.services) : core::Result<void>{},
                 serves_api ? api::RegisterApiKeys(router, access) : core::Result<void>{},
                 serves_api ? api::RegisterRoles(router, access) : core::Result<void>{},
                 serves_api ? api::RegisterOAuth2Clients(router, access) : core::Result<void>{},
                 serves_api ? api::RegisterOAuth2(router, access) : core::Result<void>{},
                 serves_api ? api::RegisterVerify(router) : core::Result<void>{}}) {
    if (!r) {
      obs::Log(obs::LogLevel::kError, "cannot register routes", {{"error", r.error().message}});
      db.Close();
      return 1;
    }
  }

  http::Pipeline pipeline(http::Dispatch);
  pipeline.Use(http::RequestIdStage());
  LiveSettings live;
  live.access_log.store(settings.log.access);
  pipeline.Use(http::AccessLogStage(&live.access_log));
  pipeline.Use(http::MetricsStage(metrics));
  pipeline.Use(http::SecurityHeadersStage({.referrer_policy = settings.security.referrer_policy,
                                           .hsts_max_age_s = settings.security.hsts_max_age_s,
                                           .tls = settings.TlsEnabled()}));
  pipeline.Use(http::CorsStage({.allowed_origins = settings.cors.allowed_origins,
                                .allowed_methods = settings.cors.allowed_methods,
                                .allowed_headers = settings.cors.allowed_headers,
                                .exposed_headers = settings.cors.exposed_headers,
                                .allow_credentials = settings.cors.allow_credentials,
                                .max_age_s = settings.cors.max_age_s}));
  pipeline.Use(api::AuthenticationStage({.admin_token = settings.auth.admin_token, .tokens = &id.tokens,
                                         .access = &access_cache}));
  if (settings.rate_limit.enabled) {
    auto limiter = std::make_shared<http::GcraLimiter>(http::GcraOptions{.max_keys = settings.rate_limit.max_keys});
    live.rate_limit = std::make_shared<http::RateLimitPolicy>(ToRateLimitOptions(settings.rate_limit));
    pipeline.Use(http::RateLimitStage(std::move(limiter), live.rate_limit));
  }
  pipeline.Use(api::AdminTokenAuditStage(audit_log));
  pipeline.Use(api::IdempotencyStage(db));

  dispatcher.Start();
  http::Server server(ToServerOptions(settings, threads), router, pipeline, readiness);
  if (auto started = server.Start(); !started) {
    obs::Log(obs::LogLevel::kError, "cannot start server", {{"error", started.error().message}});
    queues.Shutdown();
    dispatcher.Stop();
    db.Close();
    return 1;
  }
  QueuePurger purger(queues, background_shard, milliseconds(settings.queue.purge_interval_ms));
  readiness.set(true);
  obs::Log(obs::LogLevel::kInfo, "listening",
           {{"host", settings.server.host},
            {"port", static_cast<std::int64_t>(server.port())},
            {"threads", static_cast<std::int64_t>(threads)},
            {"tls", settings.TlsEnabled()},
            {"role", settings.server.role},
            {"version", api::BuildVersion()}});
  obs::FlushLogs();

  int received = 0;
  config::Settings effective = settings;
  for (;;) {
    sigwait(&signals, &received);
    if (received != SIGHUP) break;
    if (reload) {
      Reload(effective, reload, live, audit_log, control_shard);
    } else {
      obs::Log(obs::LogLevel::kWarn, "SIGHUP ignored: this server has no configuration source to reload");
    }
  }
  obs::Log(obs::LogLevel::kInfo, "shutting down",
           {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"},
            {"drain_delay_ms", static_cast<std::int64_t>(settings.server.drain_delay_ms)},
            {"shutdown_timeout_ms", static_cast<std::int64_t>(settings.server.shutdown_timeout_ms)}});
  queues.Shutdown();  // Long-polling claims answer now instead of holding the drain.
  server.Shutdown();
  server.Wait();
  purger.Stop();
  dispatcher.Stop();  // after the I/O threads and queues.Shutdown(), before the database
  db.Close();  // after the I/O threads: flushes the writer queue
  obs::Log(obs::LogLevel::kInfo, "stopped");
  obs::FlushLogs();
  return 0;
}

}  // namespace basalt::app
