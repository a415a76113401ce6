#pragma once
/// Private to store/postgres: the cross-process side of Database::Listen and Transaction::Notify.
/// One dedicated connection on its own thread, started with the first Listen or Publish, blocks
/// in poll() on the connection's socket and an eventfd (no polling loop, no I/O thread involved).
///
/// - Listening: it LISTENs every channel the hub has and hands each notification from another
///   connection to the NotifyHub.
/// - Publishing: committed transactions' notifications (Publish, after COMMIT; this process's
///   listeners already got them from PostgresDatabase) are sent to the other processes by
///   pg_notify on this same connection, coalesced: at most one such statement is in flight, the
///   notifications published meanwhile wait and go together in the next one (duplicates merged),
///   sent kSendInterval after the previous one at the earliest.
///   A NOTIFY takes a cluster-wide lock at commit; sending them here, instead of inside each
///   write transaction, keeps every write's COMMIT off that lock. The connection skips its own
///   notifications when they come back (they were delivered in-process already).
///
/// When the connection is lost it reconnects (1 s, then up to 10 s apart), tells every listener
/// that notifications may have been missed, and sends what was published meanwhile (at most
/// kMaxPending distinct notifications wait; beyond that they are dropped: receivers' safety-net
/// polls find the writes).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/notify_hub.hpp"

struct pg_conn;

namespace basalt::store::postgres {

/// A notification: (channel, payload).
using Notification = std::pair<std::string, std::string>;

class Listener {
 public:
  /// Distinct notifications waiting to be sent, at most.
  static constexpr std::size_t kMaxPending = 10'000;
  /// The shortest time between two statements sending notifications: another instance learns of
  /// a commit at most this much later, and a stream of commits costs PostgreSQL (and this thread)
  /// one NOTIFY statement per interval instead of one per round trip.
  static constexpr std::chrono::milliseconds kSendInterval{2};

  Listener(std::string conninfo, const NotifyHub& hub);
  ~Listener();  ///< Stops and joins the thread.
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Starts the thread if needed and makes it LISTEN the hub's current channels. Thread-safe.
  void Refresh();
  /// Queues committed notifications (moved from `notes`) for the other processes and wakes the
  /// thread. Thread-safe, never blocks on the network.
  void Publish(std::vector<Notification>& notes);
  /// Stops the thread (idempotent), after a last attempt to send what is queued.
  void Stop();

 private:
  void Run();
  void Wake();
  /// Sends the queued notifications (one statement; `sent`: there were some); false when the
  /// connection broke (they are queued again).
  bool SendPending(pg_conn* conn, bool& sent);
  bool HasPending();
  /// Reads what the socket has and delivers every notification libpq holds that another
  /// connection sent; false when the connection broke.
  bool Drain(pg_conn* conn);

  std::string conninfo_;
  const NotifyHub& hub_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::once_flag started_;
  std::thread thread_;

  std::mutex pending_mutex_;
  std::set<Notification> pending_;     ///< Guarded by pending_mutex_.
  bool dropped_ = false;               ///< Guarded by pending_mutex_: some were dropped (logged once).
};

}  // namespace basalt::store::postgres
