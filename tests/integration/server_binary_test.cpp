// The real `basalt` binary over raw HTTP/1.1: health endpoints, metrics, problem+json errors and
// limits, request ids, keep-alive and pipelining, security headers, CORS, configuration and CLI,
// connection limits, 10k idle connections, graceful shutdown. Each test starts its own process
// on port 0 in a fresh temp dir.

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

boost::json::value ParseJson(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) return nullptr;
  return v;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// Checks an RFC 9457 problem response: status, content type, every field, code, no-store.
void ExpectProblem(const HttpResponse& r, int status, std::string_view code) {
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_TRUE(r.Header("Content-Type").value_or("").starts_with("application/problem+json"))
      << r.Header("Content-Type").value_or("<none>");
  EXPECT_NE(Lower(r.Header("Cache-Control").value_or("")).find("no-store"), std::string::npos)
      << "Cache-Control: " << r.Header("Cache-Control").value_or("<none>");
  auto v = ParseJson(r.body);
  ASSERT_TRUE(v.is_object()) << "not JSON: " << r.body;
  const auto& o = v.as_object();
  for (const char* field : {"type", "title", "detail", "code", "request_id"}) {
    ASSERT_TRUE(o.contains(field) && o.at(field).is_string()) << "missing string field " << field << " in " << r.body;
  }
  ASSERT_TRUE(o.contains("status") && o.at("status").is_int64()) << r.body;
  EXPECT_EQ(o.at("status").as_int64(), status);
  EXPECT_EQ(o.at("code").as_string(), code) << r.body;
  EXPECT_FALSE(o.at("request_id").as_string().empty());
}

std::string ProblemField(const HttpResponse& r, const char* field) {
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains(field) || !v.as_object().at(field).is_string()) return {};
  return std::string(v.as_object().at(field).as_string());
}

std::set<std::string> AsSet(const std::string& list) {
  auto items = SplitList(list);
  return {items.begin(), items.end()};
}

void ExpectSecurityHeaders(const HttpResponse& r) {
  EXPECT_EQ(r.Header("X-Content-Type-Options").value_or("<none>"), "nosniff") << "status " << r.status;
  EXPECT_EQ(r.Header("Referrer-Policy").value_or("<none>"), "no-referrer") << "status " << r.status;
}

#define START(proc)                                                     \
  ASSERT_TRUE((proc).started()) << (proc).start_error();

// ---------------------------------------------------------------------------------------------
// Health, readiness, metrics.

TEST(ServerBinary, HealthzIsOkJson) {
  BasaltProcess p;
  START(p);
  auto r = Get(p.port(), "/healthz");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.Header("Content-Type").value_or("").starts_with("application/json"));
  EXPECT_EQ(ParseJson(r.body), boost::json::parse(R"({"status":"ok"})")) << r.body;
}

TEST(ServerBinary, HeadHealthzHasContentLengthButNoBody) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(BuildRequest("HEAD", "/healthz")));
  auto r = c.ReadResponse(/*head=*/true);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(r.HasHeader("Content-Length"));
  EXPECT_NE(r.Header("Content-Length"), "0");
  EXPECT_TRUE(r.body.empty());
  // No stray body bytes: the next response on the same connection parses cleanly.
  ASSERT_TRUE(c.Send(BuildRequest("GET", "/healthz")));
  auto r2 = c.ReadResponse();
  ASSERT_TRUE(r2.ok) << r2.error;
  EXPECT_EQ(r2.status, 200);
  EXPECT_EQ(r2.Header("Content-Length").value_or(""), r.Header("Content-Length").value_or("-"));
  EXPECT_EQ(ParseJson(r2.body), boost::json::parse(R"({"status":"ok"})"));
}

TEST(ServerBinary, ReadyzIsReadyWhileServing) {
  BasaltProcess p;
  START(p);
  auto r = Get(p.port(), "/readyz");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(ParseJson(r.body), boost::json::parse(R"({"status":"ready"})")) << r.body;
}

