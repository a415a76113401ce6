#pragma once
/// A background thread that deletes completed queue messages past their queue's retention every
/// `interval` (queue::Engine::Purge). It has its own io_context and its own database shard, so it
/// never runs on, or shares a connection with, an I/O thread.

#include <chrono>
#include <memory>

namespace basalt::queue {
class Engine;
}

namespace basalt::app {

class QueuePurger {
 public:
  /// Starts the thread. `shard` must be a shard no I/O thread uses.
  QueuePurger(queue::Engine& engine, unsigned shard, std::chrono::milliseconds interval);
  /// Stop()s.
  ~QueuePurger();
  QueuePurger(const QueuePurger&) = delete;
  QueuePurger& operator=(const QueuePurger&) = delete;

  /// Lets a purge in progress finish, then ends the thread (idempotent).
  void Stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace basalt::app
