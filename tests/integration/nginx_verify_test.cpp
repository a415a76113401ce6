// deploy/nginx/auth-request.conf with a real nginx (Debian nginx-light) in front of a small upstream
// and the real basalt binary: a request with a valid API key passes to the upstream with the
// identity forwarded; one without credentials, with a bad or revoked key is 401; one with a key that
// lacks the required scope is 403. nginx runs as a non-daemon child on free loopback ports with a
// temp prefix and a configuration generated from that file (only the addresses are replaced).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;
constexpr const char* kToken = kTestAdminToken;
std::string g_user;  // the key owner, registered by the test
constexpr const char* kNginx = "/usr/sbin/nginx";

/// A loopback port that was free a moment ago (bind to 0, read it, close).
std::uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool Replace(std::string& text, const std::string& from, const std::string& to) {
  const std::size_t pos = text.find(from);
  if (pos == std::string::npos) return false;
  text.replace(pos, from.size(), to);
  return true;
}

std::string CreateKey(std::uint16_t port, const std::string& scopes, std::string* id = nullptr) {
  auto r = Request(port, "POST", "/api/v1/api-keys",
                   {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}},
                   R"({"name": "gw", "user_id": ")" + g_user + R"(", "scopes": )" + scopes + "}");
  EXPECT_EQ(r.status, 201) << r.body;
  auto v = json::parse(r.body);
  if (id) *id = std::string(v.as_object().at("id").as_string());
  return std::string(v.as_object().at("key").as_string());
}

TEST(NginxVerify, ValidApiKeyPassesMissingOneIs401) {
  if (::access(kNginx, X_OK) != 0) GTEST_SKIP() << "nginx is not installed (scripts/install-deps.sh installs it)";
  BasaltProcess basalt({}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}});
  ASSERT_TRUE(basalt.started()) << basalt.start_error();

  std::string conf = ReadFile(std::string(BASALT_SOURCE_DIR) + "/deploy/nginx/auth-request.conf");
  ASSERT_FALSE(conf.empty());
  const std::uint16_t gateway = FreePort(), upstream = FreePort();
  ASSERT_NE(gateway, 0);
  ASSERT_NE(upstream, 0);
  ASSERT_TRUE(Replace(conf, "127.0.0.1:8090", "127.0.0.1:" + std::to_string(basalt.port())));
  ASSERT_TRUE(Replace(conf, "127.0.0.1:3000", "127.0.0.1:" + std::to_string(upstream)));
  ASSERT_TRUE(Replace(conf, "listen 127.0.0.1:8080", "listen 127.0.0.1:" + std::to_string(gateway)));

  TempDir prefix;
  const std::string p = prefix.path();
  for (const char* d : {"body", "proxy", "fastcgi", "uwsgi", "scgi"}) std::filesystem::create_directories(p + "/" + d);
  std::ofstream(p + "/nginx.conf")
      << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << p << "/nginx.pid;\nerror_log " << p
      << "/error.log warn;\nevents { worker_connections 64; }\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << p << "/body;\n  proxy_temp_path " << p << "/proxy;\n"
      << "  fastcgi_temp_path " << p << "/fastcgi;\n  uwsgi_temp_path " << p << "/uwsgi;\n"
      << "  scgi_temp_path " << p << "/scgi;\n"
      << conf << "\n"
      // The small upstream: echoes the identity the gateway forwarded, and whether a credential leaked.
      << "  server {\n    listen 127.0.0.1:" << upstream << ";\n    location / {\n"
      << "      return 200 \"upstream kind=$http_x_basalt_principal_kind user=$http_x_basalt_user_id "
         "leak=$http_x_api_key$http_authorization\";\n    }\n  }\n}\n";

  const pid_t nginx = Spawn({kNginx, "-p", p, "-c", p + "/nginx.conf"}, {}, p + "/nginx.out");
  ASSERT_GT(nginx, 0);
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      if (!WaitPid(pid, 10s)) {
        ::kill(pid, SIGKILL);
        WaitPid(pid, 5s);
      }
    }
  } stop{nginx};
  ASSERT_TRUE(WaitUntil([&] { return Get(gateway, "/").ok; }, 10s))
      << ReadFile(p + "/nginx.out") << ReadFile(p + "/error.log");

  auto registered = Request(basalt.port(), "POST", "/api/v1/auth/register", {{"Content-Type", "application/json"}},
                            R"({"email": "gateway@example.com", "password": "correct horse battery staple"})");
  ASSERT_EQ(registered.status, 201) << registered.body;
  g_user = ParseJson(registered.body).as_object().at("id").as_string().c_str();
  const std::string key = CreateKey(basalt.port(), R"(["records:read"])");
  // Valid key, in either header: passes, identity forwarded, credential not.
  for (const auto& header : {std::pair<std::string, std::string>{"X-API-Key", key}, {"Authorization", "Bearer " + key}}) {
    auto r = Get(gateway, "/some/app/path", {header});
    EXPECT_EQ(r.status, 200) << r.body << ReadFile(p + "/error.log");
    EXPECT_EQ(r.body, "upstream kind=api_key user=" + g_user + " leak=");
  }
  // No credentials: 401 with a challenge.
  auto none = Get(gateway, "/some/app/path");
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(none.Header("WWW-Authenticate").value_or("").starts_with("Bearer"));
  EXPECT_EQ(none.body.find("upstream"), std::string::npos);
  // A wrong key: 401. A key without the required scope (records:read): 403.
  EXPECT_EQ(Get(gateway, "/", {{"X-API-Key", key + "x"}}).status, 401);
  EXPECT_EQ(Get(gateway, "/", {{"X-API-Key", CreateKey(basalt.port(), R"(["records:write"])")}}).status, 403);
  // Revoked: 401 at once (revoked on the instance nginx asks).
  std::string id;
  const std::string doomed = CreateKey(basalt.port(), R"(["records:read"])", &id);
  EXPECT_EQ(Get(gateway, "/", {{"X-API-Key", doomed}}).status, 200);
  ASSERT_EQ(Request(basalt.port(), "DELETE", "/api/v1/api-keys/" + id, {{"Authorization", std::string("Bearer ") + kToken}}).status, 204);
  EXPECT_EQ(Get(gateway, "/", {{"X-API-Key", doomed}}).status, 401);
}

}  // namespace
}  // namespace basalt::testing