TEST(ServerBinary, MetricsExposeHttpAndProcessFamilies) {
  BasaltProcess p;
  START(p);
  ASSERT_EQ(Get(p.port(), "/healthz").status, 200);
  auto r = Get(p.port(), "/metrics");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.Header("Content-Type").value_or("").starts_with("text/plain; version=0.0.4"))
      << r.Header("Content-Type").value_or("<none>");
  for (const char* needle :
       {"http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}", "http_request_duration_seconds_bucket",
        "http_requests_in_flight", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds", "process_cpu_seconds_total", "basalt_build_info"}) {
    EXPECT_NE(r.body.find(needle), std::string::npos) << "missing " << needle << " in\n" << r.body;
  }
}

TEST(ServerBinary, MetricsTokenRequiresBearer) {
  const std::string token = "metrics-token-0123456789";
  BasaltProcess p({}, {{"BASALT_METRICS__TOKEN", token}});
  START(p);
  auto none = Get(p.port(), "/metrics");
  ExpectProblem(none, 401, "unauthorized");
  EXPECT_TRUE(none.HasHeader("WWW-Authenticate"));
  auto wrong = Get(p.port(), "/metrics", {{"Authorization", "Bearer wrong-token-0123456789"}});
  ExpectProblem(wrong, 401, "unauthorized");
  EXPECT_TRUE(wrong.HasHeader("WWW-Authenticate"));
  auto good = Get(p.port(), "/metrics", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(good.ok) << good.error;
  EXPECT_EQ(good.status, 200);
  EXPECT_NE(good.body.find("process_open_fds"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST(ServerBinary, UnknownPathIs404Problem) {
  BasaltProcess p;
  START(p);
  ExpectProblem(Get(p.port(), "/no/such/path"), 404, "not_found");
}

TEST(ServerBinary, WrongMethodIs405WithAllow) {
  BasaltProcess p;
  START(p);
  auto r = Request(p.port(), "POST", "/healthz", {}, "x");
  ExpectProblem(r, 405, "method_not_allowed");
  EXPECT_EQ(AsSet(r.JoinedHeader("Allow")), (std::set<std::string>{"GET", "HEAD", "OPTIONS"}))
      << "Allow: " << r.JoinedHeader("Allow");
}

TEST(ServerBinary, UnknownMethodTokenIs501) {
  BasaltProcess p;
  START(p);
  ExpectProblem(Request(p.port(), "FOO", "/healthz"), 501, "not_implemented");
}

TEST(ServerBinary, MalformedRequestsAre400ThenClose) {
  BasaltProcess p;
  START(p);
  const std::vector<std::string> inputs = {
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",   // invalid method character
      "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", // header without colon
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),  // TLS-ish bytes
  };
  for (const auto& input : inputs) {
    SCOPED_TRACE(::testing::PrintToString(input));
    RawConnection c(p.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(input));
    auto r = c.ReadResponse();
    ExpectProblem(r, 400, "bad_request");
    EXPECT_TRUE(c.IsClosed(3s)) << "connection left open after a malformed request";
  }
  EXPECT_EQ(Get(p.port(), "/healthz").status, 200);
}

TEST(ServerBinary, BogusContentLengthIs400) {
  BasaltProcess p;
  START(p);
  const std::vector<std::string> bogus = {"Content-Length: abc\r\n", "Content-Length: -1\r\n",
                                          "Content-Length: 5\r\nContent-Length: 6\r\n"};
  for (const auto& cl : bogus) {
    SCOPED_TRACE(cl);
    RawConnection c(p.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\n" + cl + "\r\nhello"));
    ExpectProblem(c.ReadResponse(), 400, "bad_request");
  }
}

TEST(ServerBinary, HeaderBlockOverLimitIs431) {
  BasaltProcess p;
  START(p);
  Headers many;  // 20 headers of 1 KiB: no single line is long, the block is
  for (int i = 0; i < 20; ++i) many.emplace_back("X-Fill-" + std::to_string(i), std::string(1024, 'a'));
  ExpectProblem(Get(p.port(), "/healthz", many), 431, "headers_too_large");
}

TEST(ServerBinary, SingleHeaderOverLimitIs431) {
  BasaltProcess p;
  START(p);
  // One 17 KiB header field: the request line is short, so this is a header problem, not 414.
  ExpectProblem(Get(p.port(), "/healthz", {{"X-Big", std::string(17 * 1024, 'a')}}), 431, "headers_too_large");
}

TEST(ServerBinary, MaxHeaderBytesFromEnvironment) {
  BasaltProcess p({}, {{"BASALT_SERVER__MAX_HEADER_BYTES", "4096"}});
  START(p);
  EXPECT_EQ(Get(p.port(), "/healthz", {{"X-Fill", std::string(3 * 1024, 'a')}}).status, 200);
  ExpectProblem(Get(p.port(), "/healthz", {{"X-Big", std::string(5 * 1024, 'a')}}), 431, "headers_too_large");
}

// Same limit with the request line limit lowered too (so validation of their relation passes).
TEST(ServerBinary, MaxHeaderAndRequestLineBytesFromEnvironment) {
  BasaltProcess p({}, {{"BASALT_SERVER__MAX_HEADER_BYTES", "4096"}, {"BASALT_SERVER__MAX_REQUEST_LINE_BYTES", "2048"}});
  START(p);
  EXPECT_EQ(Get(p.port(), "/healthz", {{"X-Fill", std::string(3 * 1024, 'a')}}).status, 200);
  Headers many;
  for (int i = 0; i < 5; ++i) many.emplace_back("X-Fill-" + std::to_string(i), std::string(1024, 'a'));
  ExpectProblem(Get(p.port(), "/healthz", many), 431, "headers_too_large");
  ExpectProblem(Get(p.port(), "/" + std::string(3000, 'a')), 414, "uri_too_long");
}

TEST(ServerBinary, LongRequestTargetIs414) {
  BasaltProcess p;
  START(p);
  ExpectProblem(Get(p.port(), "/" + std::string(9000, 'a')), 414, "uri_too_long");
}

TEST(ServerBinary, OversizedContentLengthIs413BeforeTheBody) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  // Only the headers: the server must answer from Content-Length alone.
  ASSERT_TRUE(c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 2000000\r\n\r\n"));
  ExpectProblem(c.ReadResponse(), 413, "payload_too_large");
}

TEST(ServerBinary, SlowHeadersAreTimedOut) {
  BasaltProcess p({}, {{"BASALT_SERVER__HEADER_TIMEOUT_MS", "500"}});
  START(p);
  RawConnection c(p.port(), 10s);
  ASSERT_TRUE(c.connected());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Partial: "));
  EXPECT_TRUE(c.IsClosed(8s)) << "connection with a partial header not closed";
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 400ms);
  EXPECT_LT(elapsed, 8s);
  if (!c.buffered().empty()) {  // a 408 may precede the close
    auto r = c.ReadResponse();
    ExpectProblem(r, 408, "request_timeout");
  }
  EXPECT_EQ(Get(p.port(), "/healthz").status, 200);
}

TEST(ServerBinary, SlowBodyIsTimedOutWith408) {
  BasaltProcess p({}, {{"BASALT_SERVER__BODY_TIMEOUT_MS", "500"}});
  START(p);
  RawConnection c(p.port(), 10s);
  ASSERT_TRUE(c.connected());
  const auto start = std::chrono::steady_clock::now();
  // The header is complete; the body stops after 10 of its 100 bytes.
  ASSERT_TRUE(c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
  auto r = c.ReadResponse();
  ExpectProblem(r, 408, "request_timeout");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);
  EXPECT_TRUE(c.IsClosed(8s)) << "connection with a stalled body not closed";
  EXPECT_EQ(Get(p.port(), "/healthz").status, 200);
}

TEST(ServerBinary, AbruptDisconnectMidBodyKeepsServing) {
  BasaltProcess p;
  START(p);
  for (int i = 0; i < 5; ++i) {
    RawConnection c(p.port());
    ASSERT_TRUE(c.connected());
    c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
    c.Close();
  }
  auto r = Get(p.port(), "/healthz");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(p.Running());
}

TEST(ServerBinary, IdleKeepAliveConnectionIsClosed) {
  BasaltProcess p({}, {{"BASALT_SERVER__IDLE_TIMEOUT_MS", "300"}});
  START(p);
  RawConnection c(p.port(), 10s);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(BuildRequest("GET", "/healthz")));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.closed_after);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.IsClosed(5s)) << "idle keep-alive connection not closed";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
}

