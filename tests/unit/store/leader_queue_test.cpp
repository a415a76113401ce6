/// store::LeaderQueue: at most max_leaders lead at once, the others wait for an outcome or the turn.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "store/leader_queue.hpp"

namespace basalt::store {
namespace {

namespace asio = boost::asio;
using Queue = LeaderQueue<int, std::string>;

// Each caller enters with its number; a leader yields once (others arrive meanwhile), then settles
// up to two queued callers with "by <leader>" and leaves. Records what each caller ended with.
Task<void> Caller(Queue& queue, int me, std::vector<std::string>& got, int& leading, int& most_leading) {
  if (auto outcome = co_await queue.Enter(me)) {
    got[me] = *outcome;
    co_return;
  }
  most_leading = std::max(most_leading, ++leading);
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  auto waiters = queue.Take(2);
  for (auto& w : waiters) w.wake("by " + std::to_string(me));
  got[me] = "led " + std::to_string(waiters.size());
  --leading;
  queue.Leave();
}

TEST(LeaderQueue, AtMostMaxLeadersAndEveryCallerSettledOnce) {
  Queue queue(2);
  asio::io_context io(1);
  constexpr int kCallers = 11;
  std::vector<std::string> got(kCallers);
  int leading = 0, most_leading = 0;
  for (int i = 0; i < kCallers; ++i) asio::co_spawn(io, Caller(queue, i, got, leading, most_leading), asio::detached);
  io.run();  // Returns only when every caller finished: none waits forever.
  EXPECT_EQ(most_leading, 2);
  int led = 0, settled = 0, by_leaders = 0;
  for (int i = 0; i < kCallers; ++i) {
    if (got[i].starts_with("led ")) {
      ++led;
      by_leaders += std::stoi(got[i].substr(4));
    } else {
      ASSERT_TRUE(got[i].starts_with("by ")) << i << ": " << got[i];
      ++settled;
    }
  }
  EXPECT_EQ(led + settled, kCallers);
  EXPECT_EQ(by_leaders, settled);  // Each settled caller was woken by exactly one leader.
  EXPECT_EQ(got[0], "led 2");      // Callers 0 and 1 led at once; 2 and 3 queued first and went to 0.
  EXPECT_EQ(got[2], "by 0");
  EXPECT_EQ(got[3], "by 0");
}

// A leader woken on another thread's io_context resumes there, not on the waker's thread.
TEST(LeaderQueue, WaiterResumesOnItsOwnExecutor) {
  Queue queue(1);
  asio::io_context first(1), second(1);
  std::thread::id resumed;
  std::optional<std::string> outcome;
  asio::co_spawn(first, [&]() -> Task<void> { (void)co_await queue.Enter(0); }, asio::detached);
  first.run();  // Leads and keeps the slot.
  asio::co_spawn(second, [&]() -> Task<void> {
    outcome = co_await queue.Enter(1);
    resumed = std::this_thread::get_id();
  }, asio::detached);
  second.poll();  // Queued: the slot is taken.
  ASSERT_FALSE(outcome);
  std::thread other([&] { second.run(); });
  auto waiters = queue.Take(5);
  ASSERT_EQ(waiters.size(), 1u);
  EXPECT_EQ(waiters[0].item, 1);
  waiters[0].wake(std::string("done"));
  other.join();
  queue.Leave();
  EXPECT_EQ(outcome, std::optional<std::string>("done"));
  EXPECT_NE(resumed, std::this_thread::get_id());
}

}  // namespace
}  // namespace basalt::store
