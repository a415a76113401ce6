// Events against the real binary: the transactional outbox (seen through replay from
// Last-Event-ID 0), live subscribers over Server-Sent Events (order, filter, view rule, resume,
// slow subscriber cut off, shutdown), and webhooks against a real local receiver that fails,
// times out, redirects and recovers (signatures recomputed here, retries, the circuit breaker,
// no second delivery after a success unless redelivered), plus SSRF refusals. Both backends where
// storage is involved (PostgreSQL when BASALT_TEST_POSTGRES_URL is set).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
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



using Api = ApiClient;

/// Creates a record; its id ("" when the create failed, which the EXPECT reports).
std::string CreateRecord(const Api& api, const std::string& collection, const std::string& body) {
  auto r = api.Call("POST", "/api/v1/collections/" + collection + "/records", body);
  EXPECT_EQ(r.status, 201) << r.body;
  auto v = ParseJson(r.body);
  return v.is_object() ? std::string(v.as_object().at("id").as_string()) : "";
}

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const json::value* m = v.as_object().if_contains(key);
  return m && m->is_string() ? std::string(m->as_string()) : "";
}

// ---- a Server-Sent Events client over a raw socket ------------------------------------------------

struct SseEvent {
  std::string id, event, data;
};

class SseClient {
 public:
  SseClient(std::uint16_t port, const std::string& target, Headers headers = {}, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  }
  ~SseClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// Reads until the head is complete: the status (0 when the peer closed first).
  int Status(std::chrono::milliseconds timeout = 10s) {
    WaitFor([&] { return head_done_; }, timeout);
    return status_;
  }
  const std::string& head() const { return head_; }
  /// The body of a non-streaming answer (e.g. a problem), once the peer closed.
  std::string Body(std::chrono::milliseconds timeout = 10s) {
    WaitFor([&] { return eof_; }, timeout);
    return raw_;
  }

  /// True once the server's first comment (": connected") arrived: the subscription is live.
  bool Ready(std::chrono::milliseconds timeout = 10s) {
    WaitFor([&] { return body_.find(": connected\n\n") != std::string::npos; }, timeout);
    return body_.find(": connected\n\n") != std::string::npos;
  }

  /// The next event (comments skipped), or nullopt when the stream ended or the time passed.
  std::optional<SseEvent> Next(std::chrono::milliseconds timeout = 10s) {
    std::optional<SseEvent> out;
    WaitFor([&] { return (out = Pop()).has_value() || ended_; }, timeout);
    if (!out) out = Pop();
    return out;
  }
  /// True when the stream ends (last chunk or EOF) within `timeout`; events are kept.
  bool Ended(std::chrono::milliseconds timeout = 10s) {
    WaitFor([&] { return ended_; }, timeout);
    return ended_;
  }
  /// Events received and not yet popped, after reading whatever is available (stream ended).
  std::vector<SseEvent> Drain() {
    std::vector<SseEvent> all;
    while (auto e = Pop()) all.push_back(*e);
    return all;
  }

 private:
  template <class F>
  void WaitFor(F&& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && !eof_ && fd_ >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        ended_ = true;
        break;
      }
      raw_.append(buf, static_cast<std::size_t>(n));
      ParseJson();
    }
  }

  void ParseJson() {
    if (!head_done_) {
      const auto end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_ = raw_.substr(0, end);
      raw_.erase(0, end + 4);
      head_done_ = true;
      if (head_.size() > 12) status_ = std::atoi(head_.c_str() + 9);
      chunked_ = head_.find("Transfer-Encoding: chunked") != std::string::npos;
      if (!chunked_) return;
    }
    if (!chunked_) return;
    for (;;) {
      const auto eol = raw_.find("\r\n");
      if (eol == std::string::npos) return;
      const std::size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
      if (size == 0) {
        ended_ = true;
        return;
      }
      if (raw_.size() < eol + 2 + size + 2) return;
      body_ += raw_.substr(eol + 2, size);
      raw_.erase(0, eol + 2 + size + 2);
    }
  }

  std::optional<SseEvent> Pop() {
    for (;;) {
      const auto end = body_.find("\n\n");
      if (end == std::string::npos) return std::nullopt;
      const std::string block = body_.substr(0, end);
      body_.erase(0, end + 2);
      SseEvent e;
      bool any = false;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.starts_with("id: ")) e.id = line.substr(4), any = true;
        else if (line.starts_with("event: ")) e.event = line.substr(7), any = true;
        else if (line.starts_with("data: ")) e.data = line.substr(6), any = true;
      }
      if (any) return e;
    }
  }

  int fd_ = -1;
  std::string raw_, head_, body_;
  bool head_done_ = false, chunked_ = false, ended_ = false, eof_ = false;
  int status_ = 0;
};

// ---- a webhook receiver on loopback ---------------------------------------------------------------

struct Received {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

/// What to answer to the n-th request (0-based): a status, or hang until the client gives up.
struct Answer {
  int status = 200;
  bool hang = false;
  std::string location;
};

class Receiver {
 public:
  explicit Receiver(std::function<Answer(int)> script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Received> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
  }
  void Serve(int c) {
    std::string data;
    std::size_t need = std::string::npos;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<std::size_t>(n));
      const auto end = data.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      if (need == std::string::npos) {
        std::size_t length = 0;
        std::string lower = data.substr(0, end);
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (auto cl = lower.find("content-length:"); cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
        need = end + 4 + length;
      }
      if (data.size() >= need) break;
    }
    if (need == std::string::npos || data.size() < need) return;
    Received r;
    const auto end = data.find("\r\n\r\n");
    std::size_t pos = data.find("\r\n");
    const std::string line = data.substr(0, pos);
    r.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
    pos += 2;
    while (pos < end) {
      auto eol = data.find("\r\n", pos);
      const std::string h = data.substr(pos, eol - pos);
      pos = eol + 2;
      const auto colon = h.find(':');
      std::string name = h.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    r.body = data.substr(end + 4, need - end - 4);
    int n = 0;
    {
      std::lock_guard lock(mutex_);
      n = static_cast<int>(requests_.size());
      requests_.push_back(r);
    }
    const Answer a = script_(n);
    if (a.hang) {
      // Say nothing until the client gives up (its timeout) or the test ends.
      while (!stop_) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          char buf[256];
          if (::recv(c, buf, sizeof buf, 0) <= 0) return;
        }
      }
      return;
    }
    std::string res = "HTTP/1.1 " + std::to_string(a.status) + " X\r\nContent-Length: 2\r\nConnection: close\r\n";
    if (!a.location.empty()) res += "Location: " + a.location + "\r\n";
    res += "\r\nok";
    ::send(c, res.data(), res.size(), MSG_NOSIGNAL);
  }

  std::function<Answer(int)> script_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Received> requests_;
};

std::string Base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n))));
  return out;
}