// ---------------------------------------------------------------------------------------------
// Request ids and the access log.

TEST(ServerBinary, ValidRequestIdIsEchoedAndLogged) {
  BasaltProcess p;
  START(p);
  auto ok = Get(p.port(), "/healthz", {{"X-Request-Id", "abc-123"}});
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.Header("X-Request-Id").value_or("<none>"), "abc-123");

  auto nf = Get(p.port(), "/nope", {{"X-Request-Id", "abc-404"}});
  ExpectProblem(nf, 404, "not_found");
  EXPECT_EQ(nf.Header("X-Request-Id").value_or("<none>"), "abc-404");
  EXPECT_EQ(ProblemField(nf, "request_id"), "abc-404");

  ASSERT_TRUE(p.WaitForLog("\"request_id\":\"abc-123\"", 5s)) << p.LogText();
  std::string log = p.LogText();
  std::size_t at = log.find("\"request_id\":\"abc-123\"");
  std::size_t begin = log.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  std::size_t end = log.find('\n', at);
  auto line = ParseJson(log.substr(begin, end - begin));
  ASSERT_TRUE(line.is_object()) << log.substr(begin, end - begin);
  const auto& o = line.as_object();
  for (const char* key : {"method", "route", "status", "duration_ms", "bytes", "remote"}) {
    EXPECT_TRUE(o.contains(key)) << "access log line lacks " << key << ": " << boost::json::serialize(o);
  }
  if (o.contains("method")) {
    EXPECT_EQ(o.at("method"), "GET");
  }
  if (o.contains("route")) {
    EXPECT_EQ(o.at("route"), "/healthz");
  }
  if (o.contains("status")) {
    EXPECT_EQ(o.at("status"), 200);
  }
}

