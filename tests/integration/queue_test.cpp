// The queue API against the real binary, on SQLite and (with BASALT_TEST_POSTGRES_URL) PostgreSQL:
// priorities, delays, idempotency, leases (expiry, redelivery, stale tokens), nack and dead
// letters, replay, batch paths, long-poll wake-up, bad inputs, metrics, and 8 consumers draining
// while producers keep producing (every message acked exactly once by a valid lease holder).

#include <boost/json.hpp>
#include <algorithm>
#include <atomic>
#include <ctime>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace basalt::testing {
namespace {

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kToken = kTestAdminToken;


std::string Code(const HttpResponse& r) {
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("code")) return "";
  return std::string(v.as_object().at("code").as_string());
}

std::set<std::string> ErrorFields(const HttpResponse& r) {
  std::set<std::string> out;
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("errors")) return out;
  for (const auto& e : v.as_object().at("errors").as_array()) out.emplace(e.as_object().at("field").as_string());
  return out;
}

using Api = ApiClient;

/// A claimed message as the test sees it.
struct Claimed {
  std::string id;
  std::string token;
  std::int64_t priority = 0;
  std::int64_t attempt = 0;
  json::value payload;
};

std::vector<Claimed> Messages(const HttpResponse& r) {
  std::vector<Claimed> out;
  auto v = ParseJson(r.body);
  if (!v.is_object() || !v.as_object().contains("messages")) return out;
  for (const auto& m : v.as_object().at("messages").as_array()) {
    const auto& o = m.as_object();
    out.push_back(Claimed{std::string(o.at("id").as_string()), std::string(o.at("lease_token").as_string()),
                          o.at("priority").as_int64(), o.at("attempt").as_int64(), o.at("payload")});
  }
  return out;
}

class Queues : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_ = {{"BASALT_AUTH__ADMIN_TOKEN", kToken}, {"BASALT_LOG__ACCESS", "false"}};
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    // PostgreSQL keeps tables between tests: fresh queue names per run.
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }
  std::string Path(const std::string& queue, const std::string& rest = "") const {
    return "/api/v1/queues/" + queue + suffix_ + rest;
  }
  json::object Stats(const Api& api, const std::string& queue) const {
    auto r = api.Call("GET", Path(queue));
    EXPECT_EQ(r.status, 200) << r.body;
    auto v = ParseJson(r.body);
    if (!v.is_object() || !v.as_object().contains("stats")) return {};
    return v.as_object().at("stats").as_object();
  }
  Env env_;
  std::string suffix_;
};

