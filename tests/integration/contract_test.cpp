// The OpenAPI contract: starts the real binary and runs tests/contract/check.mjs against it, which
// validates /api/v1/openapi.json with @seriousme/openapi-schema-validator and real responses with
// ajv (JSON Schema 2020-12) + ajv-formats. Skips only when node or tests/contract/node_modules is
// missing (scripts/test.sh runs `npm ci` there first, so under `make test` it always runs).

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

constexpr const char* kToken = "contract-admin-token-0123456789abcdef";

/// The first executable `name` on PATH, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= dirs.size()) {
    std::size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(pos, end - pos) + "/" + name;
    if (end > pos && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  return "";
}

TEST(Contract, RealResponsesMatchTheOpenApiDocument) {
  const std::string dir = BASALT_CONTRACT_DIR;
  const std::string node = FindOnPath("node");
  if (node.empty()) GTEST_SKIP() << "node is not installed (scripts/install-deps.sh installs it)";
  if (!std::filesystem::is_directory(dir + "/node_modules"))
    GTEST_SKIP() << "no " << dir << "/node_modules: run `npm ci` there (scripts/test.sh does)";

  BasaltProcess server({}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}});
  ASSERT_TRUE(server.started()) << server.start_error();

  const std::string log = server.dir() + "/contract.log";
  const pid_t pid = Spawn({node, dir + "/check.mjs"},
                          {{"BASALT_URL", "http://127.0.0.1:" + std::to_string(server.port())}, {"BASALT_TOKEN", kToken}},
                          log);
  ASSERT_GT(pid, 0) << "cannot start " << node;
  const auto code = WaitPid(pid, std::chrono::seconds(90));
  if (!code) {
    ::kill(pid, SIGKILL);
    WaitPid(pid, std::chrono::seconds(5));
  }
  const std::string server_log = server.LogText();
  EXPECT_EQ(code, std::optional<int>(0)) << "check.mjs output:\n"
                                         << ReadFile(log) << "\nserver log (tail):\n"
                                         << server_log.substr(server_log.size() > 4000 ? server_log.size() - 4000 : 0);
}

}  // namespace
}  // namespace basalt::testing