TEST(ServerBinary, MalformedRequestIdIsReplacedNeverEchoed) {
  BasaltProcess p;
  START(p);
  const std::vector<std::string> bad = {"has space", "quote\"d", std::string(129, 'a'), "semi;colon"};
  for (const auto& id : bad) {
    SCOPED_TRACE(id);
    auto r = Get(p.port(), "/nope", {{"X-Request-Id", id}});
    ExpectProblem(r, 404, "not_found");
    std::string echoed = r.Header("X-Request-Id").value_or("");
    EXPECT_EQ(echoed.size(), 36u) << echoed;
    EXPECT_NE(echoed, id);
    EXPECT_EQ(ProblemField(r, "request_id"), echoed);
    EXPECT_EQ(r.body.find(id), std::string::npos) << r.body;
  }
  auto none = Get(p.port(), "/healthz");
  EXPECT_EQ(none.Header("X-Request-Id").value_or("").size(), 36u);
}

// ---------------------------------------------------------------------------------------------
// Connection handling.

TEST(ServerBinary, PipelinedRequestsAnsweredInOrder) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  std::string batch;
  for (const char* id : {"pipe-1", "pipe-2", "pipe-3"}) batch += BuildRequest("GET", "/healthz", {{"X-Request-Id", id}});
  ASSERT_TRUE(c.Send(batch));
  for (const char* id : {"pipe-1", "pipe-2", "pipe-3"}) {
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("X-Request-Id").value_or("<none>"), id);
    EXPECT_FALSE(r.closed_after);
  }
}

