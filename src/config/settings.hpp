#pragma once
/// Basalt's settings: one table of every setting (key, type, default, limits, description),
/// loaded from a TOML file, overridden by `BASALT_<SECTION>__<KEY>` environment variables and then
/// by command-line flags, and validated as a whole before anything starts.

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace basalt::config {

/// Log line format.
enum class LogFormat {
  kJson,  ///< One JSON object per line (production).
  kText,  ///< Human-readable (development).
};

struct ServerSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8090;              ///< 0 picks a free port (tests).
  unsigned threads = 0;                   ///< 0 = one per CPU of the affinity mask.
  unsigned max_connections = 16384;
  std::uint32_t max_header_bytes = 16 * 1024;
  std::uint32_t max_request_line_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 1024 * 1024;
  unsigned max_json_depth = 64;
  unsigned header_timeout_ms = 10'000;
  unsigned body_timeout_ms = 30'000;
  unsigned idle_timeout_ms = 60'000;
  unsigned shutdown_timeout_ms = 10'000;
  unsigned drain_delay_ms = 0;  ///< After SIGTERM, keep serving (readyz 503) this long before closing.
  std::string role = "all";     ///< api (HTTP only), worker (dispatcher and deliveries only), all.
};

struct TlsSettings {
  std::string cert_file;  ///< PEM certificate chain; TLS is on when cert_file and key_file are set.
  std::string key_file;   ///< PEM private key.
};

struct CorsSettings {
  std::vector<std::string> allowed_origins;  ///< Exact origins, or "*" (never with credentials).
  std::vector<std::string> allowed_methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  std::vector<std::string> allowed_headers = {"Authorization", "Content-Type", "If-Match",
                                              "If-None-Match", "Idempotency-Key", "X-Request-Id"};
  std::vector<std::string> exposed_headers = {"ETag", "Location", "Link", "X-Request-Id"};
  bool allow_credentials = false;
  unsigned max_age_s = 600;
};

struct SecuritySettings {
  std::string referrer_policy = "no-referrer";
  unsigned hsts_max_age_s = 31'536'000;  ///< Sent only when TLS is on; 0 disables.
};

struct LogSettings {
  std::string level = "info";  ///< trace, debug, info, warn, error, off.
  LogFormat format = LogFormat::kJson;
  bool access = true;          ///< One line per request.
};

struct MetricsSettings {
  bool enabled = true;
  std::string token;  ///< Secret. When set, /metrics requires `Authorization: Bearer <token>`.
};

struct StorageSettings {
  std::string data_dir = "./basalt_data";
};

struct DatabaseSettings {
  std::string url;           ///< Secret. Empty: embedded SQLite in data_dir; else postgres://...
  unsigned pool_size = 4;    ///< PostgreSQL connections per I/O thread.
};

struct QueueSettings {
  unsigned purge_interval_ms = 60'000;  ///< How often completed messages past retention are deleted.
};

struct AuthSettings {
  std::string admin_token;  ///< Secret. When set (32+ chars), `Bearer <it>` acts as a superuser.
  std::string registration = "open";          ///< open, closed, invite.
  unsigned password_min_length = 8;            ///< Code points.
  unsigned argon2_memory_kib = 19456;          ///< argon2id m (OWASP minimum 19 MiB).
  unsigned argon2_iterations = 2;              ///< argon2id t (OWASP minimum 2).
  unsigned hash_threads = 2;                   ///< Password-hashing worker threads.
  unsigned access_token_ttl_s = 900;           ///< JWT lifetime.
  unsigned refresh_token_ttl_s = 2'592'000;    ///< Refresh-token lifetime (30 days).
  unsigned clock_skew_s = 30;                  ///< Leeway on exp / iat / nbf.
  std::string issuer = "basalt";               ///< JWT `iss`.
  std::string audience = "basalt";             ///< JWT `aud`.
  unsigned key_rotation_s = 0;                 ///< Rotate the signing key after this age; 0: by command only.
  unsigned lockout_threshold = 5;              ///< Failed logins per account before a lock.
  unsigned ip_lockout_threshold = 20;          ///< Failed logins per IP before a lock.
  unsigned lockout_base_s = 30;                ///< First lock; doubles per further failure.
  unsigned lockout_max_s = 900;                ///< Longest lock.
  unsigned invite_ttl_s = 604'800;             ///< Default invite lifetime (7 days).
  bool user_api_keys = true;             ///< Users may create API keys for themselves (within their own rights).
  unsigned service_token_ttl_s = 900;  ///< Lifetime of OAuth2 client-credentials access tokens.
};

struct SecretsSettings {
  /// Secret. The key ring for `secret` fields: entries `id:base64key` (32 bytes each) separated by
  /// commas, spaces or newlines; validated at start-up (core::KeyRing::Parse).
  std::string keys;
  std::string active_key;  ///< Id of the key new values are sealed under; empty = the first entry.
};