TEST_P(Queues, PrioritiesDelaysIdempotencyAndBatches) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};

  // Priorities: highest first, then oldest (input order within a batch).
  auto p = api.Call("POST", Path("jobs", "/messages"), R"({"messages": [
      {"payload": {"n": 1}, "priority": 1}, {"payload": {"n": 2}, "priority": 5},
      {"payload": {"n": 3}}, {"payload": {"n": 4}, "priority": 5, "headers": {"trace": "t4"}},
      {"payload": {"n": 5}, "delay_ms": 600000}]})");
  ASSERT_EQ(p.status, 201) << p.body;
  auto produced = ParseJson(p.body).as_object().at("messages").as_array();
  ASSERT_EQ(produced.size(), 5u);
  for (const auto& m : produced) EXPECT_FALSE(m.as_object().at("duplicate").as_bool());

  auto c = api.Call("POST", Path("jobs", "/claims"), R"({"max": 10})");
  ASSERT_EQ(c.status, 200) << c.body;
  auto claimed = Messages(c);
  ASSERT_EQ(claimed.size(), 4u) << c.body;  // n=5 is delayed
  std::vector<std::int64_t> order;
  for (const auto& m : claimed) order.push_back(m.payload.as_object().at("n").as_int64());
  EXPECT_EQ(order, (std::vector<std::int64_t>{2, 4, 1, 3}));
  EXPECT_EQ(claimed[0].attempt, 1);
  EXPECT_NE(c.body.find(R"("headers":{"trace":"t4"})"), std::string::npos) << c.body;

  auto stats = Stats(api, "jobs");
  EXPECT_EQ(stats.at("in_flight").as_int64(), 4);
  EXPECT_EQ(stats.at("delayed").as_int64(), 1);
  EXPECT_EQ(stats.at("ready").as_int64(), 0);
  EXPECT_EQ(stats.at("produced").as_int64(), 5);

  // Batch ack: three good, one unknown id, one stale token, one repeated.
  std::string acks = R"({"messages": [)";
  for (int i = 0; i < 3; ++i) {
    acks += R"({"id": ")" + claimed[i].id + R"(", "lease_token": ")" + claimed[i].token + R"("},)";
  }
  acks += R"({"id": "00000000-0000-7000-8000-000000000000", "lease_token": ")" + claimed[3].token + R"("},)";
  acks += R"({"id": ")" + claimed[3].id + R"(", "lease_token": "not-the-token"},)";
  acks += R"({"id": ")" + claimed[0].id + R"(", "lease_token": ")" + claimed[0].token + R"("}]})";
  auto a = api.Call("POST", Path("jobs", "/acks"), acks);
  ASSERT_EQ(a.status, 200) << a.body;
  auto results = ParseJson(a.body).as_object();
  EXPECT_EQ(results.at("acked").as_int64(), 3);
  const auto& items = results.at("results").as_array();
  ASSERT_EQ(items.size(), 6u);
  EXPECT_EQ(items[0].as_object().at("result").as_string(), "acked");
  EXPECT_EQ(items[3].as_object().at("result").as_string(), "not_found");
  EXPECT_EQ(items[4].as_object().at("result").as_string(), "stale");
  EXPECT_EQ(items[5].as_object().at("result").as_string(), "stale");
  // Single ack: 204, then the same token again is stale (409).
  auto one = api.Call("POST", Path("jobs", "/messages/" + claimed[3].id + "/ack"),
                      R"({"lease_token": ")" + claimed[3].token + R"("})");
  EXPECT_EQ(one.status, 204) << one.body;
  auto again = api.Call("POST", Path("jobs", "/messages/" + claimed[3].id + "/ack"),
                        R"({"lease_token": ")" + claimed[3].token + R"("})");
  EXPECT_EQ(again.status, 409) << again.body;
  auto peek = api.Call("GET", Path("jobs", "/messages/" + claimed[3].id));
  ASSERT_EQ(peek.status, 200) << peek.body;
  EXPECT_EQ(ParseJson(peek.body).as_object().at("state").as_string(), "completed");

  // Idempotency: the same key returns the original id, also within one batch.
  auto k1 = api.Call("POST", Path("jobs", "/messages"),
                     R"({"messages": [{"payload": "a", "idempotency_key": "order-1"}, {"payload": "b", "idempotency_key": "order-1"}]})");
  ASSERT_EQ(k1.status, 201) << k1.body;
  const auto k1m = ParseJson(k1.body).as_object().at("messages").as_array();
  EXPECT_FALSE(k1m[0].as_object().at("duplicate").as_bool());
  EXPECT_TRUE(k1m[1].as_object().at("duplicate").as_bool());
  EXPECT_EQ(k1m[0].as_object().at("id"), k1m[1].as_object().at("id"));
  auto k2 = api.Call("POST", Path("jobs", "/messages"), R"({"messages": [{"payload": "c", "idempotency_key": "order-1"}]})");
  ASSERT_EQ(k2.status, 201) << k2.body;
  EXPECT_TRUE(ParseJson(k2.body).as_object().at("messages").as_array()[0].as_object().at("duplicate").as_bool());
  EXPECT_EQ(ParseJson(k2.body).as_object().at("messages").as_array()[0].as_object().at("id"), k1m[0].as_object().at("id"));
  auto kc = Messages(api.Call("POST", Path("jobs", "/claims"), R"({"max": 10})"));
  ASSERT_EQ(kc.size(), 1u);  // one message for the key, not three
  EXPECT_EQ(kc[0].payload.as_string(), "a");

  // A delay: the claim long-polls until it passes (available_at 1.5 s ahead).
  const auto due = std::chrono::system_clock::now() + std::chrono::milliseconds(1500);
  const std::time_t t = std::chrono::system_clock::to_time_t(due);
  char at[64];
  std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(due.time_since_epoch()).count() % 1000;
  const std::string available = std::string(at) + "." + (ms < 100 ? (ms < 10 ? "00" : "0") : "") + std::to_string(ms) + "Z";
  auto d = api.Call("POST", Path("later", "/messages"), R"({"messages": [{"payload": 7, "available_at": ")" + available + R"("}]})");
  ASSERT_EQ(d.status, 201) << d.body;
  auto none = Messages(api.Call("POST", Path("later", "/claims"), R"({"max": 1})"));
  EXPECT_TRUE(none.empty());
  auto later = Messages(api.Call("POST", Path("later", "/claims"), R"({"max": 1, "wait_ms": 4500})"));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].payload.as_int64(), 7);
  EXPECT_GE(std::chrono::system_clock::now(), due);
}

