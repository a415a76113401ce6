#include "config/settings.hpp"

#include <toml++/toml.h>

#include "core/crypto.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <variant>

#include <unistd.h>

extern char** environ;  // NOLINT: POSIX, declared here because <unistd.h> only does so with _GNU_SOURCE.

namespace basalt::config {
namespace {

// ---------------------------------------------------------------------------------------------
// The table. Each row knows its key, type, limits and how to read and write its field, so Load,
// Show and SettingsTable all come from here, and defaults are read from a default Settings.
// ---------------------------------------------------------------------------------------------

/// A setting's value in a type-neutral form (TOML and text are both converted to this).
using Value = std::variant<std::int64_t, bool, std::string, std::vector<std::string>>;

/// What a row holds.
enum class Kind {
  kInteger,     ///< std::int64_t, with [min, max].
  kBoolean,     ///< bool.
  kString,      ///< std::string, optionally restricted to `choices`.
  kStringList,  ///< std::vector<std::string>.
};

/// An extra per-value check; returns a message when the value is not acceptable.
using Check = std::function<std::optional<std::string>(const Value&)>;

struct Row {
  std::string section;
  std::string name;
  Kind kind = Kind::kString;
  std::string description;
  bool secret = false;
  std::int64_t min = 0;              ///< kInteger only.
  std::int64_t max = 0;              ///< kInteger only.
  std::vector<std::string> choices;  ///< kString only: when not empty, the only valid values.
  Check check;                       ///< Optional.
  std::function<Value(const Settings&)> get;
  std::function<void(Settings&, const Value&)> set;

  std::string Key() const { return section + "." + name; }
};

template <class Section, class Field>
Row IntegerRow(std::string section, std::string name, Section Settings::*sec, Field Section::*field,
               std::int64_t min, std::int64_t max, std::string description) {
  // The limits must fit the field, or Set would silently truncate: a bug in this table.
  assert(min >= 0 || std::numeric_limits<Field>::is_signed);
  assert(static_cast<std::uint64_t>(max) <= std::numeric_limits<Field>::max());
  Row row{std::move(section), std::move(name), Kind::kInteger, std::move(description)};
  row.min = min;
  row.max = max;
  row.get = [sec, field](const Settings& s) { return Value{static_cast<std::int64_t>(s.*sec.*field)}; };
  row.set = [sec, field](Settings& s, const Value& v) {
    s.*sec.*field = static_cast<Field>(std::get<std::int64_t>(v));
  };
  return row;
}

template <class Section>
Row BooleanRow(std::string section, std::string name, Section Settings::*sec, bool Section::*field,
               std::string description) {
  Row row{std::move(section), std::move(name), Kind::kBoolean, std::move(description)};
  row.get = [sec, field](const Settings& s) { return Value{s.*sec.*field}; };
  row.set = [sec, field](Settings& s, const Value& v) { s.*sec.*field = std::get<bool>(v); };
  return row;
}

template <class Section>
Row StringRow(std::string section, std::string name, Section Settings::*sec,
              std::string Section::*field, std::string description,
              std::vector<std::string> choices = {}, Check check = {}) {
  Row row{std::move(section), std::move(name), Kind::kString, std::move(description)};
  row.choices = std::move(choices);
  row.check = std::move(check);
  row.get = [sec, field](const Settings& s) { return Value{s.*sec.*field}; };
  row.set = [sec, field](Settings& s, const Value& v) { s.*sec.*field = std::get<std::string>(v); };
  return row;
}

template <class Section>
Row ListRow(std::string section, std::string name, Section Settings::*sec,
            std::vector<std::string> Section::*field, std::string description, Check check = {}) {
  Row row{std::move(section), std::move(name), Kind::kStringList, std::move(description)};
  row.check = std::move(check);
  row.get = [sec, field](const Settings& s) { return Value{s.*sec.*field}; };
  row.set = [sec, field](Settings& s, const Value& v) {
    s.*sec.*field = std::get<std::vector<std::string>>(v);
  };
  return row;
}

/// An enum field, written in TOML as one of `names` (in the order of the enum's values).
template <class Section, class Enum>
Row EnumRow(std::string section, std::string name, Section Settings::*sec, Enum Section::*field,
            std::vector<std::pair<Enum, std::string>> names, std::string description) {
  Row row{std::move(section), std::move(name), Kind::kString, std::move(description)};
  for (const auto& [value, text] : names) row.choices.push_back(text);
  row.get = [sec, field, names](const Settings& s) {
    for (const auto& [value, text] : names) {
      if (value == s.*sec.*field) return Value{text};
    }
    assert(false && "enum value missing from its row");
    return Value{std::string()};
  };
  row.set = [sec, field, names](Settings& s, const Value& v) {
    for (const auto& [value, text] : names) {
      if (text == std::get<std::string>(v)) s.*sec.*field = value;
    }
  };
  return row;
}

std::optional<std::string> NotEmpty(const Value& v) {
  if (std::get<std::string>(v).empty()) return "must not be empty";
  return std::nullopt;
}

std::optional<std::string> TokenLength(const Value& v) {
  const auto& token = std::get<std::string>(v);
  // Never echo the value: it is a secret.
  if (!token.empty() && token.size() < 16) return "must be at least 16 characters when set";
  return std::nullopt;
}

std::optional<std::string> KeyRingText(const Value& v) {
  auto ring = core::KeyRing::Parse(std::get<std::string>(v));
  if (!ring) return ring.error().message;
  return std::nullopt;
}

std::optional<std::string> AdminTokenLength(const Value& v) {
  const auto& token = std::get<std::string>(v);
  if (!token.empty() && token.size() < 32) return "must be at least 32 characters when set";
  return std::nullopt;
}

std::optional<std::string> DatabaseUrl(const Value& v) {
  const auto& url = std::get<std::string>(v);
  // Never echo the value: it may carry a password.
  if (url.empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) return std::nullopt;
  return "must be empty (embedded SQLite) or a postgres:// or postgresql:// URL";
}

bool IsTchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

/// HTTP method and header names are RFC 9110 tokens.
std::optional<std::string> HttpTokens(const Value& v) {
  for (const auto& item : std::get<std::vector<std::string>>(v)) {
    if (item.empty() || !std::all_of(item.begin(), item.end(), IsTchar)) {
      return "\"" + item + "\" is not an HTTP token";
    }
  }
  return std::nullopt;
}

/// "*" alone, or serialized origins: scheme "://" host [":" port], lower case, no path.
std::optional<std::string> Origins(const Value& v) {
  const auto& origins = std::get<std::vector<std::string>>(v);
  for (const auto& origin : origins) {
    if (origin == "*") {
      if (origins.size() > 1) return "\"*\" cannot be combined with other origins";
      continue;
    }
    const std::string bad = "\"" + origin + "\" is not an origin (scheme://host[:port], no path)";
    const auto sep = origin.find("://");
    if (sep == std::string::npos || sep == 0) return bad;
    const std::string_view scheme(origin.data(), sep);
    if (!std::isalpha(static_cast<unsigned char>(scheme[0])) ||
        !std::all_of(scheme.begin(), scheme.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        })) {
      return bad;
    }
    std::string_view rest(origin);
    rest.remove_prefix(sep + 3);
    std::string_view host = rest;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {  // IPv6 literal.
      const auto close = rest.find(']');
      if (close == std::string_view::npos) return bad;
      host = rest.substr(0, close + 1);
      const auto after = rest.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return bad;
        port = after.substr(1);
        if (port.empty()) return bad;
      }
      if (!std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
          })) {
        return bad;
      }
    } else {
      const auto colon = rest.find(':');
      if (colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (port.empty()) return bad;
      }
      if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
          })) {
        return bad;
      }
    }
    if (!port.empty()) {
      unsigned number = 0;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
      if (ec != std::errc() || end != port.data() + port.size() || number == 0 || number > 65535) {
        return bad;
      }
    }
    if (std::any_of(origin.begin(), origin.end(),
                    [](char c) { return std::isupper(static_cast<unsigned char>(c)); })) {
      return "\"" + origin + "\" must be lower case (browsers send origins in lower case)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> RateText(const Value& v) {
  if (!ParseRate(std::get<std::string>(v))) {
    return "must be \"<count>/<s|m|h> [<burst>]\", e.g. \"100/s 200\" (count 1-1000000000, burst 1-1000000)";
  }
  return std::nullopt;
}

