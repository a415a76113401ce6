#include "config/settings.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace basalt::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

namespace fs = std::filesystem;

/// A fresh directory per test, under the GoogleTest temp dir.
fs::path TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  const fs::path dir = fs::path(::testing::TempDir()) / "basalt_config" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

fs::path WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  return path;
}

/// Loads settings and fails the test (printing every problem) when there are problems.
Settings LoadOk(const Sources& sources) {
  auto result = Load(sources);
  EXPECT_TRUE(result.has_value()) << (result ? "" : FormatProblems(result.error()));
  return result ? *result : Settings{};
}

/// Loads settings that must have problems, and returns them.
std::vector<Problem> LoadProblems(const Sources& sources) {
  auto result = Load(sources);
  EXPECT_FALSE(result.has_value()) << "expected problems, got none";
  return result ? std::vector<Problem>{} : result.error();
}

auto IsProblem(const std::string& source, const std::string& key, const std::string& message_part) {
  return AllOf(Field(&Problem::source, source), Field(&Problem::key, key),
               Field(&Problem::message, HasSubstr(message_part)));
}

// --- Table and defaults -----------------------------------------------------------------------

TEST(SettingsTable, ListsEveryKeyOnceInOrder) {
  const std::vector<std::string> expected = {
      "server.host", "server.port", "server.threads", "server.max_connections",
      "server.max_header_bytes", "server.max_request_line_bytes", "server.max_body_bytes",
      "server.max_json_depth", "server.header_timeout_ms", "server.body_timeout_ms",
      "server.idle_timeout_ms", "server.shutdown_timeout_ms", "server.drain_delay_ms", "server.role", "tls.cert_file",
      "tls.key_file",
      "cors.allowed_origins", "cors.allowed_methods", "cors.allowed_headers", "cors.exposed_headers",
      "cors.allow_credentials", "cors.max_age_s", "security.referrer_policy",
      "security.hsts_max_age_s", "log.level", "log.format", "log.access", "metrics.enabled",
      "metrics.token", "storage.data_dir", "database.url", "database.pool_size", "queue.purge_interval_ms",
      "auth.admin_token",
      "auth.registration", "auth.password_min_length", "auth.argon2_memory_kib", "auth.argon2_iterations",
      "auth.hash_threads", "auth.access_token_ttl_s", "auth.refresh_token_ttl_s", "auth.clock_skew_s", "auth.issuer",
      "auth.audience", "auth.key_rotation_s", "auth.lockout_threshold", "auth.ip_lockout_threshold",
      "auth.lockout_base_s", "auth.lockout_max_s", "auth.invite_ttl_s", "auth.user_api_keys", "auth.service_token_ttl_s",
      "rate_limit.enabled", "rate_limit.default", "rate_limit.routes", "rate_limit.max_keys",
      "secrets.keys", "secrets.active_key",

      "events.retention_s", "events.poll_ms", "realtime.max_pending", "realtime.heartbeat_ms",
      "webhooks.allow_private", "webhooks.connect_timeout_ms", "webhooks.timeout_ms", "webhooks.max_attempts",
      "webhooks.backoff_base_ms", "webhooks.backoff_max_ms", "webhooks.breaker_threshold",
      "webhooks.breaker_cooldown_ms"};
  std::vector<std::string> keys;
  for (const auto& info : SettingsTable()) keys.push_back(info.key);
  EXPECT_EQ(keys, expected);
}

