#include "app/queue_purger.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <thread>

#include "obs/log.hpp"
#include "queue/engine.hpp"

namespace basalt::app {

namespace asio = boost::asio;

struct QueuePurger::State {
  queue::Engine& engine;
  unsigned shard;
  std::chrono::milliseconds interval;
  asio::io_context io{1};
  asio::steady_timer timer{io};
  std::atomic<bool> stop{false};
  std::thread thread;

  asio::awaitable<void> Loop() {
    while (!stop.load()) {
      timer.expires_after(interval);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      (void)ec;
      if (stop.load()) break;
      auto purged = co_await engine.Purge(shard);
      if (!purged) {
        obs::Log(obs::LogLevel::kWarn, "queue purge failed", {{"cause", std::string_view(purged.error().cause)}});
      } else if (*purged > 0) {
        obs::Log(obs::LogLevel::kDebug, "queue purge", {{"deleted", *purged}});
      }
    }
  }
};

QueuePurger::QueuePurger(queue::Engine& engine, unsigned shard, std::chrono::milliseconds interval)
    : state_(new State{engine, shard, interval}) {
  State* s = state_.get();
  asio::co_spawn(s->io, s->Loop(), asio::detached);
  s->thread = std::thread([s] { s->io.run(); });
}

QueuePurger::~QueuePurger() { Stop(); }

void QueuePurger::Stop() {
  State* s = state_.get();
  if (!s->thread.joinable()) return;
  s->stop.store(true);
  asio::post(s->io, [s] { s->timer.cancel(); });
  s->thread.join();
}

}  // namespace basalt::app