std::optional<std::string> RouteRates(const Value& v) {
  for (const auto& item : std::get<std::vector<std::string>>(v)) {
    if (!ParseRouteRate(item)) {
      return "\"" + item + "\" is not \"<route> <count>/<s|m|h> [<burst>]\", e.g. \"/api/v1/auth/login 10/m 5\"";
    }
  }
  return std::nullopt;
}

constexpr std::int64_t kMaxTimeoutMs = 3'600'000;

std::vector<Row> BuildRows() {
  using S = Settings;
  std::vector<Row> rows;
  // server
  rows.push_back(StringRow("server", "host", &S::server, &ServerSettings::host,
                           "Address to listen on.", {}, NotEmpty));
  rows.push_back(IntegerRow("server", "port", &S::server, &ServerSettings::port, 0, 65535,
                            "TCP port to listen on; 0 picks a free port."));
  rows.push_back(IntegerRow("server", "threads", &S::server, &ServerSettings::threads, 0, 1024,
                            "I/O threads; 0 means one per CPU the process may run on."));
  rows.push_back(IntegerRow("server", "max_connections", &S::server, &ServerSettings::max_connections,
                            1, 1'000'000, "Open connections accepted at once."));
  rows.push_back(IntegerRow("server", "max_header_bytes", &S::server,
                            &ServerSettings::max_header_bytes, 1024, 1'048'576,
                            "Largest request header block, in bytes (431 beyond it)."));
  rows.push_back(IntegerRow("server", "max_request_line_bytes", &S::server,
                            &ServerSettings::max_request_line_bytes, 256, 1'048'576,
                            "Largest request line, in bytes (414 beyond it); at most "
                            "server.max_header_bytes."));
  rows.push_back(IntegerRow("server", "max_body_bytes", &S::server, &ServerSettings::max_body_bytes,
                            1, std::int64_t{1} << 34, "Largest request body, in bytes (413 beyond it)."));
  rows.push_back(IntegerRow("server", "max_json_depth", &S::server, &ServerSettings::max_json_depth,
                            1, 1000, "Deepest nesting accepted in a JSON body."));
  rows.push_back(IntegerRow("server", "header_timeout_ms", &S::server,
                            &ServerSettings::header_timeout_ms, 1, kMaxTimeoutMs,
                            "Time allowed to receive the request line and headers."));
  rows.push_back(IntegerRow("server", "body_timeout_ms", &S::server, &ServerSettings::body_timeout_ms,
                            1, kMaxTimeoutMs, "Time allowed to receive the request body."));
  rows.push_back(IntegerRow("server", "idle_timeout_ms", &S::server, &ServerSettings::idle_timeout_ms,
                            1, kMaxTimeoutMs, "Time a keep-alive connection may sit idle."));
  rows.push_back(IntegerRow("server", "shutdown_timeout_ms", &S::server,
                            &ServerSettings::shutdown_timeout_ms, 0, kMaxTimeoutMs,
                            "Time in-flight requests get to finish on shutdown."));
  rows.push_back(IntegerRow("server", "drain_delay_ms", &S::server, &ServerSettings::drain_delay_ms, 0,
                            kMaxTimeoutMs,
                            "After SIGTERM, keep accepting (with /readyz at 503) this long so load "
                            "balancers stop routing here before connections close."));
  rows.push_back(StringRow("server", "role", &S::server, &ServerSettings::role,
                           "all: serve HTTP and run the events dispatcher and webhook deliveries; api: HTTP "
                           "only (live subscribers included); worker: dispatcher and deliveries, with only "
                           "/healthz, /readyz and /metrics.",
                           {"all", "api", "worker"}));
  // tls
  rows.push_back(StringRow("tls", "cert_file", &S::tls, &TlsSettings::cert_file,
                           "PEM certificate chain; TLS is on when cert_file and key_file are set."));
  rows.push_back(StringRow("tls", "key_file", &S::tls, &TlsSettings::key_file, "PEM private key."));
  // cors
  rows.push_back(ListRow("cors", "allowed_origins", &S::cors, &CorsSettings::allowed_origins,
                         "Origins allowed by CORS: exact scheme://host[:port] origins, or \"*\". "
                         "Empty means CORS is closed.",
                         Origins));
  rows.push_back(ListRow("cors", "allowed_methods", &S::cors, &CorsSettings::allowed_methods,
                         "Methods allowed in CORS requests.", HttpTokens));
  rows.push_back(ListRow("cors", "allowed_headers", &S::cors, &CorsSettings::allowed_headers,
                         "Request headers allowed in CORS requests.", HttpTokens));
  rows.push_back(ListRow("cors", "exposed_headers", &S::cors, &CorsSettings::exposed_headers,
                         "Response headers exposed to CORS callers.", HttpTokens));
  rows.push_back(BooleanRow("cors", "allow_credentials", &S::cors, &CorsSettings::allow_credentials,
                            "Send Access-Control-Allow-Credentials; not allowed with origin \"*\"."));
  rows.push_back(IntegerRow("cors", "max_age_s", &S::cors, &CorsSettings::max_age_s, 0, 86'400,
                            "How long browsers may cache a preflight answer, in seconds."));
  // security
  rows.push_back(StringRow("security", "referrer_policy", &S::security,
                           &SecuritySettings::referrer_policy, "Referrer-Policy header value.",
                           {"no-referrer", "no-referrer-when-downgrade", "origin",
                            "origin-when-cross-origin", "same-origin", "strict-origin",
                            "strict-origin-when-cross-origin", "unsafe-url"}));
  rows.push_back(IntegerRow("security", "hsts_max_age_s", &S::security,
                            &SecuritySettings::hsts_max_age_s, 0, 2'147'483'647,
                            "Strict-Transport-Security max-age, sent only when TLS is on; 0 "
                            "disables."));
  // log
  rows.push_back(StringRow("log", "level", &S::log, &LogSettings::level, "Lowest level logged.",
                           {"trace", "debug", "info", "warn", "error", "off"}));
  rows.push_back(EnumRow("log", "format", &S::log, &LogSettings::format,
                         std::vector<std::pair<LogFormat, std::string>>{{LogFormat::kJson, "json"},
                                                                        {LogFormat::kText, "text"}},
                         "json: one JSON object per line; text: human-readable."));
  rows.push_back(BooleanRow("log", "access", &S::log, &LogSettings::access,
                            "Log one line per request."));
  // metrics
  rows.push_back(BooleanRow("metrics", "enabled", &S::metrics, &MetricsSettings::enabled,
                            "Serve Prometheus metrics at /metrics."));
  Row token = StringRow("metrics", "token", &S::metrics, &MetricsSettings::token,
                        "When set (16 characters or more), /metrics requires "
                        "`Authorization: Bearer <token>`. Secret: may come from `token_file`.",
                        {}, TokenLength);
  token.secret = true;
  rows.push_back(std::move(token));
  // storage
  rows.push_back(StringRow("storage", "data_dir", &S::storage, &StorageSettings::data_dir,
                           "Directory for the SQLite database and other data.", {}, NotEmpty));
  // database
  Row url = StringRow("database", "url", &S::database, &DatabaseSettings::url,
                      "Empty: the embedded SQLite database in `storage.data_dir`. Otherwise a "
                      "`postgres://user:password@host:port/db` URL. Secret: may come from `url_file`.",
                      {}, DatabaseUrl);
  url.secret = true;
  rows.push_back(std::move(url));
  rows.push_back(IntegerRow("database", "pool_size", &S::database, &DatabaseSettings::pool_size, 1, 64,
                            "PostgreSQL connections per I/O thread."));
  // queue
  rows.push_back(IntegerRow("queue", "purge_interval_ms", &S::queue, &QueueSettings::purge_interval_ms, 100,
                            86'400'000, "How often completed queue messages past their queue's retention are deleted."));
  // auth
  Row admin = StringRow("auth", "admin_token", &S::auth, &AuthSettings::admin_token,
                        "When set (32 characters or more), `Authorization: Bearer <token>` acts as a "
                        "superuser, for automation. Off by default. Secret: may come from "
                        "`admin_token_file`.",
                        {}, AdminTokenLength);
  admin.secret = true;
  rows.push_back(std::move(admin));
  rows.push_back(StringRow("auth", "registration", &S::auth, &AuthSettings::registration,
                           "Who may register: open (anyone), closed (admins create users), invite "
                           "(single-use invite tokens from POST /api/v1/auth/invites).",
                           {"open", "closed", "invite"}));
  rows.push_back(IntegerRow("auth", "password_min_length", &S::auth, &AuthSettings::password_min_length, 8, 1024,
                            "Shortest password accepted, in characters (passwords are at most 1024 bytes)."));
  rows.push_back(IntegerRow("auth", "argon2_memory_kib", &S::auth, &AuthSettings::argon2_memory_kib, 19456,
                            4'194'304, "argon2id memory per hash in KiB; at least OWASP's 19 MiB."));
  rows.push_back(IntegerRow("auth", "argon2_iterations", &S::auth, &AuthSettings::argon2_iterations, 2, 64,
                            "argon2id passes; at least OWASP's 2."));
  rows.push_back(IntegerRow("auth", "hash_threads", &S::auth, &AuthSettings::hash_threads, 1, 64,
                            "Worker threads hashing passwords (never the I/O threads)."));
  rows.push_back(IntegerRow("auth", "access_token_ttl_s", &S::auth, &AuthSettings::access_token_ttl_s, 5, 86'400,
                            "Lifetime of access tokens (JWT), in seconds."));
  rows.push_back(IntegerRow("auth", "refresh_token_ttl_s", &S::auth, &AuthSettings::refresh_token_ttl_s, 60,
                            31'536'000, "Lifetime of refresh tokens, in seconds."));
  rows.push_back(IntegerRow("auth", "clock_skew_s", &S::auth, &AuthSettings::clock_skew_s, 0, 300,
                            "Clock skew tolerated when checking a token's exp, iat and nbf, in seconds."));
  rows.push_back(StringRow("auth", "issuer", &S::auth, &AuthSettings::issuer,
                           "The `iss` claim written into and required from access tokens.", {}, NotEmpty));
  rows.push_back(StringRow("auth", "audience", &S::auth, &AuthSettings::audience,
                           "The `aud` claim written into and required from access tokens.", {}, NotEmpty));
  rows.push_back(IntegerRow("auth", "key_rotation_s", &S::auth, &AuthSettings::key_rotation_s, 0, 31'536'000,
                            "Rotate the token signing key once it is this old; 0: only `basalt auth rotate-keys`."));
  rows.push_back(IntegerRow("auth", "lockout_threshold", &S::auth, &AuthSettings::lockout_threshold, 1, 1000,
                            "Failed logins for one account before it is locked."));
  rows.push_back(IntegerRow("auth", "ip_lockout_threshold", &S::auth, &AuthSettings::ip_lockout_threshold, 1,
                            100'000, "Failed logins from one IP address before it is locked."));
  rows.push_back(IntegerRow("auth", "lockout_base_s", &S::auth, &AuthSettings::lockout_base_s, 1, 86'400,
                            "First lock, in seconds; doubles with each further failure."));
  rows.push_back(IntegerRow("auth", "lockout_max_s", &S::auth, &AuthSettings::lockout_max_s, 1, 86'400,
                            "Longest lock, in seconds."));
  rows.push_back(IntegerRow("auth", "invite_ttl_s", &S::auth, &AuthSettings::invite_ttl_s, 60, 7'776'000,
                            "Default lifetime of an invite token, in seconds."));
  rows.push_back(BooleanRow("auth", "user_api_keys", &S::auth, &AuthSettings::user_api_keys,
                            "Users may create API keys for themselves, with scopes within their own "
                            "permissions. Admins (and `api_keys:manage`) may always create keys."));
  rows.push_back(IntegerRow("auth", "service_token_ttl_s", &S::auth, &AuthSettings::service_token_ttl_s, 60, 86400,
                            "Lifetime in seconds of OAuth2 client-credentials access tokens."));
  // rate_limit
  rows.push_back(BooleanRow("rate_limit", "enabled", &S::rate_limit, &RateLimitSettings::enabled,
                            "Limit the request rate of every route per identity (probes exempt)."));
  rows.push_back(StringRow("rate_limit", "default", &S::rate_limit, &RateLimitSettings::default_rate,
                           "Rate of every route without its own, per identity: \"<count>/<s|m|h> [<burst>]\".",
                           {}, RateText));
  rows.push_back(ListRow("rate_limit", "routes", &S::rate_limit, &RateLimitSettings::routes,
                         "Per-route rates, \"<route template> <count>/<s|m|h> [<burst>]\" each; they "
                         "replace the built-in rates of the auth routes.",
                         RouteRates));
  rows.push_back(IntegerRow("rate_limit", "max_keys", &S::rate_limit, &RateLimitSettings::max_keys, 1024,
                            100'000'000, "Rate-limit buckets kept in memory; idle ones are evicted first."));
  // secrets
  Row keys = StringRow("secrets", "keys", &S::secrets, &SecretsSettings::keys,
                       "Key ring for `secret` fields: entries `id:base64key` (each key 32 random bytes, "
                       "e.g. `openssl rand -base64 32`) separated by commas or newlines. Empty: no "
                       "collection may have a secret field. Secret: may come from `keys_file`.",
                       {}, KeyRingText);
  keys.secret = true;
  rows.push_back(std::move(keys));
  rows.push_back(StringRow("secrets", "active_key", &S::secrets, &SecretsSettings::active_key,
                           "Id of the key new secret values are encrypted with; empty: the first key of "
                           "`secrets.keys`. `basalt keys rotate` re-encrypts older values with it."));
  // events
  rows.push_back(IntegerRow("events", "retention_s", &S::events, &EventsSettings::retention_s, 60, 31'536'000,
                            "Seconds outbox events (the Last-Event-ID window) and finished webhook deliveries are "
                            "kept before the worker purges them."));
  rows.push_back(IntegerRow("events", "poll_ms", &S::events, &EventsSettings::poll_ms, 10, 60'000,
                            "Safety net: how often the dispatcher looks for new events when no notification "
                            "woke it (writes notify it at once, on PostgreSQL across instances)."));
  // realtime
  rows.push_back(IntegerRow("realtime", "max_pending", &S::realtime, &RealtimeSettings::max_pending, 1, 100'000,
                            "Events queued for one live subscriber before it is cut off."));
  rows.push_back(IntegerRow("realtime", "heartbeat_ms", &S::realtime, &RealtimeSettings::heartbeat_ms, 100, 300'000,
                            "A comment line is sent on an idle stream this often."));
  // webhooks
  rows.push_back(BooleanRow("webhooks", "allow_private", &S::webhooks, &WebhookSettings::allow_private,
                            "Allow webhook URLs on loopback, private, link-local, unique-local and other "
                            "non-public addresses."));
  rows.push_back(IntegerRow("webhooks", "connect_timeout_ms", &S::webhooks, &WebhookSettings::connect_timeout_ms, 100,
                            60'000, "Bound on resolving, connecting and the TLS handshake of one delivery."));
  rows.push_back(IntegerRow("webhooks", "timeout_ms", &S::webhooks, &WebhookSettings::timeout_ms, 100, 300'000,
                            "Bound on one whole delivery request."));
  rows.push_back(IntegerRow("webhooks", "max_attempts", &S::webhooks, &WebhookSettings::max_attempts, 1, 100,
                            "Attempts before a delivery fails (a dead letter of the basalt.webhooks queue)."));
  rows.push_back(IntegerRow("webhooks", "backoff_base_ms", &S::webhooks, &WebhookSettings::backoff_base_ms, 10,
                            3'600'000, "Delay before the first retry; doubled each retry, with jitter."));
  rows.push_back(IntegerRow("webhooks", "backoff_max_ms", &S::webhooks, &WebhookSettings::backoff_max_ms, 10,
                            86'400'000, "Longest delay between retries."));
  rows.push_back(IntegerRow("webhooks", "breaker_threshold", &S::webhooks, &WebhookSettings::breaker_threshold, 1,
                            1000, "Consecutive failures that open a destination's circuit breaker."));
  rows.push_back(IntegerRow("webhooks", "breaker_cooldown_ms", &S::webhooks, &WebhookSettings::breaker_cooldown_ms,
                            10, 86'400'000, "How long an open breaker waits before one half-open probe."));
  return rows;
}

const std::vector<Row>& Rows() {
  static const std::vector<Row> rows = BuildRows();
  return rows;
}

const Row* FindRow(std::string_view section, std::string_view name) {
  for (const auto& row : Rows()) {
    if (row.section == section && row.name == name) return &row;
  }
  return nullptr;
}

bool IsSection(std::string_view section) {
  return std::any_of(Rows().begin(), Rows().end(), [&](const Row& r) { return r.section == section; });
}

constexpr std::string_view kFileSuffix = "_file";

/// What a name in some source refers to: a row, set directly or (for secrets) from a file.
struct Target {
  const Row* row = nullptr;
  bool from_file = false;
};

std::optional<Target> FindTarget(std::string_view section, std::string_view name) {
  if (const Row* row = FindRow(section, name)) return Target{row, false};
  if (name.ends_with(kFileSuffix)) {
    name.remove_suffix(kFileSuffix.size());
    if (const Row* row = FindRow(section, name); row != nullptr && row->secret) return Target{row, true};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Formatting values as TOML.
// ---------------------------------------------------------------------------------------------

std::string QuoteToml(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string FormatValue(const Value& value) {
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&value)) return QuoteToml(*s);
  const auto& list = std::get<std::vector<std::string>>(value);
  std::string out = "[";
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i != 0) out += ", ";
    out += QuoteToml(list[i]);
  }
  out += "]";
  return out;
}

std::string TypeName(const Row& row) {
  switch (row.kind) {
    case Kind::kInteger: return "integer";
    case Kind::kBoolean: return "boolean";
    case Kind::kStringList: return "string list";
    case Kind::kString: break;
  }
  if (row.choices.empty()) return "string";
  std::string out = "one of: ";
  for (std::size_t i = 0; i < row.choices.size(); ++i) {
    if (i != 0) out += ", ";
    out += row.choices[i];
  }
  return out;
}

std::string EnvName(std::string_view section, std::string_view name) {
  std::string out = "BASALT_";
  for (const char c : section) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  out += "__";
  for (const char c : name) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Converting TOML nodes and text to values.
// ---------------------------------------------------------------------------------------------

std::string_view NodeTypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "floating-point";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
  }
  return "unknown";
}

std::expected<Value, std::string> FromToml(Kind kind, const toml::node& node) {
  auto mismatch = [&](std::string_view expected) {
    return std::unexpected("expected " + std::string(expected) + ", got " +
                           std::string(NodeTypeName(node.type())));
  };
  switch (kind) {
    case Kind::kInteger:
      if (const auto* v = node.as_integer()) return Value{v->get()};
      return mismatch("integer");
    case Kind::kBoolean:
      if (const auto* v = node.as_boolean()) return Value{v->get()};
      return mismatch("boolean");
    case Kind::kString:
      if (const auto* v = node.as_string()) return Value{v->get()};
      return mismatch("string");
    case Kind::kStringList: {
      const auto* array = node.as_array();
      if (array == nullptr) return mismatch("string list");
      std::vector<std::string> items;
      for (const auto& element : *array) {
        const auto* s = element.as_string();
        if (s == nullptr) {
          return std::unexpected("expected string list, got array containing " +
                                 std::string(NodeTypeName(element.type())));
        }
        items.push_back(s->get());
      }
      return Value{std::move(items)};
    }
  }
  return std::unexpected("unsupported type");
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

/// Text from the environment or a flag: integers in decimal, booleans true/false/1/0,
/// lists comma-separated (items trimmed, empty items dropped, so "" is the empty list).
std::expected<Value, std::string> FromText(Kind kind, std::string_view text) {
  switch (kind) {
    case Kind::kInteger: {
      const auto trimmed = Trim(text);
      std::int64_t number = 0;
      const auto [end, ec] = std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), number);
      if (trimmed.empty() || ec != std::errc() || end != trimmed.data() + trimmed.size()) {
        return std::unexpected("expected integer, got \"" + std::string(text) + "\"");
      }
      return Value{number};
    }
    case Kind::kBoolean: {
      std::string lower(Trim(text));
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "true" || lower == "1") return Value{true};
      if (lower == "false" || lower == "0") return Value{false};
      return std::unexpected("expected boolean (true, false, 1 or 0), got \"" + std::string(text) + "\"");
    }
    case Kind::kString:
      return Value{std::string(text)};
    case Kind::kStringList: {
      std::vector<std::string> items;
      std::size_t start = 0;
      while (start <= text.size()) {
        auto comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        const auto item = Trim(text.substr(start, comma - start));
        if (!item.empty()) items.emplace_back(item);
        start = comma + 1;
      }
      return Value{std::move(items)};
    }
  }
  return std::unexpected("unsupported type");
}