TEST(SettingsTable, DefaultsAreFromSettingsStruct) {
  struct Case {
    std::string key;
    std::string type;
    std::string default_value;
  };
  const std::vector<Case> cases = {
      {"server.host", "string", R"("127.0.0.1")"},
      {"server.port", "integer", "8090"},
      {"log.format", "one of: json, text", R"("json")"},
      {"server.max_body_bytes", "integer", "1048576"},
      {"cors.allowed_origins", "string list", "[]"},
      {"cors.allowed_methods", "string list", R"(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])"},
      {"cors.allow_credentials", "boolean", "false"},
      {"log.format", "one of: json, text", R"("json")"},
      {"log.access", "boolean", "true"},
      {"metrics.token", "string", R"("")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    const auto& table = SettingsTable();
    const auto it = std::find_if(table.begin(), table.end(),
                                 [&](const SettingInfo& info) { return info.key == c.key; });
    ASSERT_NE(it, table.end());
    EXPECT_EQ(it->type, c.type);
    EXPECT_EQ(it->default_value, c.default_value);
    EXPECT_FALSE(it->description.empty());
  }
}

TEST(SettingsTable, OnlyTheTokenIsSecret) {
  std::vector<std::string> secrets;
  for (const auto& info : SettingsTable()) {
    if (info.secret) secrets.push_back(info.key);
  }
  EXPECT_THAT(secrets, UnorderedElementsAre("metrics.token", "database.url", "auth.admin_token", "secrets.keys"));
}

TEST(Load, NoSourcesGivesDefaults) {
  const Settings settings = LoadOk({});
  EXPECT_EQ(Show(settings), Show(Settings{}));
  EXPECT_EQ(settings.server.host, "127.0.0.1");
  EXPECT_EQ(settings.server.port, 8090);
  EXPECT_EQ(settings.log.format, LogFormat::kJson);
  EXPECT_FALSE(settings.TlsEnabled());
}

// --- Layering ---------------------------------------------------------------------------------

TEST(Load, FileOverridesDefaults) {
  const auto dir = TestDir();
  const auto file = WriteFile(dir / "basalt.toml", R"(
[server]
host = "0.0.0.0"
port = 9000
max_body_bytes = 17179869184

[cors]
allowed_origins = ["https://a.example", "http://localhost:3000"]
allow_credentials = true

[log]
format = "text"
access = false
level = "debug"
)");
  const Settings settings = LoadOk({.file = file});
  EXPECT_EQ(settings.server.host, "0.0.0.0");
  EXPECT_EQ(settings.server.port, 9000);
  EXPECT_EQ(settings.server.max_body_bytes, std::uint64_t{1} << 34);
  EXPECT_THAT(settings.cors.allowed_origins,
              ::testing::ElementsAre("https://a.example", "http://localhost:3000"));
  EXPECT_TRUE(settings.cors.allow_credentials);
  EXPECT_EQ(settings.log.format, LogFormat::kText);
  EXPECT_FALSE(settings.log.access);
  EXPECT_EQ(settings.log.level, "debug");
  // Untouched settings keep their defaults.
  EXPECT_EQ(settings.server.max_connections, ServerSettings{}.max_connections);
}

TEST(Load, LaterSourcesOverrideEarlierOnes) {
  struct Case {
    std::string name;
    bool file;
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::pair<std::string, std::string>> overrides;
    std::uint16_t port;
  };
  const std::vector<Case> cases = {
      {"file only", true, {}, {}, 7000},
      {"env over file", true, {{"BASALT_SERVER__PORT", "7100"}}, {}, 7100},
      {"flag over env", true, {{"BASALT_SERVER__PORT", "7100"}}, {{"server.port", "7200"}}, 7200},
      {"flag over file", true, {}, {{"server.port", "7200"}}, 7200},
      {"env without file", false, {{"BASALT_SERVER__PORT", "7100"}}, {}, 7100},
      {"last flag wins", false, {}, {{"server.port", "1"}, {"server.port", "2"}}, 2},
  };
  const auto file = WriteFile(TestDir() / "basalt.toml", "[server]\nport = 7000\n");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Sources sources{.env = c.env, .overrides = c.overrides};
    if (c.file) sources.file = file;
    EXPECT_EQ(LoadOk(sources).server.port, c.port);
  }
}

TEST(Load, EnvParsesEachType) {
  const Settings settings = LoadOk({.env = {
                                        {"BASALT_SERVER__THREADS", "4"},
                                        {"BASALT_LOG__FORMAT", "text"},
                                        {"BASALT_LOG__ACCESS", "0"},
                                        {"BASALT_METRICS__ENABLED", "false"},
                                        {"BASALT_CORS__ALLOW_CREDENTIALS", "1"},
                                        {"BASALT_CORS__ALLOWED_ORIGINS", "https://a.com, https://b.com"},
                                        {"BASALT_CORS__EXPOSED_HEADERS", ""},
                                        {"BASALT_STORAGE__DATA_DIR", "/var/lib/basalt"},
                                        {"PATH", "/usr/bin"},          // Not ours: ignored.
                                        {"BASALT_CONFIG", "x.toml"},   // No "__": not a setting.
                                    }});
  EXPECT_EQ(settings.server.threads, 4u);
  EXPECT_EQ(settings.log.format, LogFormat::kText);
  EXPECT_FALSE(settings.log.access);
  EXPECT_FALSE(settings.metrics.enabled);
  EXPECT_TRUE(settings.cors.allow_credentials);
  EXPECT_THAT(settings.cors.allowed_origins, ::testing::ElementsAre("https://a.com", "https://b.com"));
  EXPECT_THAT(settings.cors.exposed_headers, IsEmpty());
  EXPECT_EQ(settings.storage.data_dir, "/var/lib/basalt");
}

