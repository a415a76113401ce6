#include "store/postgres/listener.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <set>

#include "obs/log.hpp"

namespace basalt::store::postgres {

Listener::Listener(std::string conninfo, const NotifyHub& hub)
    : conninfo_(std::move(conninfo)), hub_(hub), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Listener::~Listener() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Listener::Refresh() {
  std::call_once(started_, [this] { thread_ = std::thread([this] { Run(); }); });
  Wake();
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

}  // namespace

bool Listener::Drain(PGconn* conn) {
  if (!PQconsumeInput(conn)) return false;  // Reads what the socket has, never blocks.
  while (PGnotify* note = PQnotifies(conn)) {
    hub_.Deliver(note->relname, note->extra ? note->extra : "");
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
      if (::poll(fds, 2, -1) < 0) continue;  // EINTR
      if (fds[1].revents & POLLIN) {
        std::uint64_t count = 0;
        (void)!::read(wake_fd_, &count, sizeof count);
      }
      if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !Drain(conn)) healthy = false;
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