TEST_P(Queues, LeasesNackDeadLettersAndReplay) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  auto put = api.Call("PUT", Path("work"), R"({"max_attempts": 2, "backoff_min_ms": 0, "backoff_max_ms": 0, "lease_ms": 30000})");
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(put.Header("Location").value_or(""), Path("work"));
  auto put2 = api.Call("PUT", Path("work"), R"({"max_attempts": 2, "backoff_min_ms": 0, "backoff_max_ms": 0})");
  ASSERT_EQ(put2.status, 200) << put2.body;
  EXPECT_EQ(ParseJson(put2.body).as_object().at("settings").as_object().at("max_attempts").as_int64(), 2);

  ASSERT_EQ(api.Call("POST", Path("work", "/messages"), R"({"messages": [{"payload": {"job": 1}}]})").status, 201);
  // Attempt 1 with a short lease that runs out: the message comes back with a new token.
  auto first = Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 1, "lease_ms": 300})"));
  ASSERT_EQ(first.size(), 1u);
  auto second = Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 1, "wait_ms": 10000})"));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, first[0].id);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_NE(second[0].token, first[0].token);
  // The first holder's token is stale now: ack, nack and extend all 409.
  const std::string msg = Path("work", "/messages/" + first[0].id);
  EXPECT_EQ(api.Call("POST", msg + "/ack", R"({"lease_token": ")" + first[0].token + R"("})").status, 409);
  EXPECT_EQ(api.Call("POST", msg + "/nack", R"({"lease_token": ")" + first[0].token + R"("})").status, 409);
  EXPECT_EQ(api.Call("POST", msg + "/extend", R"({"lease_token": ")" + first[0].token + R"("})").status, 409);
  // Extend works for the holder.
  auto ext = api.Call("POST", msg + "/extend", R"({"lease_token": ")" + second[0].token + R"(", "lease_ms": 60000})");
  ASSERT_EQ(ext.status, 200) << ext.body;
  EXPECT_TRUE(ParseJson(ext.body).as_object().contains("lease_expires_at"));
  // Nack on the last attempt: dead, with its error.
  auto nack = api.Call("POST", msg + "/nack", R"({"lease_token": ")" + second[0].token + R"(", "error": "boom"})");
  ASSERT_EQ(nack.status, 200) << nack.body;
  EXPECT_EQ(ParseJson(nack.body).as_object().at("state").as_string(), "dead");
  auto dl = api.Call("GET", Path("work", "/dead-letters"));
  ASSERT_EQ(dl.status, 200) << dl.body;
  auto dead = ParseJson(dl.body).as_object().at("items").as_array();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].as_object().at("id").as_string(), first[0].id);
  EXPECT_EQ(dead[0].as_object().at("last_error").as_string(), "boom");
  EXPECT_EQ(dead[0].as_object().at("attempt").as_int64(), 2);
  EXPECT_TRUE(Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 5})")).empty());
  auto stats = Stats(api, "work");
  EXPECT_EQ(stats.at("dead").as_int64(), 1);
  EXPECT_EQ(stats.at("failed").as_int64(), 1);

  // Replay the dead letter by id: a fresh message (attempt 1 again).
  auto replay = api.Call("POST", Path("work", "/dead-letters/replay"), R"({"ids": [")" + first[0].id + R"("]})");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(ParseJson(replay.body).as_object().at("replayed").as_int64(), 1);
  auto third = Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 1})"));
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempt, 1);
  // A nack with a delay: back to ready, claimable after it.
  auto retry = api.Call("POST", Path("work", "/messages/" + third[0].id + "/nack"),
                        R"({"lease_token": ")" + third[0].token + R"(", "delay_ms": 200, "error": "later"})");
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(ParseJson(retry.body).as_object().at("state").as_string(), "ready");
  auto fourth = Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 1, "wait_ms": 10000})"));
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_EQ(fourth[0].attempt, 2);
  ASSERT_EQ(api.Call("POST", Path("work", "/messages/" + fourth[0].id + "/ack"),
                     R"({"lease_token": ")" + fourth[0].token + R"("})").status, 204);

  // Replay completed: by id, then by time range.
  auto again = api.Call("POST", Path("work", "/completed/replay"), R"({"ids": [")" + fourth[0].id + R"("]})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(ParseJson(again.body).as_object().at("replayed").as_int64(), 1);
  auto fifth = Messages(api.Call("POST", Path("work", "/claims"), R"({"max": 1})"));
  ASSERT_EQ(fifth.size(), 1u);
  ASSERT_EQ(api.Call("POST", Path("work", "/messages/" + fifth[0].id + "/ack"),
                     R"({"lease_token": ")" + fifth[0].token + R"("})").status, 204);
  auto range = api.Call("POST", Path("work", "/completed/replay"),
                        R"({"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00+01:00"})");
  ASSERT_EQ(range.status, 200) << range.body;
  EXPECT_EQ(ParseJson(range.body).as_object().at("replayed").as_int64(), 1);

  // Replay all dead letters, and a queue that drops them instead.
  ASSERT_EQ(api.Call("PUT", Path("drop"), R"({"max_attempts": 1, "dead_letter": false, "retention_ms": 0})").status, 201);
  ASSERT_EQ(api.Call("POST", Path("drop", "/messages"), R"({"messages": [{"payload": 1}]})").status, 201);
  auto d1 = Messages(api.Call("POST", Path("drop", "/claims"), R"({"max": 1})"));
  ASSERT_EQ(d1.size(), 1u);
  ASSERT_EQ(api.Call("POST", Path("drop", "/messages/" + d1[0].id + "/nack"), R"({"lease_token": ")" + d1[0].token + R"("})").status, 200);
  EXPECT_EQ(api.Call("GET", Path("drop", "/messages/" + d1[0].id)).status, 404);
  auto all = api.Call("POST", Path("work", "/dead-letters/replay"), R"({"all": true})");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(ParseJson(all.body).as_object().at("replayed").as_int64(), 0);
}

