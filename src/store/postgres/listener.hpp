#pragma once
/// Private to store/postgres: the LISTEN side of Database::Listen. One dedicated connection on its
/// own thread, started with the first Listen, blocks in poll() on the connection's socket and an
/// eventfd (no polling loop, no I/O thread involved), LISTENs every channel the hub has, and hands
/// each notification to the NotifyHub. When the connection is lost it reconnects (1 s, then up to
/// 10 s apart) and tells every listener that notifications may have been missed.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "store/notify_hub.hpp"

struct pg_conn;

namespace basalt::store::postgres {

class Listener {
 public:
  Listener(std::string conninfo, const NotifyHub& hub);
  ~Listener();  ///< Stops and joins the thread.
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Starts the thread if needed and makes it LISTEN the hub's current channels. Thread-safe.
  void Refresh();
  /// Stops the thread (idempotent).
  void Stop();

 private:
  void Run();
  void Wake();
  /// Reads what the socket has and delivers every notification libpq holds; false when the
  /// connection broke.
  bool Drain(pg_conn* conn);

  std::string conninfo_;
  const NotifyHub& hub_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::once_flag started_;
  std::thread thread_;
};

}  // namespace basalt::store::postgres