std::string ErrnoMessage(int error) { return std::generic_category().message(error); }

/// Reads a whole file; the error is a message without the path.
std::expected<std::string, std::string> ReadFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::unexpected(std::string("is a directory"));
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return std::unexpected(ErrnoMessage(errno != 0 ? errno : ENOENT));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return std::unexpected(std::string("read error"));
  return content.str();
}

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

class Loader {
 public:
  /// Applies one layer's value for `target`; problems are recorded, never thrown.
  void Apply(const Target& target, std::expected<Value, std::string> value, const std::string& source,
             std::set<std::string>& direct, std::set<std::string>& via_file) {
    const Row& row = *target.row;
    const std::string key = row.Key();
    if (row.secret) {
      auto& mine = target.from_file ? via_file : direct;
      const auto& other = target.from_file ? direct : via_file;
      mine.insert(key);
      if (other.contains(key)) {
        AddProblem(source, key, "set both directly and through " + row.name + "_file; use one");
        return;
      }
    }
    if (!value) {
      AddProblem(source, key, value.error());
      return;
    }
    if (target.from_file) {
      const auto* path = std::get_if<std::string>(&*value);
      if (path == nullptr) {
        AddProblem(source, key, "expected a file path");
        return;
      }
      auto content = ReadFile(*path);
      if (!content) {
        AddProblem(source, key, "cannot read secret file \"" + *path + "\": " + content.error());
        return;
      }
      // Files written by `echo` or editors end with a newline that is not part of the secret.
      if (content->ends_with('\n')) content->pop_back();
      if (content->ends_with('\r')) content->pop_back();
      value = Value{std::move(*content)};
    }
    if (auto message = Validate(row, *value)) {
      AddProblem(source, key, *message);
      return;
    }
    row.set(settings_, *value);
    origin_[key] = source;
  }