TEST(ServerBinary, KeepAliveServesSequentialRequests) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.Send(BuildRequest("GET", i % 2 ? "/readyz" : "/healthz")));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.closed_after);
  }
}

TEST(ServerBinary, Http10WithoutKeepAliveCloses) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.closed_after);
  EXPECT_TRUE(c.IsClosed(3s));
}

TEST(ServerBinary, ExpectContinueOnRejectedRequestIsAnsweredWithoutBody) {
  BasaltProcess p;
  START(p);
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto r = c.ReadResponse();  // the body is never sent
  if (r.ok && r.status == 100) r = c.ReadResponse();
  ExpectProblem(r, 405, "method_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// Security headers and CORS.

TEST(ServerBinary, SecurityHeadersOnEveryResponse) {
  BasaltProcess p;
  START(p);
  ExpectSecurityHeaders(Get(p.port(), "/healthz"));
  ExpectSecurityHeaders(Get(p.port(), "/readyz"));
  ExpectSecurityHeaders(Get(p.port(), "/metrics"));
  ExpectSecurityHeaders(Get(p.port(), "/nope"));
  ExpectSecurityHeaders(Request(p.port(), "POST", "/healthz", {}, "x"));
  ExpectSecurityHeaders(Request(p.port(), "FOO", "/healthz"));
  RawConnection c(p.port());
  ASSERT_TRUE(c.connected());
  c.Send("GARBAGE\r\n\r\n");
  ExpectSecurityHeaders(c.ReadResponse());
}

TEST(ServerBinary, CorsClosedByDefault) {
  BasaltProcess p;
  START(p);
  auto r = Get(p.port(), "/healthz", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.HasHeader("Access-Control-Allow-Origin"));
  auto pre = Request(p.port(), "OPTIONS", "/healthz",
                     {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}});
  ASSERT_TRUE(pre.ok) << pre.error;
  EXPECT_FALSE(pre.HasHeader("Access-Control-Allow-Origin"));
  EXPECT_FALSE(pre.HasHeader("Access-Control-Allow-Methods"));
}

TEST(ServerBinary, CorsAllowedOrigin) {
  BasaltProcess p({}, {{"BASALT_CORS__ALLOWED_ORIGINS", "https://app.example"}});
  START(p);
  auto r = Get(p.port(), "/healthz", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Access-Control-Allow-Origin").value_or("<none>"), "https://app.example");
  EXPECT_TRUE(AsSet(r.JoinedHeader("Vary")).contains("Origin")) << "Vary: " << r.JoinedHeader("Vary");

  auto pre = Request(p.port(), "OPTIONS", "/healthz",
                     {{"Origin", "https://app.example"},
                      {"Access-Control-Request-Method", "GET"},
                      {"Access-Control-Request-Headers", "Content-Type"}});
  ASSERT_TRUE(pre.ok) << pre.error;
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.Header("Access-Control-Allow-Origin").value_or("<none>"), "https://app.example");
  EXPECT_TRUE(AsSet(pre.JoinedHeader("Access-Control-Allow-Methods")).contains("GET"))
      << pre.JoinedHeader("Access-Control-Allow-Methods");
  EXPECT_TRUE(pre.HasHeader("Access-Control-Allow-Headers"));
  EXPECT_EQ(pre.Header("Access-Control-Max-Age").value_or("<none>"), "600");

  auto other = Get(p.port(), "/healthz", {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(other.ok) << other.error;
  EXPECT_EQ(other.status, 200);
  EXPECT_FALSE(other.HasHeader("Access-Control-Allow-Origin"));
  auto other_pre = Request(p.port(), "OPTIONS", "/healthz",
                           {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}});
  ASSERT_TRUE(other_pre.ok) << other_pre.error;
  EXPECT_FALSE(other_pre.HasHeader("Access-Control-Allow-Origin"));
}

TEST(ServerBinary, CorsWildcardWithCredentialsRefusesToStart) {
  auto r = RunBasalt({"serve", "--port", "0", "--data-dir", "{tmp}/data"},
                     {{"BASALT_CORS__ALLOWED_ORIGINS", "*"}, {"BASALT_CORS__ALLOW_CREDENTIALS", "true"}}, 20s);
  ASSERT_TRUE(r.exit_code.has_value()) << "still running (started?):\n" << r.output;
  EXPECT_EQ(*r.exit_code, 2) << r.output;
  EXPECT_NE(Lower(r.output).find("cors"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\"msg\":\"listening\""), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------------------------
// Configuration and the command line.

TEST(ServerBinary, InvalidSettingsAreAllReportedAtOnce) {
  const Env env = {{"BASALT_SERVER__PORT", "abc"}, {"BASALT_SERVER__NOPE", "1"}};
  auto r = RunBasalt({"serve", "--data-dir", "{tmp}/data"}, env, 20s);
  ASSERT_TRUE(r.exit_code.has_value()) << "still running (started?):\n" << r.output;
  EXPECT_EQ(*r.exit_code, 2) << r.output;
  const std::string out = Lower(r.output);
  EXPECT_TRUE(out.find("server.port") != std::string::npos || out.find("basalt_server__port") != std::string::npos)
      << r.output;
  EXPECT_TRUE(out.find("server.nope") != std::string::npos || out.find("basalt_server__nope") != std::string::npos)
      << r.output;
}

TEST(ServerBinary, VersionPrintsAndExitsZero) {
  auto r = RunBasalt({"version"});
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_EQ(*r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find_first_of("0123456789"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find('.'), std::string::npos) << r.output;
}

TEST(ServerBinary, BadCommandLineExitsTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--bogus-flag"}, {"serve", "--port", "notanumber", "--data-dir", "{tmp}/data"}}) {
    SCOPED_TRACE(args.back());
    auto r = RunBasalt(args);
    ASSERT_TRUE(r.exit_code.has_value()) << r.output;
    EXPECT_EQ(*r.exit_code, 2) << r.output;
    EXPECT_FALSE(r.output.empty());
  }
}

TEST(ServerBinary, ConfigCheck) {
  auto good = RunBasalt({"config", "check", "--data-dir", "{tmp}/data"});
  ASSERT_TRUE(good.exit_code.has_value()) << good.output;
  EXPECT_EQ(*good.exit_code, 0) << good.output;
  auto bad = RunBasalt({"config", "check", "--data-dir", "{tmp}/data"},
                       {{"BASALT_SERVER__PORT", "abc"}, {"BASALT_SERVER__NOPE", "1"}});
  ASSERT_TRUE(bad.exit_code.has_value()) << bad.output;
  EXPECT_EQ(*bad.exit_code, 2) << bad.output;
  const std::string out = Lower(bad.output);
  EXPECT_TRUE(out.find("server.port") != std::string::npos || out.find("basalt_server__port") != std::string::npos)
      << bad.output;
  EXPECT_TRUE(out.find("server.nope") != std::string::npos || out.find("basalt_server__nope") != std::string::npos)
      << bad.output;
}

TEST(ServerBinary, ConfigShowRedactsSecrets) {
  auto r = RunBasalt({"config", "show", "--data-dir", "{tmp}/data"},
                     {{"BASALT_METRICS__TOKEN", "supersecretvalue123"}});
  ASSERT_TRUE(r.exit_code.has_value()) << r.output;
  EXPECT_EQ(*r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("<redacted>"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("supersecretvalue123"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[server]"), std::string::npos) << r.output;
}

TEST(ServerBinary, ConfigFileIsHonoured) {
  TempDir dir;
  const std::string file = dir.path() + "/basalt.toml";
  {
    std::ofstream out(file);
    out << "[server]\nmax_header_bytes = 4096\n";
  }
  BasaltProcess p({"--config", file}, {});
  START(p);
  EXPECT_EQ(Get(p.port(), "/healthz", {{"X-Fill", std::string(3 * 1024, 'a')}}).status, 200);
  ExpectProblem(Get(p.port(), "/healthz", {{"X-Big", std::string(5 * 1024, 'a')}}), 431, "headers_too_large");
}

// ---------------------------------------------------------------------------------------------
// Connection limits and scale.

TEST(ServerBinary, MaxConnectionsRejectsTheExtraOneWith503) {
  BasaltProcess p({}, {{"BASALT_SERVER__MAX_CONNECTIONS", "10"}});
  START(p);
  std::vector<RawConnection> conns;
  for (int i = 0; i < 10; ++i) {
    conns.emplace_back(p.port());
    ASSERT_TRUE(conns.back().connected());
    ASSERT_TRUE(conns.back().Send(BuildRequest("GET", "/healthz")));
    auto r = conns.back().ReadResponse();
    ASSERT_TRUE(r.ok) << "connection " << i << ": " << r.error;
    ASSERT_EQ(r.status, 200);
  }
  {
    RawConnection extra(p.port());
    ASSERT_TRUE(extra.connected());
    extra.Send(BuildRequest("GET", "/healthz"));
    auto r = extra.ReadResponse();
    ExpectProblem(r, 503, "service_unavailable");
    EXPECT_TRUE(extra.IsClosed(3s));
  }
  conns.front().Close();
  // The server notices the close asynchronously: poll with fresh connections until one is served.
  bool served = WaitUntil(
      [&] {
        auto r = Get(p.port(), "/healthz");
        return r.ok && r.status == 200;
      },
      5s);
  EXPECT_TRUE(served) << "no connection served after one of the 10 closed";
}

TEST(ServerBinary, TenThousandIdleConnections) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 10'100) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << lim.rlim_max << " < 10100";
  }
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  // Raised before spawning, so the server inherits it. Header timeout raised so that "idle"
  // (never sent a byte) connections stay open while the test runs.
  BasaltProcess p({}, {{"BASALT_SERVER__HEADER_TIMEOUT_MS", "60000"}});
  START(p);
  constexpr int kIdle = 10'000;
  std::vector<RawConnection> idle;
  idle.reserve(kIdle);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(p.port(), 5s);
    ASSERT_TRUE(idle.back().connected()) << "connect " << i << " failed: errno " << idle.back().connect_errno();
  }
  const auto opened = std::chrono::steady_clock::now() - start;
  // Wait until the server has accepted them (its open fds include every idle connection).
  std::string last_metrics;
  bool accepted = WaitUntil(
      [&] {
        auto m = Get(p.port(), "/metrics");
        last_metrics = m.body;
        std::size_t at = m.body.find("\nprocess_open_fds ");
        if (at == std::string::npos) return false;
        return std::stod(m.body.substr(at + 18)) >= kIdle;
      },
      30s);
  EXPECT_TRUE(accepted) << "server did not accept 10k connections; last metrics:\n" << last_metrics;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Get(p.port(), "/healthz");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(took, 2s);
  EXPECT_FALSE(idle.front().IsClosed(0ms));
  EXPECT_FALSE(idle.back().IsClosed(0ms));
  // An idle connection can still be used.
  ASSERT_TRUE(idle[kIdle / 2].Send(BuildRequest("GET", "/healthz")));
  EXPECT_EQ(idle[kIdle / 2].ReadResponse().status, 200);
  idle.clear();
  EXPECT_EQ(Get(p.port(), "/healthz").status, 200);
  std::printf("opened %d connections in %lld ms\n", kIdle,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(opened).count()));
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown.

TEST(ServerBinary, SigtermDrainsThenExitsZero) {
  // A wide drain window keeps this deterministic on a loaded machine: the only timing bound
  // asserted is the lower one (the server must not exit before the delay).
  BasaltProcess p({}, {{"BASALT_SERVER__DRAIN_DELAY_MS", "4000"}});
  START(p);
  ASSERT_EQ(Get(p.port(), "/readyz").status, 200);
  const auto signalled = std::chrono::steady_clock::now();
  p.Signal(SIGTERM);
  HttpResponse ready;
  bool not_ready = WaitUntil(
      [&] {
        ready = Get(p.port(), "/readyz");
        return ready.ok && ready.status == 503;
      },
      3500ms);
  ASSERT_TRUE(not_ready) << "readyz never turned 503 during the drain delay; last: " << ready.status << " "
                         << ready.error;
  ExpectProblem(ready, 503, "service_unavailable");
  if (std::chrono::steady_clock::now() - signalled < 3000ms) {
    // Still inside the drain window: the server keeps serving.
    auto health = Get(p.port(), "/healthz");
    ASSERT_TRUE(health.ok) << health.error;
    EXPECT_EQ(health.status, 200);
  }
  auto code = p.WaitExit(20s);
  ASSERT_TRUE(code.has_value()) << "did not exit after SIGTERM; log:\n" << p.LogText();
  EXPECT_EQ(*code, 0) << p.LogText();
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, 3900ms) << "exited before the drain delay";
  const std::string log = Lower(p.LogText());
  EXPECT_TRUE(log.find("shut") != std::string::npos || log.find("drain") != std::string::npos ||
              log.find("stopp") != std::string::npos)
      << "no shutdown line in log:\n" << p.LogText();
}

TEST(ServerBinary, SigtermExitsZeroPromptly) {
  BasaltProcess p;
  START(p);
  ASSERT_EQ(Get(p.port(), "/healthz").status, 200);
  p.Signal(SIGTERM);
  auto code = p.WaitExit(5s);
  ASSERT_TRUE(code.has_value()) << "did not exit within 5 s of SIGTERM; log:\n" << p.LogText();
  EXPECT_EQ(*code, 0) << p.LogText();
}

TEST(ServerBinary, SigintExitsZeroPromptly) {
  BasaltProcess p;
  START(p);
  ASSERT_EQ(Get(p.port(), "/healthz").status, 200);
  p.Signal(SIGINT);
  auto code = p.WaitExit(5s);
  ASSERT_TRUE(code.has_value()) << "did not exit within 5 s of SIGINT; log:\n" << p.LogText();
  EXPECT_EQ(*code, 0) << p.LogText();
}

}  // namespace
}  // namespace basalt::testing

namespace basalt::testing {
namespace {

// SO_REUSEPORT must not let a second server join a port another one listens on.
// server.threads = 0 starts one I/O thread per CPU the process may run on: under a one-CPU
// affinity mask (taskset -c N, a cpuset) that is one, not one per CPU of the machine.
TEST(ServerBinary, DefaultThreadsFollowTheCpuAffinity) {
  cpu_set_t all;
  CPU_ZERO(&all);
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  {
    BasaltProcess server;
    ASSERT_TRUE(server.started()) << server.start_error();
    EXPECT_TRUE(server.WaitForLog("\"threads\":" + std::to_string(CPU_COUNT(&all)) + ",")) << server.LogText();
  }
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // The child inherits this thread's mask.
  BasaltProcess pinned;
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  ASSERT_TRUE(pinned.started()) << pinned.start_error();
  EXPECT_TRUE(pinned.WaitForLog("\"threads\":1,")) << pinned.LogText();
}

TEST(ServerBinary, SecondServerOnTheSamePortRefusesToStart) {
  BasaltProcess first;
  START(first);
  const auto second = RunBasalt({"serve", "--port", std::to_string(first.port()), "--data-dir", "{tmp}/data"}, {}, 20s);
  ASSERT_TRUE(second.exit_code.has_value()) << "second server kept running on a taken port";
  EXPECT_EQ(*second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("cannot listen"), std::string::npos) << second.output;
  EXPECT_EQ(Get(first.port(), "/healthz").status, 200);
}

}  // namespace
}  // namespace basalt::testing