/// Standard Webhooks: v1,base64(HMAC-SHA256(base64-decoded key, id.timestamp.body)).
std::string ExpectedSignature(const std::string& secret, const Received& r) {
  const std::string encoded = secret.substr(6);  // after whsec_
  std::string key(encoded.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()), reinterpret_cast<const unsigned char*>(encoded.data()),
                          static_cast<int>(encoded.size()));
  if (encoded.ends_with("==")) n -= 2;
  else if (encoded.ends_with("=")) n -= 1;
  key.resize(static_cast<std::size_t>(n));
  const std::string content = r.headers.at("webhook-id") + "." + r.headers.at("webhook-timestamp") + "." + r.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &len);
  return "v1," + Base64(mac, len);
}

// ---- fixtures -------------------------------------------------------------------------------------

class EventsBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    env_.emplace_back("BASALT_AUTH__ADMIN_TOKEN", kToken);
    // The safety-net poll is a minute: every event in these tests must arrive by its notification.
    env_.emplace_back("BASALT_EVENTS__POLL_MS", "60000");
    env_.emplace_back("BASALT_RATE_LIMIT__ENABLED", "false");  // the tests poll the API quickly
    if (GetParam() == "postgres") {
      const char* url = PostgresUrl();
      if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
      env_.emplace_back("BASALT_DATABASE__URL", url);
    }
    suffix_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  }
  std::string MakeCollection(const Api& api, const std::string& prefix, const std::string& view_rule) {
    const std::string name = prefix + suffix_;
    auto r = api.Call("POST", "/api/v1/collections",
                      R"({"name": ")" + name + R"(", "fields": [{"name": "title", "type": "text"},
                          {"name": "views", "type": "integer"}, {"name": "status", "type": "select", "values": ["draft", "live"]}],
                          "rules": {"list": "", "view": )" + view_rule + R"(, "create": "", "update": "", "delete": ""}})");
    EXPECT_EQ(r.status, 201) << r.body;
    return name;
  }
  Env env_;
  std::string suffix_;
};

TEST_P(EventsBackend, OutboxHasEveryCommittedWriteAndNothingOfARolledBackBatch) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "ob", R"("")");
  const std::string a = CreateRecord(api, c, R"({"title": "a", "views": 1})");
  // A batch whose second operation fails: nothing is applied, so no event exists for its first.
  auto batch = api.Call("POST", "/api/v1/batch", R"({"operations": [
      {"method": "POST", "path": "/api/v1/collections/)" + c + R"(/records", "body": {"title": "rolled back"}},
      {"method": "POST", "path": "/api/v1/collections/)" + c + R"(/records", "body": {"views": "not a number"}}]})");
  ASSERT_EQ(batch.status, 422) << batch.body;
  auto ok_batch = api.Call("POST", "/api/v1/batch", R"({"operations": [
      {"method": "PATCH", "path": "/api/v1/collections/)" + c + "/records/" + a + R"(", "body": {"views": 2}},
      {"method": "POST", "path": "/api/v1/collections/)" + c + R"(/records", "body": {"title": "b"}}]})");
  ASSERT_EQ(ok_batch.status, 200) << ok_batch.body;
  ASSERT_EQ(api.Call("DELETE", "/api/v1/collections/" + c + "/records/" + a).status, 204);

  // Replay the collection's outbox from the start.
  SseClient sse(server.port(), "/api/v1/realtime?collection=" + c, {{"Last-Event-ID", "0"}});
  ASSERT_EQ(sse.Status(), 200) << sse.head();
  EXPECT_NE(sse.head().find("text/event-stream"), std::string::npos);
  std::vector<SseEvent> got;
  for (int i = 0; i < 4; ++i) {
    auto e = sse.Next();
    ASSERT_TRUE(e) << "event " << i;
    got.push_back(*e);
  }
  EXPECT_EQ(got[0].event, "basalt.record.created");
  EXPECT_EQ(got[1].event, "basalt.record.updated");
  EXPECT_EQ(got[2].event, "basalt.record.created");
  EXPECT_EQ(got[3].event, "basalt.record.deleted");
  for (const auto& e : got) EXPECT_EQ(e.data.find("rolled back"), std::string::npos);
  EXPECT_EQ(Str(ParseJson(got[2].data).as_object().at("data"), "title"), "b");
  for (std::size_t i = 1; i < got.size(); ++i) EXPECT_LT(std::stoll(got[i - 1].id), std::stoll(got[i].id));
  // The CloudEvent itself.
  auto ce = ParseJson(got[1].data);
  ASSERT_TRUE(ce.is_object()) << got[1].data;
  EXPECT_EQ(Str(ce, "specversion"), "1.0");
  EXPECT_EQ(Str(ce, "type"), "basalt.record.updated");
  EXPECT_EQ(Str(ce, "subject"), c + "/" + a);
  EXPECT_EQ(Str(ce, "source"), "/api/v1/collections/" + c);
  EXPECT_EQ(Str(ce, "datacontenttype"), "application/json");
  EXPECT_EQ(Str(ce, "changedfields"), "views");
  EXPECT_FALSE(Str(ce, "id").empty());
  EXPECT_FALSE(Str(ce, "time").empty());
  EXPECT_EQ(ce.as_object().at("data").as_object().at("views"), json::value(2));
  EXPECT_EQ(Str(ParseJson(got[3].data).as_object().at("data"), "id"), a);
  EXPECT_FALSE(sse.Next(300ms)) << "no fifth event";
}

