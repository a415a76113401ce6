// The HTTP server in-process with custom routes: chunked bodies, 100-continue, per-route body
// limits, exceptions in handlers, graceful shutdown with a request in flight. Port 0 everywhere.

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "http/stages.hpp"
#include "obs/metrics.hpp"

namespace basalt::testing {
namespace {

using http::Method;
using http::Response;
using http::Task;

std::atomic<bool> g_slow_entered{false};

Task<Response> Echo(http::Request& request) { co_return Response::Text(200, request.body()); }

Task<Response> Throw(http::Request&) {
  throw std::runtime_error("secret detail");
  co_return Response::Empty(204);
}

Task<Response> Slow(http::Request&) {
  g_slow_entered.store(true);
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(300));
  co_await timer.async_wait(boost::asio::use_awaitable);
  co_return Response::Text(200, "slow done");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_slow_entered.store(false);
    ASSERT_TRUE(router_.Add(Method::kPost, "/echo", Echo).has_value());
    ASSERT_TRUE(router_.Add(Method::kGet, "/throw", Throw).has_value());
    ASSERT_TRUE(router_.Add(Method::kGet, "/slow", Slow).has_value());
    ASSERT_TRUE(router_.Add(Method::kPost, "/small", Echo, http::RouteOptions{.max_body_bytes = 10}).has_value());
    pipeline_.Use(http::RequestIdStage());
    pipeline_.Use(http::MetricsStage(metrics_));
    pipeline_.Use(http::SecurityHeadersStage({}));
    http::ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.shutdown_timeout = std::chrono::milliseconds(3000);
    server_ = std::make_unique<http::Server>(options, router_, pipeline_, readiness_);
    auto started = server_->Start();
    ASSERT_TRUE(started.has_value()) << started.error().message << " " << started.error().cause;
    readiness_.set(true);
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      server_->Wait();
    }
  }

  http::Router router_;
  http::Pipeline pipeline_{http::Dispatch};
  obs::HttpMetrics metrics_{2};
  http::Readiness readiness_;
  std::unique_ptr<http::Server> server_;
  std::uint16_t port_ = 0;
};

std::string ProblemCode(const HttpResponse& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("code")) return {};
  return std::string(v.as_object().at("code").as_string());
}

TEST_F(HttpServerTest, ContentLengthBodyEchoed) {
  auto r = Request(port_, "POST", "/echo", {}, "hello world");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.Header("X-Content-Type-Options").value_or(""), "nosniff");
}

TEST_F(HttpServerTest, ChunkedBodyEchoed) {
  RawConnection c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello world");
  // The connection stays usable after a chunked request.
  ASSERT_TRUE(c.Send(BuildRequest("POST", "/echo", {}, "again")));
  auto r2 = c.ReadResponse();
  ASSERT_TRUE(r2.ok) << r2.error;
  EXPECT_EQ(r2.body, "again");
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponseThenEcho) {
  RawConnection c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.ReadResponse();
  ASSERT_TRUE(interim.ok) << interim.error;
  ASSERT_EQ(interim.status, 100);
  ASSERT_TRUE(c.Send("hello"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(HttpServerTest, PerRouteBodyLimit) {
  auto ok = Request(port_, "POST", "/small", {}, "0123456789");
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "0123456789");

  auto big = Request(port_, "POST", "/small", {}, "0123456789A");
  ASSERT_TRUE(big.ok) << big.error;
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(ProblemCode(big), "payload_too_large") << big.body;

  RawConnection c(port_);
  ASSERT_TRUE(c.connected());
  c.Send("POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "6\r\n012345\r\n5\r\n6789A\r\n0\r\n\r\n");
  auto chunked = c.ReadResponse();
  ASSERT_TRUE(chunked.ok) << chunked.error;
  EXPECT_EQ(chunked.status, 413);
  EXPECT_EQ(ProblemCode(chunked), "payload_too_large") << chunked.body;
}

TEST_F(HttpServerTest, ThrowingHandlerIs500WithoutDetail) {
  auto r = Get(port_, "/throw", {{"X-Request-Id", "throw-1"}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(r.Header("Content-Type").value_or("").starts_with("application/problem+json"));
  EXPECT_EQ(ProblemCode(r), "internal_error") << r.body;
  EXPECT_EQ(r.body.find("secret detail"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("throw-1"), std::string::npos) << r.body;
  // The server survives.
  EXPECT_EQ(Request(port_, "POST", "/echo", {}, "x").status, 200);
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  auto nf = Get(port_, "/missing");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(ProblemCode(nf), "not_found");
  auto na = Get(port_, "/echo");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(ProblemCode(na), "method_not_allowed");
  auto allow = SplitList(na.JoinedHeader("Allow"));
  EXPECT_NE(std::find(allow.begin(), allow.end(), "POST"), allow.end()) << na.JoinedHeader("Allow");
}

TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightRequest) {
  RawConnection a(port_, std::chrono::seconds(5));
  ASSERT_TRUE(a.connected());
  ASSERT_TRUE(a.Send(BuildRequest("GET", "/slow")));
  ASSERT_TRUE(WaitUntil([] { return g_slow_entered.load(); }, std::chrono::seconds(5)))
      << "slow handler never started";
  const auto shutdown_at = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_FALSE(readiness_.ready());

  auto r = a.ReadResponse();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow done");
  EXPECT_EQ(r.Header("Connection").value_or("<none>"), "close");
  EXPECT_TRUE(r.closed_after);

  // New connections are refused, or closed without a response.
  RawConnection b(port_, std::chrono::seconds(2));
  if (b.connected()) {
    b.Send(BuildRequest("GET", "/slow"));
    auto rb = b.ReadResponse();
    EXPECT_FALSE(rb.ok) << "a new connection was served after Shutdown(): " << rb.status;
  }

  auto waited = std::async(std::launch::async, [this] { server_->Wait(); });
  if (waited.wait_for(std::chrono::seconds(6)) != std::future_status::ready) {
    ADD_FAILURE() << "Server::Wait() did not return within the shutdown deadline (3 s + margin)";
    std::fflush(nullptr);
    std::_Exit(1);  // a hung Wait() would otherwise block forever in the future's destructor
  }
  EXPECT_LT(std::chrono::steady_clock::now() - shutdown_at, std::chrono::seconds(4));
  server_.reset();
}

}  // namespace
}  // namespace basalt::testing