TEST_P(Queues, LongPollIsWokenByAProduce) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  ASSERT_EQ(api.Call("PUT", Path("wake"), "{}").status, 201);
  for (int round = 0; round < 2; ++round) {
    HttpResponse claim;
    std::thread waiter([&] {
      // The claim may wait 30 s; the client gives up after 15 s, so only a prompt wake-up passes.
      RawConnection c(server.port(), std::chrono::seconds(15));
      const std::string body = R"({"max": 5, "wait_ms": 30000})";
      c.Send(BuildRequest("POST", Path("wake", "/claims"),
                          {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}}, body));
      claim = c.ReadResponse();
    });
    // Produce only once the claim is known to be waiting, so the wake-up (not a lucky order) is tested.
    const bool waiting = WaitUntil([&] { return Stats(api, "wake").at("waiting_claims").as_int64() == 1; }, 20s);
    EXPECT_TRUE(waiting);
    auto p = api.Call("POST", Path("wake", "/messages"), R"({"messages": [{"payload": {"round": )" + std::to_string(round) + "}}]}");
    EXPECT_EQ(p.status, 201) << p.body;
    waiter.join();
    ASSERT_TRUE(claim.ok) << claim.error;
    ASSERT_EQ(claim.status, 200) << claim.body;
    auto got = Messages(claim);
    ASSERT_EQ(got.size(), 1u) << claim.body;
    EXPECT_EQ(got[0].payload.as_object().at("round").as_int64(), round);
  }
}