  void LoadFile(const std::filesystem::path& path) {
    const std::string name = path.string();
    auto content = ReadFile(path);
    if (!content) {
      AddProblem(name, "", "cannot read config file: " + content.error());
      return;
    }
    toml::table root;
    try {
      root = toml::parse(*content, name);
    } catch (const toml::parse_error& error) {
      AddProblem(name + ":" + std::to_string(error.source().begin.line), "",
                 std::string(error.description()));
      return;
    }
    std::set<std::string> direct;
    std::set<std::string> via_file;
    for (const auto& [section_key, section_node] : root) {
      const std::string section(section_key.str());
      const std::string section_source = SourceOf(name, section_node);
      if (!IsSection(section)) {
        AddProblem(section_source, section, "unknown section");
        continue;
      }
      const auto* table = section_node.as_table();
      if (table == nullptr) {
        AddProblem(section_source, section, "expected a table ([" + section + "]), got " +
                                                std::string(NodeTypeName(section_node.type())));
        continue;
      }
      for (const auto& [key, node] : *table) {
        const std::string source = SourceOf(name, node);
        const auto target = FindTarget(section, key.str());
        if (!target) {
          AddProblem(source, section + "." + std::string(key.str()), "unknown setting");
          continue;
        }
        Apply(*target, FromToml(target->from_file ? Kind::kString : target->row->kind, node), source,
              direct, via_file);
      }
    }
  }