struct RateLimitSettings {
  bool enabled = true;
  std::string default_rate = "100/s 200";  ///< Key `default`: "<count>/<s|m|h> [<burst>]".
  std::vector<std::string> routes;         ///< "<route template> <count>/<s|m|h> [<burst>]" each.
  unsigned max_keys = 100'000;             ///< Identities x buckets held in memory per instance.
};

/// A parsed rate: `count` requests per `period_s` seconds, bursts of up to `burst`.
struct RateSpec {
  std::uint32_t count = 0;
  std::uint32_t period_s = 1;
  std::uint32_t burst = 0;
};

/// Parses "<count>/<unit> [<burst>]": unit s, m or h; count 1..1000000000; burst 1..1000000,
/// default count (capped at 1000000). Surrounding spaces allowed. nullopt when malformed.
std::optional<RateSpec> ParseRate(std::string_view text);

/// Parses "<route> <count>/<unit> [<burst>]" (route starts with '/'); nullopt when malformed.
std::optional<std::pair<std::string, RateSpec>> ParseRouteRate(std::string_view text);

/// Tighter built-in per-route rates for the authentication routes, in ParseRouteRate's format.
/// `rate_limit.routes` entries for the same route replace them.
const std::vector<std::string>& BuiltinRouteRates();
struct EventsSettings {
  unsigned retention_s = 86'400;  ///< Outbox events (and finished deliveries) are kept this long.
  unsigned poll_ms = 5'000;       ///< Safety-net look for events when no notification came.
};

struct RealtimeSettings {
  unsigned max_pending = 4096;    ///< Events queued per live subscriber before it is cut off.
  unsigned heartbeat_ms = 15'000; ///< Comment line on an idle stream.
};

struct WebhookSettings {
  bool allow_private = false;            ///< Allow loopback/private destinations.
  unsigned connect_timeout_ms = 5'000;
  unsigned timeout_ms = 10'000;          ///< Whole request.
  unsigned max_attempts = 8;
  unsigned backoff_base_ms = 1'000;
  unsigned backoff_max_ms = 3'600'000;
  unsigned breaker_threshold = 5;        ///< Consecutive failures that open a destination's breaker.
  unsigned breaker_cooldown_ms = 30'000; ///< Open this long before a half-open probe.
};

/// Every setting, typed. Defaults here are the documented defaults.
struct Settings {
  ServerSettings server;
  TlsSettings tls;
  CorsSettings cors;
  SecuritySettings security;
  LogSettings log;
  MetricsSettings metrics;
  StorageSettings storage;
  DatabaseSettings database;
  QueueSettings queue;
  AuthSettings auth;
  SecretsSettings secrets;
  RateLimitSettings rate_limit;
  EventsSettings events;
  RealtimeSettings realtime;
  WebhookSettings webhooks;

  bool TlsEnabled() const { return !tls.cert_file.empty() && !tls.key_file.empty(); }
};

/// One row of the settings table, for documentation and `config show`.
struct SettingInfo {
  std::string key;            ///< "server.port".
  std::string type;           ///< "string", "integer", "boolean", "string list", or "one of: a, b".
  std::string default_value;  ///< As written in TOML, e.g. `8090`, `"127.0.0.1"`, `[]`.
  std::string description;
  bool secret = false;        ///< Redacted by `config show`; may come from `<key>_file`.
};

/// The table of every setting. docs/configuration.md must list exactly these (a test checks it).
const std::vector<SettingInfo>& SettingsTable();

/// One problem found while loading; all of them are reported at once.
struct Problem {
  std::string source;   ///< "basalt.toml:12", "env BASALT_SERVER__PORT", "--port".
  std::string key;      ///< Setting key, or empty.
  std::string message;  ///< "must be between 1 and 65535", "unknown setting", ...
};

/// Where settings come from. Later sources override earlier ones: file, then env, then flags.
struct Sources {
  std::optional<std::filesystem::path> file;  ///< Missing file is a problem only when given explicitly.
  std::vector<std::pair<std::string, std::string>> env;        ///< Only BASALT_* entries are read.
  std::vector<std::pair<std::string, std::string>> overrides;  ///< {"server.port", "9000"} from flags.
};

/// Loads and validates. Returns every problem found, never only the first one.
std::expected<Settings, std::vector<Problem>> Load(const Sources& sources);

/// Collects BASALT_* variables from the process environment.
std::vector<std::pair<std::string, std::string>> ProcessEnvironment();

/// The effective settings as TOML, with secrets shown as "<redacted>" when set.
std::string Show(const Settings& settings);

/// Formats problems one per line for the terminal.
std::string FormatProblems(const std::vector<Problem>& problems);

}  // namespace basalt::config