TEST_P(Queues, BadInputsAreClearProblemsAndChangeNothing) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const Api anon{server.port(), false};
  ASSERT_EQ(api.Call("POST", Path("in", "/messages"), R"({"messages": [{"payload": 1}]})").status, 201);

  struct Case {
    std::string name, method, path, body;
    int status;
    std::string code;
    std::string field;
  };
  std::string thousand_and_one = R"({"messages": [)";
  for (int i = 0; i < 1001; ++i) thousand_and_one += std::string(i ? "," : "") + R"({"payload": 1})";
  thousand_and_one += "]}";
  const std::vector<Case> cases = {
      {"bad json", "POST", Path("in", "/messages"), "{", 400, "bad_request", ""},
      {"no messages", "POST", Path("in", "/messages"), "{}", 422, "validation_failed", "messages"},
      {"empty batch", "POST", Path("in", "/messages"), R"({"messages": []})", 422, "validation_failed", "messages"},
      {"unknown field", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "prio": 2}]})", 422, "validation_failed", "messages[0].prio"},
      {"no payload", "POST", Path("in", "/messages"), R"({"messages": [{"priority": 2}]})", 422, "validation_failed", "messages[0].payload"},
      {"priority 10", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "priority": 10}]})", 422, "validation_failed", "messages[0].priority"},
      {"negative delay", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "delay_ms": -1}]})", 422, "validation_failed", "messages[0].delay_ms"},
      {"bad available_at", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "available_at": "tomorrow"}]})", 422, "validation_failed", "messages[0].available_at"},
      {"available_at too far", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "available_at": "2999-01-01T00:00:00Z"}]})", 422, "validation_failed", "messages[0].available_at"},
      {"available_at bad date", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "available_at": "2026-02-30T00:00:00Z"}]})", 422, "validation_failed", "messages[0].available_at"},
      {"headers not strings", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "headers": {"a": 1}}]})", 422, "validation_failed", "messages[0].headers"},
      {"empty key", "POST", Path("in", "/messages"), R"({"messages": [{"payload": 1, "idempotency_key": ""}]})", 422, "validation_failed", "messages[0].idempotency_key"},
      {"1001 messages", "POST", Path("in", "/messages"), thousand_and_one, 413, "payload_too_large", ""},
      {"bad queue name", "POST", "/api/v1/queues/-bad/messages", R"({"messages": [{"payload": 1}]})", 422, "validation_failed", "queue"},
      {"claim max 0", "POST", Path("in", "/claims"), R"({"max": 0})", 422, "validation_failed", "max"},
      {"claim wait too long", "POST", Path("in", "/claims"), R"({"wait_ms": 30001})", 422, "validation_failed", "wait_ms"},
      {"claim lease too short", "POST", Path("in", "/claims"), R"({"lease_ms": 5})", 422, "validation_failed", "lease_ms"},
      {"claim max not integer", "POST", Path("in", "/claims"), R"({"max": "ten"})", 422, "validation_failed", "max"},
      {"ack without token", "POST", Path("in", "/messages/x/ack"), "{}", 422, "validation_failed", "lease_token"},
      {"ack unknown message", "POST", Path("in", "/messages/nope/ack"), R"({"lease_token": "t"})", 404, "not_found", ""},
      {"nack negative delay", "POST", Path("in", "/messages/x/nack"), R"({"lease_token": "t", "delay_ms": -5})", 422, "validation_failed", "delay_ms"},
      {"batch ack empty", "POST", Path("in", "/acks"), R"({"messages": []})", 422, "validation_failed", "messages"},
      {"batch ack no id", "POST", Path("in", "/acks"), R"({"messages": [{"lease_token": "t"}]})", 422, "validation_failed", "messages[0].id"},
      {"unknown queue", "GET", Path("nosuch"), "", 404, "not_found", ""},
      {"bad settings", "PUT", Path("in"), R"({"max_attempts": 0, "lease_ms": 1})", 422, "validation_failed", "max_attempts"},
      {"settings unknown field", "PUT", Path("in"), R"({"visibility": 1})", 422, "validation_failed", "visibility"},
      {"backoff max below min", "PUT", Path("in"), R"({"backoff_min_ms": 5000, "backoff_max_ms": 10})", 422, "validation_failed", "backoff_max_ms"},
      {"replay neither", "POST", Path("in", "/dead-letters/replay"), "{}", 422, "validation_failed", "ids"},
      {"replay both", "POST", Path("in", "/dead-letters/replay"), R"({"ids": ["a"], "all": true})", 422, "validation_failed", "ids"},
      {"replay range backwards", "POST", Path("in", "/completed/replay"), R"({"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"})", 422, "validation_failed", "to"},
      {"dead letters bad cursor", "GET", Path("in", "/dead-letters?cursor=zzz"), "", 400, "bad_request", ""},
      {"dead letters bad limit", "GET", Path("in", "/dead-letters?limit=0"), "", 400, "bad_request", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = api.Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << r.body;
    EXPECT_EQ(Code(r), c.code) << r.body;
    if (!c.field.empty()) {
      EXPECT_TRUE(ErrorFields(r).contains(c.field)) << r.body;
    }
  }
  // Wrong media type, and no credentials.
  auto media = api.Call("POST", Path("in", "/messages"), R"({"messages": [{"payload": 1}]})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(media.status, 415) << media.body;
  auto unauth = anon.Call("POST", Path("in", "/claims"), "{}");
  EXPECT_EQ(unauth.status, 401);
  EXPECT_TRUE(unauth.HasHeader("WWW-Authenticate"));
  EXPECT_EQ(anon.Call("GET", "/api/v1/queues").status, 401);
  // Nothing above changed the queue: still one ready message, one produced.
  auto stats = Stats(api, "in");
  EXPECT_EQ(stats.at("ready").as_int64(), 1);
  EXPECT_EQ(stats.at("produced").as_int64(), 1);
}