TEST(Load, BooleanText) {
  struct Case {
    std::string text;
    std::optional<bool> value;  // nullopt: a problem.
  };
  const std::vector<Case> cases = {{"true", true}, {"TRUE", true}, {"1", true},     {"false", false},
                                   {"0", false},   {"yes", {}},    {"", {}},        {"2", {}}};
  for (const auto& c : cases) {
    SCOPED_TRACE("\"" + c.text + "\"");
    auto result = Load({.overrides = {{"log.access", c.text}}});
    if (c.value) {
      ASSERT_TRUE(result.has_value()) << FormatProblems(result.error());
      EXPECT_EQ(result->log.access, *c.value);
    } else {
      ASSERT_FALSE(result.has_value());
      EXPECT_THAT(result.error(),
                  ElementsAre(IsProblem("--log.access", "log.access", "expected boolean")));
    }
  }
}

// --- Problems ---------------------------------------------------------------------------------

TEST(Load, EveryMistakeInAFileIsReported) {
  const auto file = WriteFile(TestDir() / "basalt.toml",
                              "[server]\n"
                              "port = 70000\n"     // line 2: out of range
                              "threds = 4\n"       // line 3: unknown
                              "[log]\n"
                              "format = \"xml\"\n");  // line 5: bad enum
  const auto problems = LoadProblems({.file = file});
  const std::string name = file.string();
  EXPECT_THAT(problems, UnorderedElementsAre(
                            IsProblem(name + ":2", "server.port", "must be between 0 and 65535"),
                            IsProblem(name + ":3", "server.threds", "unknown setting"),
                            IsProblem(name + ":5", "log.format", "must be one of: json, text")));
}

TEST(Load, ProblemsFromAllSourcesAreReportedTogether) {
  const auto file = WriteFile(TestDir() / "basalt.toml", "[server]\nport = \"x\"\n");
  const auto problems = LoadProblems({.file = file,
                                      .env = {{"BASALT_LOG__LEVEL", "loud"}},
                                      .overrides = {{"server.threads", "many"}}});
  EXPECT_THAT(problems,
              UnorderedElementsAre(
                  IsProblem(file.string() + ":2", "server.port", "expected integer, got string"),
                  IsProblem("env BASALT_LOG__LEVEL", "log.level", "must be one of: trace"),
                  IsProblem("--server.threads", "server.threads", "expected integer, got \"many\"")));
}

TEST(Load, UnknownSettings) {
  const auto file = WriteFile(TestDir() / "basalt.toml",
                              "[nope]\nx = 1\n[server]\nport = 1\n[server.extra]\ny = 2\n");
  const auto problems = LoadProblems({.file = file,
                                      .env = {{"BASALT_SERVER__PROT", "1"}, {"BASALT_NOPE__X", "1"}},
                                      .overrides = {{"server.prot", "1"}, {"port", "1"}}});
  const std::string name = file.string();
  EXPECT_THAT(problems, UnorderedElementsAre(
                            IsProblem(name + ":1", "nope", "unknown section"),
                            IsProblem(name + ":5", "server.extra", "unknown setting"),
                            IsProblem("env BASALT_SERVER__PROT", "server.prot", "unknown setting"),
                            IsProblem("env BASALT_NOPE__X", "nope.x", "unknown setting"),
                            IsProblem("--server.prot", "server.prot", "unknown setting"),
                            IsProblem("--port", "port", "unknown setting")));
}