TEST_P(EventsBackend, LiveSubscribersGetChangesInOrderUnderFilterAndViewRule) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string pub = MakeCollection(api, "pub", R"("")");
  const std::string ruled = MakeCollection(api, "ruled", R"("status = 'live'")");
  const std::string admin_only = MakeCollection(api, "adm", "null");

  // Admin-only view rule: an anonymous subscriber is refused before the stream starts (401).
  SseClient refused(server.port(), "/api/v1/realtime?collection=" + admin_only);
  EXPECT_EQ(refused.Status(), 401) << refused.head();
  SseClient missing(server.port(), "/api/v1/realtime");
  EXPECT_EQ(missing.Status(), 400);
  SseClient unknown(server.port(), "/api/v1/realtime?collection=nope" + suffix_);
  EXPECT_EQ(unknown.Status(), 404);
  SseClient bad_filter(server.port(), "/api/v1/realtime?collection=" + pub + "&filter=" + UrlEncode("nosuchfield = 1"));
  EXPECT_GE(bad_filter.Status(), 400);
  EXPECT_LT(bad_filter.Status(), 500);

  SseClient filtered(server.port(), "/api/v1/realtime?collection=" + pub + "&filter=" + UrlEncode("views > 10"));
  ASSERT_EQ(filtered.Status(), 200);
  SseClient anon_ruled(server.port(), "/api/v1/realtime?collection=" + ruled);
  ASSERT_EQ(anon_ruled.Status(), 200);
  SseClient admin_sub(server.port(), "/api/v1/realtime?collection=" + admin_only,
                      {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_EQ(admin_sub.Status(), 200);
  // The subscriptions are registered once their first comment arrives; a write now is seen.
  ASSERT_TRUE(filtered.Ready());
  ASSERT_TRUE(anon_ruled.Ready());
  ASSERT_TRUE(admin_sub.Ready());

  const std::string low = CreateRecord(api, pub, R"({"title": "low", "views": 5})");
  const std::string high = CreateRecord(api, pub, R"({"title": "high", "views": 20})");
  ASSERT_EQ(api.Call("PATCH", "/api/v1/collections/" + pub + "/records/" + high, R"({"views": 30})").status, 200);
  ASSERT_EQ(api.Call("PATCH", "/api/v1/collections/" + pub + "/records/" + low, R"({"title": "still low"})").status, 200);
  ASSERT_EQ(api.Call("DELETE", "/api/v1/collections/" + pub + "/records/" + high).status, 204);
  ASSERT_EQ(api.Call("DELETE", "/api/v1/collections/" + pub + "/records/" + low).status, 204);
  const std::vector<std::string> expected{"basalt.record.created", "basalt.record.updated", "basalt.record.deleted"};
  for (const auto& type : expected) {
    auto e = filtered.Next();
    ASSERT_TRUE(e) << type;
    EXPECT_EQ(e->event, type);
    EXPECT_EQ(Str(ParseJson(e->data).as_object().at("data"), "id"), high) << e->data;
  }
  EXPECT_FALSE(filtered.Next(300ms)) << "the low record never matched the filter";

  const std::string draft = CreateRecord(api, ruled, R"({"title": "d", "status": "draft"})");
  const std::string live = CreateRecord(api, ruled, R"({"title": "l", "status": "live"})");
  ASSERT_EQ(api.Call("PATCH", "/api/v1/collections/" + ruled + "/records/" + draft, R"({"status": "live"})").status, 200);
  auto e1 = anon_ruled.Next();
  ASSERT_TRUE(e1);
  EXPECT_EQ(Str(ParseJson(e1->data).as_object().at("data"), "id"), live);
  auto e2 = anon_ruled.Next();
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->event, "basalt.record.updated");
  EXPECT_EQ(Str(ParseJson(e2->data).as_object().at("data"), "id"), draft);
  EXPECT_FALSE(anon_ruled.Next(300ms));

  CreateRecord(api, admin_only, R"({"title": "secret"})");
  auto e3 = admin_sub.Next();
  ASSERT_TRUE(e3);
  EXPECT_EQ(e3->event, "basalt.record.created");
}