TEST_P(Queues, MetricsAndQueueList) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  ASSERT_EQ(api.Call("POST", Path("m", "/messages"), R"({"messages": [{"payload": 1}, {"payload": 2}]})").status, 201);
  auto list = api.Call("GET", "/api/v1/queues");
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("\"m" + suffix_ + "\""), std::string::npos) << list.body;
  auto metrics = Get(server.port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string q = "m" + suffix_;
  EXPECT_NE(metrics.body.find("basalt_queue_messages{queue=\"" + q + "\",state=\"ready\"} 2"), std::string::npos);
  EXPECT_NE(metrics.body.find("basalt_queue_produced_total{queue=\"" + q + "\"} 2"), std::string::npos);
  EXPECT_NE(metrics.body.find("basalt_queue_oldest_message_age_seconds{queue=\"" + q + "\"}"), std::string::npos);
  EXPECT_NE(metrics.body.find("# TYPE basalt_queue_dead_lettered_total counter"), std::string::npos);
}

TEST_P(Queues, RetentionPurgesCompletedMessages) {
  Env env = env_;
  env.emplace_back("BASALT_QUEUE__PURGE_INTERVAL_MS", "100");
  BasaltProcess server(ProcessOptions{{}, env, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  ASSERT_EQ(api.Call("PUT", Path("keep"), R"({"retention_ms": 1})").status, 201);
  ASSERT_EQ(api.Call("POST", Path("keep", "/messages"), R"({"messages": [{"payload": 1}]})").status, 201);
  auto m = Messages(api.Call("POST", Path("keep", "/claims"), "{}"));
  ASSERT_EQ(m.size(), 1u);
  ASSERT_EQ(api.Call("POST", Path("keep", "/messages/" + m[0].id + "/ack"), R"({"lease_token": ")" + m[0].token + R"("})").status, 204);
  EXPECT_TRUE(WaitUntil([&] { return api.Call("GET", Path("keep", "/messages/" + m[0].id)).status == 404; }, 20s));
}

/// Messages for the concurrency test: BASALT_QUEUE_TEST_MESSAGES (default 5,000 so an ASan build
/// stays quick; `make bench` and the queue_concurrency_full test label run 50,000).
int ConcurrencyMessages() {
  const char* n = std::getenv("BASALT_QUEUE_TEST_MESSAGES");
  return n && *n ? std::max(100, std::atoi(n)) : 5000;
}

TEST_P(Queues, EightConsumersWhileProducingEachMessageOnce) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const int total = ConcurrencyMessages();
  constexpr int kProducers = 2;
  constexpr int kConsumers = 8;
  constexpr int kBatch = 100;
  ASSERT_EQ(api.Call("PUT", Path("load"), R"({"lease_ms": 120000})").status, 201);

  std::mutex mutex;
  std::set<std::string> produced_ids;
  std::map<std::string, int> processed;  // id -> times acked successfully
  std::atomic<int> produced{0};
  std::atomic<int> acked{0};
  std::atomic<bool> failed{false};
  const Headers headers = {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}};
  auto post = [&](RawConnection& c, const std::string& path, const std::string& body) {
    if (!c.Send(BuildRequest("POST", path, headers, body))) return HttpResponse{};
    return c.ReadResponse();
  };

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      RawConnection c(server.port(), 30s);
      for (int sent = p * kBatch; sent < total && !failed; sent += kProducers * kBatch) {
        const int n = std::min(kBatch, total - sent);
        std::string body = R"({"messages": [)";
        for (int i = 0; i < n; ++i) body += std::string(i ? "," : "") + R"({"payload": {"n": )" + std::to_string(sent + i) + "}}";
        body += "]}";
        auto r = post(c, Path("load", "/messages"), body);
        if (r.status != 201) {
          ADD_FAILURE() << "produce: " << r.status << " " << r.body << r.error;
          failed = true;
          return;
        }
        std::lock_guard lock(mutex);
        for (const auto& m : json::array(ParseJson(r.body).as_object().at("messages").as_array())) {
          produced_ids.emplace(m.as_object().at("id").as_string());
        }
        produced += n;
      }
    });
  }
  for (int k = 0; k < kConsumers; ++k) {
    threads.emplace_back([&] {
      RawConnection c(server.port(), 30s);
      while (!failed && acked.load() < total) {
        auto r = post(c, Path("load", "/claims"), R"({"max": 50, "wait_ms": 500})");
        if (r.status != 200) {
          ADD_FAILURE() << "claim: " << r.status << " " << r.body << r.error;
          failed = true;
          return;
        }
        auto got = Messages(r);
        if (got.empty()) continue;
        std::string body = R"({"messages": [)";
        for (std::size_t i = 0; i < got.size(); ++i) {
          body += std::string(i ? "," : "") + R"({"id": ")" + got[i].id + R"(", "lease_token": ")" + got[i].token + "\"}";
        }
        body += "]}";
        auto a = post(c, Path("load", "/acks"), body);
        if (a.status != 200) {
          ADD_FAILURE() << "ack: " << a.status << " " << a.body << a.error;
          failed = true;
          return;
        }
        const auto results = ParseJson(a.body).as_object().at("results").as_array();
        std::lock_guard lock(mutex);
        for (std::size_t i = 0; i < got.size(); ++i) {
          // Leases last 120 s: every ack by the holder must succeed, and no id may come twice.
          if (results[i].as_object().at("result").as_string() != "acked") {
            ADD_FAILURE() << "ack of " << got[i].id << " was " << results[i].as_object().at("result").as_string();
          }
          if (++processed[got[i].id] > 1) ADD_FAILURE() << got[i].id << " processed twice";
          EXPECT_EQ(got[i].attempt, 1);
        }
        acked += static_cast<int>(got.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed);
  EXPECT_EQ(produced.load(), total);
  EXPECT_EQ(acked.load(), total);
  EXPECT_EQ(produced_ids.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(processed.size(), static_cast<std::size_t>(total));
  for (const auto& id : produced_ids) EXPECT_EQ(processed.count(id), 1u) << id;
  auto stats = Stats(api, "load");
  EXPECT_EQ(stats.at("produced").as_int64(), total);
  EXPECT_EQ(stats.at("acked").as_int64(), total);
  EXPECT_EQ(stats.at("completed").as_int64(), total);
  EXPECT_EQ(stats.at("ready").as_int64(), 0);
  EXPECT_EQ(stats.at("in_flight").as_int64(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, Queues, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace basalt::testing
