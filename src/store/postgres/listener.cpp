#include "store/postgres/listener.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "obs/log.hpp"

namespace basalt::store::postgres {

Listener::Listener(std::string conninfo, const NotifyHub& hub)
    : conninfo_(std::move(conninfo)), hub_(hub), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Listener::~Listener() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Listener::Refresh() {
  if (stop_.load()) return;
  std::call_once(started_, [this] { thread_ = std::thread([this] { Run(); }); });
  Wake();
}

void Listener::Publish(std::vector<Notification>& notes) {
  if (notes.empty() || stop_.load()) return;
  bool dropped = false;
  bool was_empty = false;
  {
    std::lock_guard lock(pending_mutex_);
    was_empty = pending_.empty();
    for (Notification& note : notes) {
      if (pending_.size() >= kMaxPending) {
        dropped = !dropped_;
        dropped_ = true;
        break;
      }
      pending_.insert(std::move(note));
    }
  }
  if (dropped) {
    obs::Log(obs::LogLevel::kWarn, "store notifications dropped",
             {{"backend", std::string_view("postgres")}, {"pending", static_cast<std::int64_t>(kMaxPending)}});
  }
  // A non-empty set has a wake-up outstanding already (the thread empties the set before sending).
  if (was_empty) Refresh();
}

void Listener::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Listener::Wake() {
  const std::uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
}

namespace {

/// Runs one command synchronously (the listener's own connection only; never an I/O thread).
bool RunCommand(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  const bool ok = result && PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  return ok;
}

/// One element of a PostgreSQL text[] literal: double-quoted, `\` and `"` escaped.
void AppendArrayElement(std::string& out, const std::string& value) {
  out += out.size() > 1 ? ",\"" : "\"";
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

bool Listener::HasPending() {
  std::lock_guard lock(pending_mutex_);
  return !pending_.empty();
}

bool Listener::SendPending(PGconn* conn, bool& sent) {
  std::set<Notification> batch;
  {
    std::lock_guard lock(pending_mutex_);
    batch.swap(pending_);
    dropped_ = false;
  }
  sent = !batch.empty();
  if (batch.empty()) return true;
  // One statement, one transaction, one NOTIFY lock for everything published since the last one.
  std::string channels = "{", payloads = "{";
  for (const auto& [channel, payload] : batch) {
    AppendArrayElement(channels, channel);
    AppendArrayElement(payloads, payload);
  }
  channels += '}';
  payloads += '}';
  const char* values[] = {channels.c_str(), payloads.c_str()};
  PGresult* result = PQexecParams(conn, "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)", 2,
                                  nullptr, values, nullptr, nullptr, 0);
  const bool ok = result && PQresultStatus(result) == PGRES_TUPLES_OK;
  PQclear(result);
  if (ok) return true;
  const bool broken = PQstatus(conn) != CONNECTION_OK;
  if (broken) {
    // Send them after the reconnect (with whatever came meanwhile).
    std::lock_guard lock(pending_mutex_);
    for (auto& note : batch) {
      if (pending_.size() >= kMaxPending) break;
      pending_.insert(note);
    }
  } else {
    obs::Log(obs::LogLevel::kWarn, "store notify failed",
             {{"backend", std::string_view("postgres")}, {"cause", std::string_view(PQerrorMessage(conn))}});
  }
  return !broken;
}

bool Listener::Drain(PGconn* conn) {
  if (!PQconsumeInput(conn)) return false;  // Reads what the socket has, never blocks.
  const int own = PQbackendPID(conn);
  while (PGnotify* note = PQnotifies(conn)) {
    // Our own NOTIFYs come back to us: this process delivered them at commit already.
    if (note->be_pid != own) hub_.Deliver(note->relname, note->extra ? note->extra : "");
    PQfreemem(note);
  }
  return PQstatus(conn) == CONNECTION_OK;
}

void Listener::Run() {
  pthread_setname_np(pthread_self(), "basalt-listen");
  int backoff_ms = 1000;
  bool first = true;
  while (!stop_.load()) {
    const char* keywords[] = {"dbname", "connect_timeout", nullptr};
    const char* values[] = {conninfo_.c_str(), "5", nullptr};
    PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    std::set<std::string> listening;
    bool healthy = conn && PQstatus(conn) == CONNECTION_OK;
    if (healthy) {
      PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
      backoff_ms = 1000;
      if (!first) obs::Log(obs::LogLevel::kInfo, "store listener reconnected", {{"backend", std::string_view("postgres")}});
    } else {
      obs::Log(obs::LogLevel::kWarn, "store listener cannot connect",
               {{"backend", std::string_view("postgres")}, {"cause", std::string_view(conn ? PQerrorMessage(conn) : "oom")}});
    }
    bool announced_lost = false;
    auto next_send = std::chrono::steady_clock::time_point{};
    while (healthy && !stop_.load()) {
      // LISTEN what the hub has now (channels were validated: [a-z_][a-z0-9_]*).
      for (const std::string& channel : hub_.Channels()) {
        if (listening.contains(channel)) continue;
        if (!RunCommand(conn, "LISTEN \"" + channel + "\"")) {
          healthy = false;
          break;
        }
        listening.insert(channel);
      }
      if (!healthy) break;
      // What committed transactions published (they wait here while this is in flight), at most
      // once per kSendInterval: under a stream of commits each statement carries many.
      int timeout_ms = -1;
      if (const auto now = std::chrono::steady_clock::now(); now >= next_send) {
        bool sent = false;
        if (!SendPending(conn, sent)) {
          healthy = false;
          break;
        }
        if (sent) next_send = now + kSendInterval;
      } else if (HasPending()) {
        timeout_ms = static_cast<int>(
            std::chrono::ceil<std::chrono::milliseconds>(next_send - now).count());
      }
      // Notifications that came while LISTEN ran are in libpq's buffer now, where poll() cannot
      // see them: deliver them before waiting, else they would wait for the next one to arrive.
      if (!Drain(conn)) {
        healthy = false;
        break;
      }
      if (!announced_lost) {
        // From here on nothing is missed; whatever happened before (the connect, a reconnect)
        // may have been: listeners re-check once.
        hub_.DeliverLost();
        first = false;
        announced_lost = true;
      }
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      if (::poll(fds, 2, timeout_ms) < 0) continue;  // EINTR
      if (fds[1].revents & POLLIN) {
        std::uint64_t count = 0;
        (void)!::read(wake_fd_, &count, sizeof count);
      }
      if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !Drain(conn)) healthy = false;
    }
    if (conn && healthy && stop_.load()) {
      bool sent = false;
      (void)SendPending(conn, sent);  // A last flush on Stop.
    }
    if (conn) PQfinish(conn);
    if (stop_.load()) break;
    first = false;
    // Wait before reconnecting, but wake at once on Stop.
    pollfd wake{wake_fd_, POLLIN, 0};
    (void)::poll(&wake, 1, backoff_ms);
    if (wake.revents & POLLIN) {
      std::uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof count);
    }
    backoff_ms = std::min(backoff_ms * 2, 10000);
  }
}

}  // namespace basalt::store::postgres
