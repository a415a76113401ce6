// TLS end to end: a self-signed certificate made by the openssl CLI, the real binary serving it,
// and curl (a client nobody here wrote) verifying the chain and reading the response headers.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "harness.hpp"

namespace basalt::testing {
namespace {

using namespace std::chrono_literals;

// Runs a command to completion; returns its exit code (nullopt on timeout) and output.
RunResult RunTool(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = Spawn(argv, {}, log);
  RunResult result;
  if (pid <= 0) return result;  // could not start: exit_code stays empty
  result.exit_code = WaitPid(pid, 30s);
  result.output = ReadFile(log);
  return result;
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    SetBinaryPath(BASALT_BINARY);
    cert_ = dir_.path() + "/cert.pem";
    key_ = dir_.path() + "/key.pem";
    const auto made = RunTool({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-keyout", key_, "-out", cert_, "-days", "1", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"},
                          dir_.path() + "/openssl.log");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }

  TempDir dir_;
  std::string cert_;
  std::string key_;
};

TEST_F(Tls, ServesHttpsWithHstsAndRefusesPlainHttp) {
  BasaltProcess p({}, {{"BASALT_TLS__CERT_FILE", cert_}, {"BASALT_TLS__KEY_FILE", key_}});
  ASSERT_TRUE(p.started()) << p.start_error();
  const std::string url = "https://127.0.0.1:" + std::to_string(p.port()) + "/healthz";
  const auto got = RunTool({"curl", "-sS", "-i", "--cacert", cert_, "--max-time", "10", url}, dir_.path() + "/curl.log");
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_NE(got.output.find("HTTP/1.1 200"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find(R"({"status":"ok"})"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find("Strict-Transport-Security: max-age=31536000"), std::string::npos) << got.output;

  // A client that does not trust the certificate is refused by its own verification.
  const auto untrusted = RunTool({"curl", "-sS", "--max-time", "10", url}, dir_.path() + "/curl2.log");
  EXPECT_NE(untrusted.exit_code, 0) << untrusted.output;

  // Plain HTTP to the TLS port is not answered as HTTP; the server keeps serving TLS afterwards.
  RawConnection plain(p.port(), 3s);
  plain.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto reply = plain.ReadResponse();
  EXPECT_FALSE(reply.ok && reply.status == 200);
  const auto again = RunTool({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cert_, "--max-time",
                          "10", url},
                         dir_.path() + "/curl3.log");
  EXPECT_EQ(again.output, "200");
}

TEST_F(Tls, MissingKeyFileStopsStartup) {
  const auto result = RunBasalt({"serve", "--port", "0", "--data-dir", "{tmp}/data"},
                                {{"BASALT_TLS__CERT_FILE", cert_}, {"BASALT_TLS__KEY_FILE", cert_ + ".missing"}});
  ASSERT_TRUE(result.exit_code.has_value());
  EXPECT_EQ(*result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("tls.key_file"), std::string::npos) << result.output;
}

TEST_F(Tls, KeyThatIsNotAKeyFailsToStart) {
  const std::string bogus = dir_.path() + "/bogus.pem";
  {
    std::FILE* f = std::fopen(bogus.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("not a key\n", f);
    std::fclose(f);
  }
  const auto result = RunBasalt({"serve", "--port", "0", "--data-dir", "{tmp}/data"},
                                {{"BASALT_TLS__CERT_FILE", cert_}, {"BASALT_TLS__KEY_FILE", bogus}});
  ASSERT_TRUE(result.exit_code.has_value());
  EXPECT_EQ(*result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("TLS"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace basalt::testing
