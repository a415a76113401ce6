// Crash durability: clients write records while the server is killed with SIGKILL; after a
// restart on the same data, every write the server acknowledged (201) is there. Runs on the
// embedded SQLite file and, when BASALT_TEST_POSTGRES_URL is set, on PostgreSQL.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "harness.hpp"

namespace basalt::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kAdminToken[] = "durability-test-admin-token-0123456789";

class Durability : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SetBinaryPath(BASALT_BINARY);
    env_ = {{"BASALT_AUTH__ADMIN_TOKEN", kAdminToken}, {"BASALT_LOG__ACCESS", "false"}};
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    // PostgreSQL keeps tables between tests: a fresh collection name per run.
    collection_ = "notes_" + std::to_string(std::random_device{}() % 1000000000);
  }

  std::string RecordsPath() const { return "/api/v1/collections/" + collection_ + "/records"; }

  TempDir data_;
  Env env_;
  std::string collection_;
};

TEST_P(Durability, AcknowledgedWritesSurviveKill9) {
  std::vector<std::string> acked;
  {
    BasaltProcess first(ProcessOptions{.env = env_, .data_dir = data_.path()});
    ASSERT_TRUE(first.started()) << first.start_error();
    const std::string spec = R"({"name":")" + collection_ +
                             R"(","fields":[{"name":"n","type":"integer","required":true},)"
                             R"({"name":"writer","type":"text"}],)"
                             R"("rules":{"list":"","view":"","create":"","update":"","delete":""}})";
    const auto created = Request(first.port(), "POST", "/api/v1/collections",
                                 {{"Authorization", std::string("Bearer ") + kAdminToken},
                                  {"Content-Type", "application/json"}},
                                 spec);
    ASSERT_EQ(created.status, 201) << created.body;

    std::mutex mutex;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        RawConnection c(first.port(), 5s);
        for (int i = 0; !stop.load(); ++i) {
          const std::string body = R"({"n":)" + std::to_string(i) + R"(,"writer":"w)" + std::to_string(w) + R"("})";
          const std::string request = "POST " + RecordsPath() +
                                      " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body;
          if (!c.Send(request)) return;
          const auto r = c.ReadResponse();
          if (!r.ok) return;  // the server died under us: this write was never acknowledged
          if (r.status != 201) {
            ADD_FAILURE() << "create answered " << r.status << ": " << r.body;
            return;
          }
          boost::system::error_code ec;
          const auto doc = boost::json::parse(r.body, ec);
          if (ec || !doc.is_object() || !doc.as_object().contains("id")) {
            ADD_FAILURE() << "201 without an id: " << r.body;
            return;
          }
          std::lock_guard lock(mutex);
          acked.emplace_back(doc.at("id").as_string());
        }
      });
    }
    const bool enough = WaitUntil(
        [&] {
          std::lock_guard lock(mutex);
          return acked.size() >= 300;
        },
        60s);
    first.Signal(SIGKILL);  // no shutdown, no flush: the process just stops
    stop = true;
    for (auto& t : writers) t.join();
    ASSERT_TRUE(enough) << "writers did not get 300 acknowledgements";
    ASSERT_TRUE(first.WaitExit(10s).has_value());
  }

  BasaltProcess second(ProcessOptions{.env = env_, .data_dir = data_.path()});
  ASSERT_TRUE(second.started()) << second.start_error();
  std::size_t missing = 0;
  RawConnection c(second.port(), 5s);
  for (const auto& id : acked) {
    ASSERT_TRUE(c.Send("GET " + RecordsPath() + "/" + id + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto r = c.ReadResponse();
    ASSERT_TRUE(r.ok) << r.error;
    if (r.status != 200) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged records";
}

INSTANTIATE_TEST_SUITE_P(Backends, Durability, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace basalt::testing