  void LoadEnv(const std::vector<std::pair<std::string, std::string>>& env) {
    std::set<std::string> direct;
    std::set<std::string> via_file;
    constexpr std::string_view kPrefix = "BASALT_";
    for (const auto& [name, text] : env) {
      if (!std::string_view(name).starts_with(kPrefix)) continue;
      const auto sep = name.find("__", kPrefix.size());
      // BASALT_ variables without "__" are not settings (the CLI may use some, e.g. BASALT_CONFIG).
      if (sep == std::string::npos) continue;
      const std::string source = "env " + name;
      std::optional<Target> target;
      for (const auto& row : Rows()) {
        if (EnvName(row.section, row.name) == name) target = Target{&row, false};
        if (row.secret && EnvName(row.section, row.name + std::string(kFileSuffix)) == name) {
          target = Target{&row, true};
        }
      }
      if (!target) {
        std::string key = name.substr(kPrefix.size(), sep - kPrefix.size()) + "." + name.substr(sep + 2);
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        AddProblem(source, key, "unknown setting");
        continue;
      }
      Apply(*target, FromText(target->from_file ? Kind::kString : target->row->kind, text), source,
            direct, via_file);
    }
  }

  void LoadOverrides(const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::set<std::string> direct;
    std::set<std::string> via_file;
    for (const auto& [key, text] : overrides) {
      const std::string source = "--" + key;
      const auto dot = key.find('.');
      std::optional<Target> target;
      if (dot != std::string::npos) target = FindTarget(key.substr(0, dot), key.substr(dot + 1));
      if (!target) {
        AddProblem(source, key, "unknown setting");
        continue;
      }
      Apply(*target, FromText(target->from_file ? Kind::kString : target->row->kind, text), source,
            direct, via_file);
    }
  }