TEST(Load, WrongTomlTypes) {
  struct Case {
    std::string toml;
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[server]\nport = \"9000\"", "server.port", "expected integer, got string"},
      {"[server]\nport = 90.5", "server.port", "expected integer, got floating-point"},
      {"[server]\nhost = 5", "server.host", "expected string, got integer"},
      {"[log]\naccess = 1", "log.access", "expected boolean, got integer"},
      {"[cors]\nallowed_origins = \"https://a.com\"", "cors.allowed_origins",
       "expected string list, got string"},
      {"[cors]\nallowed_methods = [\"GET\", 1]", "cors.allowed_methods",
       "expected string list, got array containing integer"},
      {"[metrics]\ntoken_file = 3", "metrics.token", "expected string, got integer"},
      {"server = 1", "server", "expected a table ([server]), got integer"},
  };
  const auto dir = TestDir();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.toml);
    const auto file = WriteFile(dir / "basalt.toml", c.toml + "\n");
    const auto problems = LoadProblems({.file = file});
    ASSERT_THAT(problems, SizeIs(1)) << FormatProblems(problems);
    EXPECT_EQ(problems[0].key, c.key);
    EXPECT_EQ(problems[0].message, c.message);
  }
}

TEST(Load, OutOfRangeAndBadValues) {
  struct Case {
    std::string key;
    std::string value;
    std::string message;  // Empty: accepted.
  };
  const std::vector<Case> cases = {
      {"server.port", "65535", ""},
      {"server.port", "65536", "must be between 0 and 65535"},
      {"server.port", "-1", "must be between 0 and 65535"},
      {"server.threads", "1025", "must be between 0 and 1024"},
      {"server.max_connections", "0", "must be between 1 and 1000000"},
      {"server.max_header_bytes", "1023", "must be between 1024 and 1048576"},
      {"server.max_request_line_bytes", "255", "must be between 256 and"},
      {"server.max_body_bytes", "17179869185", "must be between 1 and 17179869184"},
      {"server.max_json_depth", "1001", "must be between 1 and 1000"},
      {"server.header_timeout_ms", "0", "must be between 1 and 3600000"},
      {"server.body_timeout_ms", "3600001", "must be between 1 and 3600000"},
      {"server.idle_timeout_ms", "0", "must be between 1 and 3600000"},
      {"server.shutdown_timeout_ms", "0", ""},
      {"server.shutdown_timeout_ms", "3600001", "must be between 0 and 3600000"},
      {"server.port", "99999999999999999999", "expected integer"},
      {"server.port", "12abc", "expected integer"},
      {"log.format", "yaml", "must be one of: json, text"},
      {"server.host", "", "must not be empty"},
      {"storage.data_dir", "", "must not be empty"},
      {"log.level", "warn", ""},
      {"log.level", "warning", "must be one of: trace, debug, info, warn, error, off"},
      {"security.referrer_policy", "strict-origin-when-cross-origin", ""},
      {"security.referrer_policy", "never", "must be one of"},
      {"cors.allowed_origins", "*", ""},
      {"cors.allowed_origins", "https://a.com:8443,http://[::1]:3000", ""},
      {"cors.allowed_origins", "https://a.com/", "is not an origin"},
      {"cors.allowed_origins", "https://a.com/path", "is not an origin"},
      {"cors.allowed_origins", "a.com", "is not an origin"},
      {"cors.allowed_origins", "https://a.com:0", "is not an origin"},
      {"cors.allowed_origins", "https://A.com", "must be lower case"},
      {"cors.allowed_origins", "*,https://a.com", "cannot be combined"},
      {"cors.allowed_methods", "GET,BAD METHOD", "is not an HTTP token"},
      {"cors.max_age_s", "86401", "must be between 0 and 86400"},
      {"metrics.token", "short", "must be at least 16 characters"},
      {"metrics.token", "0123456789abcdef", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key + " = " + c.value);
    auto result = Load({.overrides = {{c.key, c.value}}});
    if (c.message.empty()) {
      EXPECT_TRUE(result.has_value()) << FormatProblems(result.error());
    } else {
      ASSERT_FALSE(result.has_value());
      EXPECT_THAT(result.error(), ElementsAre(IsProblem("--" + c.key, c.key, c.message)));
    }
  }
}

TEST(Load, SecretValueIsNeverEchoed) {
  const auto problems = LoadProblems({.overrides = {{"metrics.token", "hunter2"}}});
  EXPECT_THAT(FormatProblems(problems), Not(HasSubstr("hunter2")));
}