TEST_P(EventsBackend, LastEventIdResumesWithoutGaps) {
  BasaltProcess server(ProcessOptions{{}, env_, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "res", R"("")");
  std::string second_id;
  {
    SseClient sse(server.port(), "/api/v1/realtime?collection=" + c);
    ASSERT_EQ(sse.Status(), 200);
    ASSERT_TRUE(sse.Ready());
    CreateRecord(api, c, R"({"title": "1"})");
    CreateRecord(api, c, R"({"title": "2"})");
    ASSERT_TRUE(sse.Next());
    auto second = sse.Next();
    ASSERT_TRUE(second);
    second_id = second->id;
  }
  for (int i = 3; i <= 5; ++i) CreateRecord(api, c, R"({"title": ")" + std::to_string(i) + R"("})");
  SseClient resumed(server.port(), "/api/v1/realtime?collection=" + c, {{"Last-Event-ID", second_id}});
  ASSERT_EQ(resumed.Status(), 200);
  for (int i = 3; i <= 5; ++i) {
    auto e = resumed.Next();
    ASSERT_TRUE(e) << i;
    EXPECT_EQ(Str(ParseJson(e->data).as_object().at("data"), "title"), std::to_string(i));
  }
  CreateRecord(api, c, R"({"title": "6"})");  // live after the backlog
  auto six = resumed.Next();
  ASSERT_TRUE(six);
  EXPECT_EQ(Str(ParseJson(six->data).as_object().at("data"), "title"), "6");
  EXPECT_FALSE(resumed.Next(300ms));
  // Also as a query parameter; an id never issued (or purged) is 409; garbage is 400.
  SseClient by_query(server.port(), "/api/v1/realtime?collection=" + c + "&last_event_id=" + second_id);
  ASSERT_EQ(by_query.Status(), 200);
  auto three = by_query.Next();
  ASSERT_TRUE(three);
  EXPECT_EQ(Str(ParseJson(three->data).as_object().at("data"), "title"), "3");
  SseClient gone(server.port(), "/api/v1/realtime?collection=" + c, {{"Last-Event-ID", "999999999999"}});
  EXPECT_EQ(gone.Status(), 409);
  SseClient garbage(server.port(), "/api/v1/realtime?collection=" + c, {{"Last-Event-ID", "x1"}});
  EXPECT_EQ(garbage.Status(), 400);
}

INSTANTIATE_TEST_SUITE_P(Backends, EventsBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

TEST(Events, SlowSubscriberIsCutOffWithBoundedMemory) {
  BasaltProcess server(ProcessOptions{{}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}, {"BASALT_REALTIME__MAX_PENDING", "100"},
                                           {"BASALT_RATE_LIMIT__ENABLED", "false"},
                                           {"BASALT_EVENTS__POLL_MS", "20"}}, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": "big", "fields": [{"name": "text", "type": "text"}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  SseClient slow(server.port(), "/api/v1/realtime?collection=big", {}, 4096);
  ASSERT_EQ(slow.Status(), 200);
  ASSERT_TRUE(slow.Ready());
  // About 12 MB of events, far more than the socket buffers hold, while the client reads nothing.
  const std::string text(20000, 'x');
  int created = 0;
  for (int b = 0; b < 14; ++b) {
    std::string ops;
    for (int i = 0; i < 45; ++i) {
      ops += std::string(ops.empty() ? "" : ",") +
             R"({"method": "POST", "path": "/api/v1/collections/big/records", "body": {"text": ")" + text + R"("}})";
    }
    auto r = api.Call("POST", "/api/v1/batch", R"({"operations": [)" + ops + "]}");
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
    created += 45;
  }
  ASSERT_TRUE(slow.Ended(30s)) << "the slow subscriber was not cut off";
  const auto events = slow.Drain();
  ASSERT_FALSE(events.empty());
  EXPECT_LT(static_cast<int>(events.size()), created);
  EXPECT_EQ(events.back().event, "basalt.overflow");
  // The server is fine: a new subscriber works.
  SseClient next(server.port(), "/api/v1/realtime?collection=big");
  ASSERT_EQ(next.Status(), 200);
}

TEST(Events, ShutdownEndsTheStream) {
  BasaltProcess server(ProcessOptions{{}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": "s", "fields": [{"name": "t", "type": "text"}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  SseClient sse(server.port(), "/api/v1/realtime?collection=s");
  ASSERT_EQ(sse.Status(), 200);
  ASSERT_TRUE(sse.Ready());
  server.Signal(SIGTERM);
  EXPECT_TRUE(sse.Ended(10s));
  EXPECT_EQ(server.WaitExit(20s), 0) << server.LogText();
}

TEST(Events, WorkerRoleServesOnlyOperations) {
  BasaltProcess worker(ProcessOptions{{"--role", "worker"}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, true});
  ASSERT_TRUE(worker.started()) << worker.start_error();
  EXPECT_EQ(Get(worker.port(), "/healthz").status, 200);
  EXPECT_EQ(Get(worker.port(), "/readyz").status, 200);
  EXPECT_EQ(Get(worker.port(), "/api/v1/collections", {{"Authorization", std::string("Bearer ") + kToken}}).status, 404);
  EXPECT_EQ(Get(worker.port(), "/api/v1/realtime?collection=x").status, 404);
  EXPECT_EQ(RunBasalt({"serve", "--role", "bogus", "--data-dir", "{tmp}"}).exit_code, 2);
}

// ---- webhooks -------------------------------------------------------------------------------------

TEST(Webhooks, RegistrationValidatesAndRefusesPrivateDestinations) {
  BasaltProcess server(ProcessOptions{{}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}}, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  EXPECT_EQ(api.Anonymous().Call("GET", "/api/v1/webhooks").status, 401);
  EXPECT_EQ(api.Anonymous().Call("POST", "/api/v1/webhooks", R"({"url": "https://example.com/", "events": ["*"]})").status, 401);
  for (const char* url : {"http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
                          "http://localhost/x", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/", "http://192.168.0.10/"}) {
    auto r = api.Call("POST", "/api/v1/webhooks", R"({"url": ")" + std::string(url) + R"(", "events": ["posts.created"]})");
    EXPECT_EQ(r.status, 422) << url << " " << r.body;
    EXPECT_NE(r.body.find("refused"), std::string::npos) << r.body;
  }
  for (const char* body : {R"({"events": ["posts.created"]})", R"({"url": "ftp://example.com/", "events": ["*"]})",
                           R"({"url": "https://example.com/"})", R"({"url": "https://example.com/", "events": []})",
                           R"({"url": "https://example.com/", "events": ["posts.exploded"]})",
                           R"({"url": "https://example.com/", "events": ["Posts.created"]})",
                           R"({"url": "https://example.com/", "events": ["*", "*"]})",
                           R"({"url": "https://example.com/", "events": ["*"], "extra": 1})",
                           R"({"url": 5, "events": ["*"]})"}) {
    EXPECT_EQ(api.Call("POST", "/api/v1/webhooks", body).status, 422) << body;
  }
  EXPECT_EQ(api.Call("POST", "/api/v1/webhooks", "[").status, 400);
  EXPECT_EQ(api.Call("GET", "/api/v1/webhooks/nope").status, 404);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/nope").status, 404);
  EXPECT_EQ(api.Call("GET", "/api/v1/webhooks/nope/deliveries").status, 404);
  EXPECT_EQ(api.Call("POST", "/api/v1/webhooks/nope/deliveries/x/redeliver").status, 404);
}

class WebhooksBackend : public EventsBackend {};

TEST_P(WebhooksBackend, SignedRetriedBreakerOpensAndClosesNoDuplicateAfterSuccess) {
  // 500, then a hang (timeout), then 500 again as the half-open probe, then success.
  Receiver receiver([](int n) {
    if (n == 0 || n == 2) return Answer{500};
    if (n == 1) return Answer{200, true};
    return Answer{200};
  });
  Env env = env_;
  env.emplace_back("BASALT_WEBHOOKS__ALLOW_PRIVATE", "true");
  env.emplace_back("BASALT_WEBHOOKS__TIMEOUT_MS", "700");
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_BASE_MS", "50");
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_MAX_MS", "100");
  env.emplace_back("BASALT_WEBHOOKS__BREAKER_THRESHOLD", "2");
  env.emplace_back("BASALT_WEBHOOKS__BREAKER_COOLDOWN_MS", "600");
  env.emplace_back("BASALT_WEBHOOKS__MAX_ATTEMPTS", "10");
  BasaltProcess server(ProcessOptions{{}, env, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "wh", R"("")");
  auto created = api.Call("POST", "/api/v1/webhooks",
                          R"({"url": ")" + receiver.url() + R"(", "events": [")" + c + R"(.created"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto hook = ParseJson(created.body);
  const std::string hook_id = Str(hook, "id");
  const std::string secret = Str(hook, "secret");
  ASSERT_TRUE(secret.starts_with("whsec_")) << secret;
  EXPECT_EQ(created.Header("Location").value_or(""), "/api/v1/webhooks/" + hook_id);
  auto listed = api.Call("GET", "/api/v1/webhooks");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(secret), std::string::npos) << "the secret is shown once";

  const std::string first = CreateRecord(api, c, R"({"title": "one"})");
  // The breaker opens after two consecutive failures (500, timeout).
  bool saw_open = false;
  ASSERT_TRUE(WaitUntil([&] {
    auto r = api.Call("GET", "/api/v1/webhooks/" + hook_id);
    auto b = ParseJson(r.body).as_object().at("breaker");
    saw_open |= Str(b, "state") == "open";
    return saw_open;
  }, 20s)) << server.LogText();
  // A non-matching event (update) is never delivered.
  ASSERT_EQ(api.Call("PATCH", "/api/v1/collections/" + c + "/records/" + first, R"({"title": "one!"})").status, 200);
  // Then a failed probe (500), then success closes it.
  std::string delivery_id;
  ASSERT_TRUE(WaitUntil([&] {
    auto r = api.Call("GET", "/api/v1/webhooks/" + hook_id + "/deliveries");
    auto items = ParseJson(r.body).as_object().at("items").as_array();
    if (items.empty() || Str(items[0], "state") != "succeeded") return false;
    delivery_id = Str(items[0], "id");
    return true;
  }, 30s)) << server.LogText();
  auto breaker = ParseJson(api.Call("GET", "/api/v1/webhooks/" + hook_id).body).as_object().at("breaker");
  EXPECT_EQ(Str(breaker, "state"), "closed");
  auto log = ParseJson(api.Call("GET", "/api/v1/webhooks/" + hook_id + "/deliveries").body)
                 .as_object().at("items").as_array().at(0).as_object();
  EXPECT_EQ(log.at("attempts"), json::value(4));
  EXPECT_EQ(log.at("status_code"), json::value(200));
  const auto& attempts = log.at("log").as_array();
  ASSERT_EQ(attempts.size(), 4u) << json::serialize(log);
  EXPECT_EQ(attempts[0].as_object().at("status_code"), json::value(500));
  EXPECT_TRUE(attempts[1].as_object().at("status_code").is_null());
  EXPECT_NE(Str(attempts[1], "error").find("timed out"), std::string::npos) << json::serialize(attempts[1]);
  EXPECT_EQ(attempts[2].as_object().at("status_code"), json::value(500));
  EXPECT_EQ(attempts[3].as_object().at("status_code"), json::value(200));
  // While the breaker was open the message went back to the queue without spending attempts: its
  // claim count is the four sends, not more.
  auto message = api.Call("GET", "/api/v1/queues/basalt.webhooks/messages/" + delivery_id);
  ASSERT_EQ(message.status, 200) << message.body;
  EXPECT_EQ(ParseJson(message.body).as_object().at("attempt"), json::value(4)) << message.body;

  // Every request is the same signed CloudEvent (same webhook-id across retries).
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 4u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.target, "/hook");
    EXPECT_EQ(r.headers.at("webhook-signature"), ExpectedSignature(secret, r));
    EXPECT_EQ(r.headers.at("webhook-id"), requests[0].headers.at("webhook-id"));
    auto ce = ParseJson(r.body);
    EXPECT_EQ(Str(ce, "type"), "basalt.record.created");
    EXPECT_EQ(Str(ce, "id"), r.headers.at("webhook-id"));
    EXPECT_EQ(Str(ce.as_object().at("data"), "id"), first);
  }
  // A second record: delivered once; the first is not delivered again.
  const std::string second = CreateRecord(api, c, R"({"title": "two"})");
  ASSERT_TRUE(WaitUntil([&] { return receiver.count() >= 5; }, 20s));
  auto after = receiver.requests();
  EXPECT_EQ(Str(ParseJson(after[4].body).as_object().at("data"), "id"), second);
  // Redelivery on purpose produces a new message: a new delivery pointing back at the first,
  // sent with the same webhook-id.
  auto redelivered = api.Call("POST", "/api/v1/webhooks/" + hook_id + "/deliveries/" + delivery_id + "/redeliver");
  ASSERT_EQ(redelivered.status, 202) << redelivered.body;
  const std::string again_id = Str(ParseJson(redelivered.body), "id");
  ASSERT_FALSE(again_id.empty());
  EXPECT_NE(again_id, delivery_id);
  EXPECT_EQ(Str(ParseJson(redelivered.body), "redelivery_of"), delivery_id);
  ASSERT_TRUE(WaitUntil([&] { return receiver.count() >= 6; }, 20s));
  after = receiver.requests();
  EXPECT_EQ(after[5].headers.at("webhook-id"), requests[0].headers.at("webhook-id"));
  EXPECT_EQ(after[5].headers.at("webhook-signature"), ExpectedSignature(secret, after[5]));
  ASSERT_TRUE(WaitUntil([&] {
    auto r = api.Call("GET", "/api/v1/webhooks/" + hook_id + "/deliveries");
    const json::value body = ParseJson(r.body);
    for (const auto& item : body.as_object().at("items").as_array()) {
      if (Str(item, "id") == again_id) return Str(item, "state") == "succeeded" && item.as_object().at("attempts") == json::value(1);
    }
    return false;
  }, 20s));
  EXPECT_EQ(receiver.count(), 6u) << "no duplicate deliveries";
  for (const auto& r : receiver.requests()) EXPECT_EQ(Str(ParseJson(r.body), "type"), "basalt.record.created");
  // Update and delete of the webhook.
  auto patched = api.Call("PATCH", "/api/v1/webhooks/" + hook_id, R"({"active": false})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(ParseJson(patched.body).as_object().at("active"), json::value(false));
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
  EXPECT_EQ(api.Call("GET", "/api/v1/webhooks/" + hook_id).status, 404);
}

TEST_P(WebhooksBackend, RedirectsAreNotFollowed) {
  Receiver target([](int) { return Answer{200}; });
  Receiver redirector([&target](int) { return Answer{302, false, target.url("/elsewhere")}; });
  Env env = env_;
  env.emplace_back("BASALT_WEBHOOKS__ALLOW_PRIVATE", "true");
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_BASE_MS", "50");
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_MAX_MS", "50");
  env.emplace_back("BASALT_WEBHOOKS__MAX_ATTEMPTS", "2");
  BasaltProcess server(ProcessOptions{{}, env, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "rd", R"("")");
  auto created = api.Call("POST", "/api/v1/webhooks", R"({"url": ")" + redirector.url() + R"(", "events": [")" + c + R"(.*"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string hook_id = Str(ParseJson(created.body), "id");
  CreateRecord(api, c, R"({"title": "x"})");
  json::object item;
  ASSERT_TRUE(WaitUntil([&] {
    auto r = api.Call("GET", "/api/v1/webhooks/" + hook_id + "/deliveries");
    auto items = ParseJson(r.body).as_object().at("items").as_array();
    if (items.empty() || Str(items[0], "state") != "failed") return false;
    item = items[0].as_object();
    return true;
  }, 20s)) << server.LogText();
  EXPECT_EQ(item.at("status_code"), json::value(302));
  EXPECT_NE(Str(item, "error").find("redirect"), std::string::npos) << json::serialize(item);
  EXPECT_EQ(redirector.count(), 2u);
  EXPECT_EQ(target.count(), 0u);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

// ---- webhooks through the queue (basalt.webhooks) ----------------------------------------------------

/// Registers a webhook; {id, secret} (empty when it failed, which the EXPECT reports).
std::pair<std::string, std::string> CreateHook(const Api& api, const std::string& url, const std::string& events) {
  auto r = api.Call("POST", "/api/v1/webhooks", R"({"url": ")" + url + R"(", "events": )" + events + "}");
  EXPECT_EQ(r.status, 201) << r.body;
  const auto v = ParseJson(r.body);
  return {Str(v, "id"), Str(v, "secret")};
}

/// The webhook's deliveries (newest first).
json::array Deliveries(const Api& api, const std::string& hook_id) {
  auto r = api.Call("GET", "/api/v1/webhooks/" + hook_id + "/deliveries");
  const auto v = ParseJson(r.body);
  if (r.status != 200 || !v.is_object()) return {};
  return v.as_object().at("items").as_array();
}

/// Env for fast retries against a loopback receiver.
Env FastRetries(Env env, const std::string& max_attempts, const std::string& backoff_ms = "50") {
  env.emplace_back("BASALT_WEBHOOKS__ALLOW_PRIVATE", "true");
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_BASE_MS", backoff_ms);
  env.emplace_back("BASALT_WEBHOOKS__BACKOFF_MAX_MS", std::to_string(2 * std::stoi(backoff_ms)));
  env.emplace_back("BASALT_WEBHOOKS__BREAKER_THRESHOLD", "1000");
  env.emplace_back("BASALT_WEBHOOKS__MAX_ATTEMPTS", max_attempts);
  return env;
}

TEST_P(WebhooksBackend, FailingReceiverGetsTheMessageAfterRetries) {
  Receiver receiver([](int n) { return Answer{n < 3 ? 500 : 204}; });  // fails 3 times, then succeeds
  BasaltProcess server(ProcessOptions{{}, FastRetries(env_, "5"), true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "rt", R"("")");
  const auto [hook_id, secret] = CreateHook(api, receiver.url(), R"([")" + c + R"(.created"])");
  const std::string record = CreateRecord(api, c, R"({"title": "retry me"})");
  json::object item;
  ASSERT_TRUE(WaitUntil([&] {
    auto items = Deliveries(api, hook_id);
    if (items.size() != 1 || Str(items[0], "state") != "succeeded") return false;
    item = items[0].as_object();
    return true;
  }, 30s)) << server.LogText();
  EXPECT_EQ(item.at("attempts"), json::value(4));
  EXPECT_EQ(item.at("status_code"), json::value(204));
  EXPECT_TRUE(item.at("next_attempt_at").is_null());
  EXPECT_FALSE(item.at("delivered_at").is_null());
  const auto& log = item.at("log").as_array();
  ASSERT_EQ(log.size(), 4u) << json::serialize(item);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log[i].as_object().at("attempt"), json::value(static_cast<std::int64_t>(i + 1)));
    EXPECT_EQ(log[i].as_object().at("status_code"), json::value(i < 3 ? 500 : 204));
  }
  EXPECT_EQ(Str(log[0], "error"), "HTTP 500");
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 4u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.headers.at("webhook-signature"), ExpectedSignature(secret, r));
    EXPECT_EQ(r.headers.at("webhook-id"), requests[0].headers.at("webhook-id"));
    EXPECT_EQ(Str(ParseJson(r.body).as_object().at("data"), "id"), record);
  }
  // The delivery is a message of the system queue, now completed (acked once, after 4 claims).
  auto message = api.Call("GET", "/api/v1/queues/basalt.webhooks/messages/" + Str(item, "id"));
  ASSERT_EQ(message.status, 200) << message.body;
  const auto m = ParseJson(message.body);
  EXPECT_EQ(Str(m, "state"), "completed");
  EXPECT_EQ(m.as_object().at("attempt"), json::value(4));
  EXPECT_EQ(Str(m.as_object().at("payload"), "webhook_id"), hook_id);
  EXPECT_EQ(receiver.count(), 4u) << "nothing is delivered twice after a success";
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

TEST_P(WebhooksBackend, AlwaysFailingReceiverEndsInDeadLettersAndCanBeReplayed) {
  std::atomic<bool> healthy{false};
  Receiver receiver([&healthy](int) { return Answer{healthy.load() ? 200 : 503}; });
  BasaltProcess server(ProcessOptions{{}, FastRetries(env_, "3"), true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "dl", R"("")");
  const auto [hook_id, secret] = CreateHook(api, receiver.url(), R"([")" + c + R"(.*"])");
  CreateRecord(api, c, R"({"title": "doomed"})");
  std::string delivery_id;
  ASSERT_TRUE(WaitUntil([&] {
    auto items = Deliveries(api, hook_id);
    if (items.size() != 1 || Str(items[0], "state") != "failed") return false;
    delivery_id = Str(items[0], "id");
    return true;
  }, 30s)) << server.LogText();
  auto failed = Deliveries(api, hook_id).at(0).as_object();
  EXPECT_EQ(failed.at("attempts"), json::value(3));
  EXPECT_EQ(Str(failed, "error"), "HTTP 503");
  EXPECT_EQ(receiver.count(), 3u);
  // It is a dead letter of the webhook queue, with its last error.
  auto dead = api.Call("GET", "/api/v1/queues/basalt.webhooks/dead-letters?limit=500");
  ASSERT_EQ(dead.status, 200) << dead.body;
  json::object letter;
  const json::value dead_body = ParseJson(dead.body);
  for (const auto& d : dead_body.as_object().at("items").as_array()) {
    if (Str(d, "id") == delivery_id) letter = d.as_object();
  }
  ASSERT_FALSE(letter.empty()) << dead.body.substr(0, 2000);
  EXPECT_EQ(Str(letter, "last_error"), "HTTP 503");
  EXPECT_EQ(letter.at("attempt"), json::value(3));
  EXPECT_EQ(Str(letter.at("payload"), "webhook_id"), hook_id);
  // Only Basalt produces to, consumes from and configures its own queues.
  EXPECT_EQ(api.Call("POST", "/api/v1/queues/basalt.webhooks/messages", R"({"messages": [{"payload": {}}]})").status, 403);
  EXPECT_EQ(api.Call("POST", "/api/v1/queues/basalt.webhooks/claims", R"({"max": 1})").status, 403);
  EXPECT_EQ(api.Call("POST", "/api/v1/queues/basalt.webhooks/messages/" + delivery_id + "/ack",
                     R"({"lease_token": "x"})").status, 403);
  EXPECT_EQ(api.Call("PUT", "/api/v1/queues/basalt.webhooks", R"({"max_attempts": 1})").status, 403);
  EXPECT_EQ(api.Call("PUT", "/api/v1/queues/basalt.mine", "{}").status, 403);
  EXPECT_EQ(api.Call("GET", "/api/v1/queues/basalt.webhooks").status, 200);
  // The receiver recovers; replaying the dead letter delivers it (same message, the count goes on).
  healthy = true;
  auto replay = api.Call("POST", "/api/v1/queues/basalt.webhooks/dead-letters/replay", R"({"ids": [")" + delivery_id + R"("]})");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(ParseJson(replay.body).as_object().at("replayed"), json::value(1));
  ASSERT_TRUE(WaitUntil([&] {
    auto items = Deliveries(api, hook_id);
    return items.size() == 1 && Str(items[0], "state") == "succeeded";
  }, 30s)) << server.LogText();
  auto replayed = Deliveries(api, hook_id).at(0).as_object();
  EXPECT_EQ(replayed.at("attempts"), json::value(4));
  EXPECT_EQ(replayed.at("log").as_array().size(), 4u);
  EXPECT_EQ(receiver.count(), 4u);
  const auto requests = receiver.requests();
  EXPECT_EQ(requests[3].headers.at("webhook-signature"), ExpectedSignature(secret, requests[3]));
  EXPECT_EQ(requests[3].body, requests[0].body);
  // The webhook's own redelivery endpoint sends it once more, as a new delivery.
  auto again = api.Call("POST", "/api/v1/webhooks/" + hook_id + "/deliveries/" + delivery_id + "/redeliver");
  ASSERT_EQ(again.status, 202) << again.body;
  ASSERT_TRUE(WaitUntil([&] { return receiver.count() >= 5; }, 20s)) << server.LogText();
  EXPECT_EQ(receiver.requests()[4].headers.at("webhook-id"), requests[0].headers.at("webhook-id"));
  EXPECT_EQ(api.Call("POST", "/api/v1/webhooks/" + hook_id + "/deliveries/nope/redeliver").status, 404);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

TEST_P(WebhooksBackend, RolledBackWriteProducesNoDelivery) {
  Receiver receiver([](int) { return Answer{200}; });
  BasaltProcess server(ProcessOptions{{}, FastRetries(env_, "3"), true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = MakeCollection(api, "rb", R"("")");
  const auto [hook_id, secret] = CreateHook(api, receiver.url(), R"([")" + c + R"(.*"])");
  // The batch's second operation fails: the whole batch rolls back, its first create included.
  auto batch = api.Call("POST", "/api/v1/batch", R"({"operations": [
      {"method": "POST", "path": "/api/v1/collections/)" + c + R"(/records", "body": {"title": "rolled back"}},
      {"method": "POST", "path": "/api/v1/collections/)" + c + R"(/records", "body": {"views": "not a number"}}]})");
  ASSERT_EQ(batch.status, 422) << batch.body;
  const std::string kept = CreateRecord(api, c, R"({"title": "kept"})");
  ASSERT_TRUE(WaitUntil([&] {
    auto items = Deliveries(api, hook_id);
    return !items.empty() && Str(items[0], "state") == "succeeded";
  }, 20s)) << server.LogText();
  // The committed write came after the rolled-back one, so its delivery proves the other never existed.
  EXPECT_EQ(Deliveries(api, hook_id).size(), 1u);
  ASSERT_EQ(receiver.count(), 1u);
  EXPECT_EQ(Str(ParseJson(receiver.requests()[0].body).as_object().at("data"), "id"), kept);
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

TEST_P(WebhooksBackend, KilledServerLosesNoQueuedDelivery) {
  std::atomic<bool> healthy{false};
  Receiver receiver([&healthy](int) { return Answer{healthy.load() ? 200 : 503}; });
  TempDir data;
  // Retries wait 0.5-1 s: at the kill the messages are almost surely waiting, not leased (a leased
  // one comes back after its lease, at least 60 s; the deadline below allows for that too).
  const Env env = FastRetries(env_, "100", "1000");
  std::string hook_id, c;
  std::vector<std::string> records;
  {
    BasaltProcess first(ProcessOptions{.env = env, .data_dir = data.path()});
    ASSERT_TRUE(first.started()) << first.start_error();
    const Api api{first.port()};
    c = MakeCollection(api, "kill", R"("")");
    hook_id = CreateHook(api, receiver.url(), R"([")" + c + R"(.created"])").first;
    for (int i = 0; i < 3; ++i) records.push_back(CreateRecord(api, c, R"({"title": "t)" + std::to_string(i) + R"("})"));
    // Every record's delivery was tried, failed, and waits in the queue for its retry when the
    // server dies (next_attempt_at is set while the message is ready, not leased).
    ASSERT_TRUE(WaitUntil([&] {
      auto items = Deliveries(api, hook_id);
      if (items.size() != 3) return false;
      for (const auto& item : items) {
        if (item.as_object().at("attempts") == json::value(0) || item.as_object().at("next_attempt_at").is_null())
          return false;
      }
      return true;
    }, 20s)) << first.LogText();
    first.Signal(SIGKILL);
    ASSERT_EQ(first.WaitExit(10s), std::optional<int>(128 + SIGKILL));
  }
  healthy = true;
  const std::size_t before = receiver.count();
  BasaltProcess second(ProcessOptions{.env = env, .data_dir = data.path()});
  ASSERT_TRUE(second.started()) << second.start_error();
  const Api api{second.port()};
  // Leases taken by the dead process run out (webhook lease: 60 s at least); then each message is
  // delivered. Poll the log rather than the receiver: a success is recorded before the ack.
  ASSERT_TRUE(WaitUntil([&] {
    auto items = Deliveries(api, hook_id);
    if (items.size() != 3) return false;
    for (const auto& item : items) {
      if (Str(item, "state") != "succeeded") return false;
    }
    return true;
  }, 120s)) << second.LogText();
  std::set<std::string> delivered;
  const auto requests = receiver.requests();
  for (std::size_t i = before; i < requests.size(); ++i) {
    delivered.insert(Str(ParseJson(requests[i].body).as_object().at("data"), "id"));
  }
  EXPECT_EQ(delivered, std::set<std::string>(records.begin(), records.end()));
  EXPECT_EQ(api.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

// Two processes on one PostgreSQL database, the safety-net poll at a minute: an `api` instance
// (no webhook worker) and an `all` instance. Writes on either reach the other's live subscribers
// and the webhook worker only through LISTEN/NOTIFY.
TEST(EventsPostgres, InstancesWakeEachOtherThroughListenNotify) {
  const char* url = PostgresUrl();
  if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
  Receiver receiver([](int) { return Answer{200}; });
  Env env{{"BASALT_AUTH__ADMIN_TOKEN", kToken},       {"BASALT_EVENTS__POLL_MS", "60000"},
          {"BASALT_RATE_LIMIT__ENABLED", "false"},    {"BASALT_DATABASE__URL", url},
          {"BASALT_WEBHOOKS__ALLOW_PRIVATE", "true"}};
  BasaltProcess api_only(ProcessOptions{{"--role", "api"}, env, true});
  ASSERT_TRUE(api_only.started()) << api_only.start_error();
  BasaltProcess all(ProcessOptions{{}, env, true});
  ASSERT_TRUE(all.started()) << all.start_error();
  const Api a{api_only.port()};
  const Api b{all.port()};
  const std::string c = "lnx" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  ASSERT_EQ(a.Call("POST", "/api/v1/collections", R"({"name": ")" + c + R"(", "fields": [{"name": "title", "type": "text"}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  const auto [hook_id, secret] = CreateHook(a, receiver.url(), R"([")" + c + R"(.created"])");
  // The api instance's subscriber sees a write made on the other instance.
  SseClient sse(api_only.port(), "/api/v1/realtime?collection=" + c);
  ASSERT_EQ(sse.Status(), 200);
  ASSERT_TRUE(sse.Ready());
  ASSERT_TRUE(WaitUntil([&] { return b.Call("GET", "/api/v1/collections/" + c).status == 200; }, 10s));
  const std::string on_b = CreateRecord(b, c, R"({"title": "written on b"})");
  auto seen = sse.Next();
  ASSERT_TRUE(seen) << "no event from the other instance";
  EXPECT_EQ(Str(ParseJson(seen->data).as_object().at("data"), "id"), on_b);
  // A write on the api instance is delivered by the other instance's webhook worker.
  const std::string on_a = CreateRecord(a, c, R"({"title": "written on a"})");
  ASSERT_TRUE(WaitUntil([&] { return receiver.count() >= 2; }, 20s)) << all.LogText();
  std::set<std::string> delivered;
  for (const auto& r : receiver.requests()) {
    EXPECT_EQ(r.headers.at("webhook-signature"), ExpectedSignature(secret, r));
    delivered.insert(Str(ParseJson(r.body).as_object().at("data"), "id"));
  }
  EXPECT_EQ(delivered, (std::set<std::string>{on_a, on_b}));
  EXPECT_EQ(a.Call("DELETE", "/api/v1/webhooks/" + hook_id).status, 204);
}

// A single create on PostgreSQL is one round trip: BEGIN, the record's INSERT, the outbox INSERT
// (returning the txid its notification carries) and COMMIT, pipelined, with no NOTIFY inside the
// transaction (notifications are published after the commit; see store/postgres/listener.hpp). An
// update is two (its SELECT, then the rest). Errors of the pipelined statements still map to
// their problem and roll everything back. "store round trip" lines (trace level) carry each
// exchange's statement text.
TEST(EventsPostgres, CreateIsOneRoundTripAndItsErrorsStillMapAndRollBack) {
  const char* url = PostgresUrl();
  if (url == nullptr || *url == '\0') GTEST_SKIP() << "BASALT_TEST_POSTGRES_URL is not set";
  Env env{{"BASALT_AUTH__ADMIN_TOKEN", kToken}, {"BASALT_EVENTS__POLL_MS", "60000"},
          {"BASALT_RATE_LIMIT__ENABLED", "false"}, {"BASALT_DATABASE__URL", url}, {"BASALT_LOG__LEVEL", "trace"}};
  BasaltProcess server(ProcessOptions{{}, env, true});
  ASSERT_TRUE(server.started()) << server.start_error();
  const Api api{server.port()};
  const std::string c = "rt" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
  ASSERT_EQ(api.Call("POST", "/api/v1/collections", R"({"name": ")" + c + R"(", "fields": [
      {"name": "title", "type": "text", "unique": true}, {"name": "views", "type": "integer"}],
      "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""}})").status, 201);
  // A live subscriber: with the safety-net poll at a minute, only the notification brings events.
  SseClient sse(server.port(), "/api/v1/realtime?collection=" + c);
  ASSERT_EQ(sse.Status(), 200);
  ASSERT_TRUE(sse.Ready());

  const std::string id = CreateRecord(api, c, R"({"title": "one", "views": 1})");
  ASSERT_FALSE(id.empty());
  auto created = sse.Next();
  ASSERT_TRUE(created) << "no notification for the create";
  EXPECT_EQ(created->event, "basalt.record.created");
  EXPECT_EQ(Str(ParseJson(created->data).as_object().at("data"), "id"), id);

  // A unique violation in the pipelined INSERT: 409, and nothing of it stays (no record, no event).
  auto dup = api.Call("POST", "/api/v1/collections/" + c + "/records", R"({"title": "one", "views": 2})");
  EXPECT_EQ(dup.status, 409) << dup.body;
  EXPECT_EQ(dup.Header("Content-Type").value_or(""), "application/problem+json");
  auto list = api.Call("GET", "/api/v1/collections/" + c + "/records");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(ParseJson(list.body).as_object().at("items").as_array().size(), 1u) << list.body;

  // An update: its SELECT, then UPDATE + outbox + COMMIT; a unique violation there is a 409 too.
  const std::string other = CreateRecord(api, c, R"({"title": "two"})");
  auto patched = api.Call("PATCH", "/api/v1/collections/" + c + "/records/" + id, R"({"views": 5})");
  EXPECT_EQ(patched.status, 200) << patched.body;
  auto clash = api.Call("PATCH", "/api/v1/collections/" + c + "/records/" + other, R"({"title": "one"})");
  EXPECT_EQ(clash.status, 409) << clash.body;
  EXPECT_EQ(Str(ParseJson(api.Call("GET", "/api/v1/collections/" + c + "/records/" + other).body), "title"), "two");
  // Exactly the committed writes' events, in order: created, created, updated (not the clash).
  auto second = sse.Next();
  auto third = sse.Next();
  ASSERT_TRUE(second && third);
  EXPECT_EQ(second->event, "basalt.record.created");
  EXPECT_EQ(third->event, "basalt.record.updated");
  EXPECT_EQ(ParseJson(third->data).as_object().at("data").as_object().at("views"), json::value(5));
  EXPECT_FALSE(sse.Next(300ms)) << "an event of a rolled-back write";

  // Round trips that wrote the table: the three creates (two committed, one refused) one each,
  // each carrying BEGIN, both INSERTs and COMMIT (no pg_notify); each update one SELECT and one
  // exchange with UPDATE, outbox and COMMIT.
  const std::string table = "\\\"c_" + c + "\\\"";
  struct Trips {
    int creates = 0, whole_creates = 0, updates = 0, whole_updates = 0;
  };
  auto count = [&] {
    const std::string log = server.LogText();
    Trips t;
    for (std::size_t pos = log.find("\"store round trip\""); pos != std::string::npos;
         pos = log.find("\"store round trip\"", pos + 1)) {
      const std::string line = log.substr(pos, log.find('\n', pos) - pos);
      const bool whole = line.find("BEGIN; ") != std::string::npos && line.find("INSERT INTO basalt_events") != std::string::npos &&
                         line.find("RETURNING txid") != std::string::npos && line.find("pg_notify") == std::string::npos &&
                         line.find("COMMIT") != std::string::npos;
      if (line.find("INSERT INTO " + table) != std::string::npos) {
        ++t.creates;
        if (whole) ++t.whole_creates;
      }
      if (line.find("UPDATE " + table) != std::string::npos) {
        ++t.updates;
        if (line.find("INSERT INTO basalt_events") != std::string::npos && line.find("COMMIT") != std::string::npos) ++t.whole_updates;
      }
    }
    return t;
  };
  auto trips = [&] {
    const std::string log = server.LogText();
    std::string out;
    for (std::size_t pos = log.find("\"store round trip\""); pos != std::string::npos && out.size() < 8000;
         pos = log.find("\"store round trip\"", pos + 1))
      out += log.substr(pos, log.find('\n', pos) - pos) + "\n";
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] { return count().creates >= 3 && count().updates >= 2; }, 5s)) << trips();
  const Trips t = count();
  EXPECT_EQ(t.creates, 3) << trips();
  EXPECT_EQ(t.whole_creates, 3);
  EXPECT_EQ(t.updates, 2);
  EXPECT_EQ(t.whole_updates, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, WebhooksBackend, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace basalt::testing