  /// Checks that involve more than one setting or the file system, after all layers merged.
  void ValidateMerged() {
    const auto& server = settings_.server;
    // Only a request-line limit the user set is an error; the default simply yields to a smaller
    // header limit (the request line is part of the header block).
    if (server.max_request_line_bytes > server.max_header_bytes &&
        Origin("server.max_request_line_bytes") != "default") {
      AddProblem(Origin("server.max_request_line_bytes"), "server.max_request_line_bytes",
                 "must be between 256 and server.max_header_bytes (" +
                     std::to_string(server.max_header_bytes) + ")");
    }
    const auto& tls = settings_.tls;
    if (tls.cert_file.empty() != tls.key_file.empty()) {
      const std::string missing = tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file";
      AddProblem(Origin(missing), missing, "tls.cert_file and tls.key_file must be set together");
    }
    for (const auto& [key, path] : {std::pair<std::string, std::string>{"tls.cert_file", tls.cert_file},
                                    {"tls.key_file", tls.key_file}}) {
      if (path.empty()) continue;
      if (auto content = ReadFile(path); !content) {
        AddProblem(Origin(key), key, "cannot read \"" + path + "\": " + content.error());
      }
    }
    if (const auto& secrets = settings_.secrets; !secrets.active_key.empty()) {
      auto ring = core::KeyRing::Parse(secrets.keys, secrets.active_key);
      if (!ring && core::KeyRing::Parse(secrets.keys)) AddProblem(Origin("secrets.active_key"), "secrets.active_key", ring.error().message);
    }
    const auto& cors = settings_.cors;
    if (cors.allow_credentials &&
        std::find(cors.allowed_origins.begin(), cors.allowed_origins.end(), "*") !=
            cors.allowed_origins.end()) {
      AddProblem(Origin("cors.allow_credentials"), "cors.allow_credentials",
                 "cannot be true when cors.allowed_origins is \"*\"");
    }
  }