TEST(Load, CrossFieldChecksAfterMerging) {
  const auto dir = TestDir();
  const auto cert = WriteFile(dir / "cert.pem", "CERT");
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::pair<std::string, std::string>> overrides;
    std::string source;   // Empty: accepted.
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"request line above header limit", {{"BASALT_SERVER__MAX_HEADER_BYTES", "2048"}},
       {{"server.max_request_line_bytes", "4096"}}, "--server.max_request_line_bytes",
       "server.max_request_line_bytes", "must be between 256 and server.max_header_bytes (2048)"},
      // The default request-line limit yields to a smaller header limit (the server uses the min).
      {"default request line above lowered header limit", {{"BASALT_SERVER__MAX_HEADER_BYTES", "4096"}},
       {}, "", "", ""},
      {"header limit raised by a later source fixes it", {{"BASALT_SERVER__MAX_HEADER_BYTES", "2048"}},
       {{"server.max_header_bytes", "8192"}}, "", "", ""},
      {"cert without key", {{"BASALT_TLS__CERT_FILE", cert.string()}}, {}, "default", "tls.key_file",
       "must be set together"},
      {"unreadable key", {{"BASALT_TLS__CERT_FILE", cert.string()}},
       {{"tls.key_file", (dir / "missing.pem").string()}}, "--tls.key_file", "tls.key_file",
       "No such file or directory"},
      {"tls ok", {{"BASALT_TLS__CERT_FILE", cert.string()}}, {{"tls.key_file", cert.string()}}, "", "",
       ""},
      {"wildcard with credentials", {{"BASALT_CORS__ALLOWED_ORIGINS", "*"}},
       {{"cors.allow_credentials", "true"}}, "--cors.allow_credentials", "cors.allow_credentials",
       "cannot be true when cors.allowed_origins is \"*\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto result = Load({.env = c.env, .overrides = c.overrides});
    if (c.message.empty()) {
      EXPECT_TRUE(result.has_value()) << FormatProblems(result.error());
    } else {
      ASSERT_FALSE(result.has_value());
      EXPECT_THAT(result.error(), ElementsAre(IsProblem(c.source, c.key, c.message)));
    }
  }
}

TEST(Load, MissingExplicitFileIsAProblem) {
  const auto missing = TestDir() / "nope.toml";
  EXPECT_THAT(LoadProblems({.file = missing}),
              ElementsAre(IsProblem(missing.string(), "", "cannot read config file")));
}

TEST(Load, TomlSyntaxErrorHasFileAndLine) {
  const auto file = WriteFile(TestDir() / "basalt.toml", "[server]\nport = 1\nhost = \n");
  const auto problems = LoadProblems({.file = file});
  ASSERT_THAT(problems, SizeIs(1));
  EXPECT_EQ(problems[0].source, file.string() + ":3");
  EXPECT_FALSE(problems[0].message.empty());
}

// --- Secrets ----------------------------------------------------------------------------------

TEST(Load, SecretFromFile) {
  const auto dir = TestDir();
  const auto secret = WriteFile(dir / "token", "0123456789abcdef-file\n");
  const auto other = WriteFile(dir / "token2", "0123456789abcdef-env\r\n");
  const auto two_newlines = WriteFile(dir / "token3", "0123456789abcdef\n\n");
  const auto config = WriteFile(dir / "basalt.toml", "[metrics]\ntoken_file = \"" + secret.string() + "\"\n");

  EXPECT_EQ(LoadOk({.file = config}).metrics.token, "0123456789abcdef-file");
  EXPECT_EQ(LoadOk({.file = config, .env = {{"BASALT_METRICS__TOKEN_FILE", other.string()}}}).metrics.token,
            "0123456789abcdef-env");
  EXPECT_EQ(LoadOk({.overrides = {{"metrics.token_file", two_newlines.string()}}}).metrics.token,
            "0123456789abcdef\n");  // Only one trailing newline is stripped.
  // A direct value in a later source still wins over a file in an earlier one.
  EXPECT_EQ(LoadOk({.file = config, .env = {{"BASALT_METRICS__TOKEN", "0123456789abcdef-direct"}}})
                .metrics.token,
            "0123456789abcdef-direct");
}

