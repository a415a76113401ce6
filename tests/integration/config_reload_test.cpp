// SIGHUP reloads the configuration of the running binary: rate limits and the log level change at
// once, a change that needs a restart is reported as such, an invalid file changes nothing, and
// every attempt is in the audit log (config.reloaded, success or failure).

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <string>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;

constexpr const char* kToken = "reload-test-admin-token-0123456789abcdef";
const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", std::string("Bearer ") + kToken}};

void WriteConfig(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The config.reloaded entries, oldest first.
json::array Reloads(std::uint16_t port) {
  auto r = Get(port, "/api/v1/audit-log?action=config.reloaded", kAdmin);
  if (r.status != 200) return {};
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("items")) return {};
  json::array items = v.as_object().at("items").as_array();
  std::reverse(items.begin(), items.end());  // the API lists newest first
  return items;
}

std::vector<std::string> Changes(const json::value& entry) {
  std::vector<std::string> out;
  for (const auto& c : entry.at("changes").as_array()) out.emplace_back(c.as_string());
  return out;
}

TEST(ConfigReload, SighupAppliesWhatItCanRefusesABadFileAndAuditsEveryAttempt) {
  TempDir config_dir;
  const std::string path = config_dir.path() + "/basalt.toml";
  // Rates go through rate_limit.routes: the harness sets BASALT_RATE_LIMIT__DEFAULT, which
  // (environment over file) would hide a default written in the file.
  WriteConfig(path, "[log]\nlevel = \"info\"\n[rate_limit]\nroutes = [\"/api/v1/openapi.json 1000/s 1000\"]\n");
  BasaltProcess server(ProcessOptions{{"--config", path}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const auto port = server.port();

  auto before = Get(port, "/api/v1/openapi.json");
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.Header("RateLimit-Limit").value_or(""), "1000");

  // A tighter rate, a quieter log, and a setting a running server cannot change.
  WriteConfig(path,
              "[log]\nlevel = \"warn\"\n[rate_limit]\nroutes = [\"/api/v1/openapi.json 1/m 2\"]\n[server]\n"
              "max_connections = 1000\n");
  server.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return Reloads(port).size() == 1; }, 10s)) << server.LogText();
  auto first = Reloads(port)[0];
  EXPECT_EQ(first.at("outcome").as_string(), "success");
  EXPECT_EQ(first.at("actor_kind").as_string(), "system");
  EXPECT_EQ(Changes(first), (std::vector<std::string>{"log.level", "rate_limit.routes",
                                                      "restart_required:server.max_connections"}));
  EXPECT_TRUE(server.WaitForLog("restart_required")) << server.LogText();

  // The new default is in force for anonymous callers: a bucket of 2, then 429.
  auto a = Get(port, "/api/v1/openapi.json");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("RateLimit-Limit").value_or(""), "2");
  EXPECT_EQ(Get(port, "/api/v1/openapi.json").status, 200);
  EXPECT_EQ(Get(port, "/api/v1/openapi.json").status, 429);

  // An invalid file: refused as a whole, the running configuration stays, the server runs on.
  WriteConfig(path, "[log]\nlevel = \"loud\"\n[rate_limit]\nroutes = [\"/api/v1/openapi.json 1000/s 1000\"]\nbogus = 1\n");
  server.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return Reloads(port).size() == 2; }, 10s)) << server.LogText();
  auto second = Reloads(port)[1];
  EXPECT_EQ(second.at("outcome").as_string(), "failure");
  EXPECT_TRUE(Changes(second).empty());
  EXPECT_TRUE(server.WaitForLog("configuration reload refused")) << server.LogText();
  auto still = Get(port, "/api/v1/openapi.json");
  EXPECT_EQ(still.status, 429);
  EXPECT_EQ(still.Header("RateLimit-Limit").value_or(""), "2");
  EXPECT_TRUE(server.Running());

  // Back to a valid file: the restart-only setting is reported again (it never took effect),
  // the rate is loosened at once.
  WriteConfig(path, "[log]\nlevel = \"info\"\n[rate_limit]\nroutes = [\"/api/v1/openapi.json 1000/s 1000\"]\n"
              "[server]\nmax_connections = 1000\n");
  server.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return Reloads(port).size() == 3; }, 10s)) << server.LogText();
  EXPECT_EQ(Changes(Reloads(port)[2]), (std::vector<std::string>{"log.level", "rate_limit.routes",
                                                                 "restart_required:server.max_connections"}));
  // The key's debt under the old rate (a minute) does not carry over: within one new interval
  // (1 ms) requests pass again.
  HttpResponse after;
  EXPECT_TRUE(WaitUntil([&] { return (after = Get(port, "/api/v1/openapi.json")).status == 200; }, 10s))
      << after.status << " " << after.body.substr(0, 300);
  EXPECT_EQ(after.Header("RateLimit-Limit").value_or(""), "1000");

  // SIGTERM still shuts down cleanly after reloads.
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitExit(20s), 0);
}

}  // namespace
}  // namespace basalt::testing