  std::expected<Settings, std::vector<Problem>> Finish() {
    if (!problems_.empty()) return std::unexpected(std::move(problems_));
    return std::move(settings_);
  }

 private:
  static std::optional<std::string> Validate(const Row& row, const Value& value) {
    if (row.kind == Kind::kInteger) {
      const auto number = std::get<std::int64_t>(value);
      if (number < row.min || number > row.max) {
        return "must be between " + std::to_string(row.min) + " and " + std::to_string(row.max);
      }
    }
    if (!row.choices.empty()) {
      const auto& text = std::get<std::string>(value);
      if (std::find(row.choices.begin(), row.choices.end(), text) == row.choices.end()) {
        return "must be " + TypeName(row) + " (got " + QuoteToml(text) + ")";
      }
    }
    if (row.check) return row.check(value);
    return std::nullopt;
  }

  static std::string SourceOf(const std::string& file, const toml::node& node) {
    return file + ":" + std::to_string(node.source().begin.line);
  }

  std::string Origin(const std::string& key) const {
    const auto it = origin_.find(key);
    return it == origin_.end() ? "default" : it->second;
  }

  void AddProblem(std::string source, std::string key, std::string message) {
    problems_.push_back(Problem{std::move(source), std::move(key), std::move(message)});
  }

  Settings settings_;
  std::vector<Problem> problems_;
  std::map<std::string, std::string> origin_;  ///< Key -> source of the value in effect.
};

}  // namespace