TEST(Load, SecretFileProblems) {
  const auto dir = TestDir();
  const auto missing = (dir / "missing").string();
  const auto short_token = WriteFile(dir / "short", "abc\n");
  auto problems = LoadProblems({.env = {{"BASALT_METRICS__TOKEN_FILE", missing}}});
  EXPECT_THAT(problems, ElementsAre(IsProblem("env BASALT_METRICS__TOKEN_FILE", "metrics.token",
                                              "cannot read secret file \"" + missing + "\"")));
  problems = LoadProblems({.env = {{"BASALT_METRICS__TOKEN_FILE", dir.string()}}});
  EXPECT_THAT(problems, ElementsAre(IsProblem("env BASALT_METRICS__TOKEN_FILE", "metrics.token",
                                              "is a directory")));
  problems = LoadProblems({.overrides = {{"metrics.token_file", short_token.string()}}});
  EXPECT_THAT(problems, ElementsAre(IsProblem("--metrics.token_file", "metrics.token",
                                              "at least 16 characters")));
  problems = LoadProblems({.env = {{"BASALT_METRICS__TOKEN", "0123456789abcdef"},
                                   {"BASALT_METRICS__TOKEN_FILE", short_token.string()}}});
  EXPECT_THAT(problems, ElementsAre(IsProblem("env BASALT_METRICS__TOKEN_FILE", "metrics.token",
                                              "set both directly and through token_file")));
  // Only secrets have a *_file form.
  problems = LoadProblems({.overrides = {{"server.host_file", short_token.string()}}});
  EXPECT_THAT(problems, ElementsAre(IsProblem("--server.host_file", "server.host_file", "unknown setting")));
}

// --- Show -------------------------------------------------------------------------------------

TEST(Show, RedactsSecretsOnlyWhenSet) {
  Settings settings;
  EXPECT_THAT(Show(settings), HasSubstr("[metrics]\nenabled = true\ntoken = \"\"\n"));
  settings.metrics.token = "0123456789abcdef-secret";
  const std::string shown = Show(settings);
  EXPECT_THAT(shown, HasSubstr("token = \"<redacted>\"\n"));
  EXPECT_THAT(shown, Not(HasSubstr("0123456789abcdef-secret")));
}

TEST(Show, SectionsInTableOrder) {
  const std::string shown = Show(Settings{});
  std::vector<std::size_t> positions;
  for (const char* section : {"[server]", "[tls]", "[cors]", "[security]", "[log]", "[metrics]", "[storage]"}) {
    positions.push_back(shown.find(section));
    ASSERT_NE(positions.back(), std::string::npos) << section;
  }
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  EXPECT_EQ(shown.rfind("[server]\nhost = \"127.0.0.1\"\nport = 8090\n", 0), 0u) << shown;
}

TEST(Show, RoundTripsThroughLoad) {
  const auto dir = TestDir();
  Settings settings;
  settings.server.host = "::";
  settings.server.port = 0;
  settings.server.max_body_bytes = std::uint64_t{1} << 34;
  settings.cors.allowed_origins = {"https://a.example", "http://localhost:3000"};
  settings.cors.exposed_headers = {};
  settings.log.format = LogFormat::kText;
  settings.log.level = "trace";
  settings.storage.data_dir = "C:\\data \"quoted\"\ttab";  // Exercises string escaping.
  const std::string shown = Show(settings);
  const auto file = WriteFile(dir / "shown.toml", shown);
  const Settings loaded = LoadOk({.file = file});
  EXPECT_EQ(Show(loaded), shown);
  EXPECT_EQ(loaded.storage.data_dir, settings.storage.data_dir);
  EXPECT_EQ(loaded.log.format, LogFormat::kText);
}

// --- Helpers ----------------------------------------------------------------------------------

TEST(FormatProblems, OneIndentedLinePerProblem) {
  EXPECT_EQ(FormatProblems({{"basalt.toml:2", "server.port", "must be between 0 and 65535"},
                            {"basalt.toml", "", "cannot read config file: No such file or directory"}}),
            "  basalt.toml:2: server.port: must be between 0 and 65535\n"
            "  basalt.toml: cannot read config file: No such file or directory\n");
  EXPECT_EQ(FormatProblems({}), "");
}

TEST(ProcessEnvironment, KeepsOnlyBasaltVariables) {
  ASSERT_EQ(::setenv("BASALT_TEST__VALUE", "a=b", 1), 0);
  ASSERT_EQ(::setenv("NOT_BASALT_TEST", "x", 1), 0);
  const auto env = ProcessEnvironment();
  ::unsetenv("BASALT_TEST__VALUE");
  ::unsetenv("NOT_BASALT_TEST");
  EXPECT_THAT(env, ::testing::Contains(std::pair<std::string, std::string>("BASALT_TEST__VALUE", "a=b")));
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("BASALT_", 0), 0u) << name;
}

}  // namespace
}  // namespace basalt::config