std::optional<RateSpec> ParseRate(std::string_view text) {
  text = Trim(text);
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::uint64_t count = 0;
  const auto [count_end, count_ec] = std::from_chars(text.data(), text.data() + slash, count);
  if (count_ec != std::errc() || count_end != text.data() + slash || count < 1 || count > 1'000'000'000) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(slash + 1);
  const auto space = rest.find(' ');
  const std::string_view unit = rest.substr(0, space);
  RateSpec spec;
  spec.count = static_cast<std::uint32_t>(count);
  if (unit == "s") spec.period_s = 1;
  else if (unit == "m") spec.period_s = 60;
  else if (unit == "h") spec.period_s = 3600;
  else return std::nullopt;
  spec.burst = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, 1'000'000));
  if (space != std::string_view::npos) {
    const std::string_view burst = Trim(rest.substr(space + 1));
    std::uint64_t b = 0;
    const auto [end, ec] = std::from_chars(burst.data(), burst.data() + burst.size(), b);
    if (burst.empty() || ec != std::errc() || end != burst.data() + burst.size() || b < 1 || b > 1'000'000) {
      return std::nullopt;
    }
    spec.burst = static_cast<std::uint32_t>(b);
  }
  return spec;
}

std::optional<std::pair<std::string, RateSpec>> ParseRouteRate(std::string_view text) {
  text = Trim(text);
  const auto space = text.find(' ');
  if (space == std::string_view::npos || text.empty() || text.front() != '/') return std::nullopt;
  auto rate = ParseRate(text.substr(space + 1));
  if (!rate) return std::nullopt;
  return std::pair<std::string, RateSpec>{std::string(text.substr(0, space)), *rate};
}

const std::vector<std::string>& BuiltinRouteRates() {
  // Per client address (or identity): steady rates low enough to slow password guessing and
  // account creation, bursts high enough for a person retrying a typo.
  static const std::vector<std::string> rates = {
      "/api/v1/auth/login 30/m 10",    "/api/v1/auth/register 10/m 5", "/api/v1/auth/password 10/m 5",
      "/api/v1/auth/refresh 60/m 20",  "/api/v1/oauth2/token 60/m 20",
  };
  return rates;
}

const std::vector<SettingInfo>& SettingsTable() {
  static const std::vector<SettingInfo> table = [] {
    const Settings defaults;
    std::vector<SettingInfo> out;
    for (const auto& row : Rows()) {
      out.push_back(SettingInfo{row.Key(), TypeName(row), FormatValue(row.get(defaults)),
                                row.description, row.secret});
    }
    return out;
  }();
  return table;
}

std::expected<Settings, std::vector<Problem>> Load(const Sources& sources) {
  Loader loader;
  if (sources.file) loader.LoadFile(*sources.file);
  loader.LoadEnv(sources.env);
  loader.LoadOverrides(sources.overrides);
  loader.ValidateMerged();
  return loader.Finish();
}

std::vector<std::pair<std::string, std::string>> ProcessEnvironment() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (!text.starts_with("BASALT_")) continue;
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace_back(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

std::string Show(const Settings& settings) {
  std::string out;
  std::string section;
  for (const auto& row : Rows()) {
    if (row.section != section) {
      if (!section.empty()) out += "\n";
      section = row.section;
      out += "[" + section + "]\n";
    }
    Value value = row.get(settings);
    if (row.secret && !std::get<std::string>(value).empty()) value = std::string("<redacted>");
    out += row.name + " = " + FormatValue(value) + "\n";
  }
  return out;
}

std::string FormatProblems(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& problem : problems) {
    out += "  " + problem.source + ": ";
    if (!problem.key.empty()) out += problem.key + ": ";
    out += problem.message + "\n";
  }
  return out;
}

}  // namespace basalt::config
