#pragma once
/// The hand-over of a group commit: at most `max_leaders` callers lead at a time (each runs one
/// transaction for itself and whoever queued); a caller arriving while all slots are taken queues
/// with its item and waits, without blocking its thread, until a leader hands it its outcome or
/// the turn to lead. Used by the audit chain's appends (one leader) and by PostgreSQL's group
/// commit of deferred-only transactions (pool_size leaders per shard).
///
///   if (auto outcome = co_await queue.Enter(&mine)) co_return *outcome;  // settled by a leader
///   auto waiters = queue.Take(63);  // this caller leads: it and they commit together
///   ... run the group; waiter.wake(outcome) for each ...
///   queue.Leave();                  // the first one still queued leads next
///
/// Waiters are woken by a post to their own executor (never inline); an item usually points into
/// the waiting caller's suspended frame, which stays alive until it is woken. Every waiter taken
/// must be woken exactly once; a leader must call Leave exactly once.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "store/database.hpp"

namespace basalt::store {

template <class Item, class Outcome>
class LeaderQueue {
 public:
  struct Waiter {
    Item item;
    /// Resumes the waiter on its executor: with its outcome, or nullopt: it leads now.
    std::move_only_function<void(std::optional<Outcome>)> wake;
  };

  explicit LeaderQueue(unsigned max_leaders) : max_leaders_(max_leaders) {}
  LeaderQueue(const LeaderQueue&) = delete;
  LeaderQueue& operator=(const LeaderQueue&) = delete;

  /// Returns nullopt when the caller leads (a slot was free, or a leader handed it the turn),
  /// else the outcome a leader delivered for `item`.
  Task<std::optional<Outcome>> Enter(Item item) {
    if (TryLead()) co_return std::nullopt;
    auto executor = co_await boost::asio::this_coro::executor;
    auto initiation = [this, executor, item = std::move(item)](auto handler) mutable {
      // Tracked: the caller's io_context must not run out of work while the queue holds its handler.
      boost::asio::any_io_executor tracked =
          boost::asio::prefer(executor, boost::asio::execution::outstanding_work.tracked);
      std::move_only_function<void(std::optional<Outcome>)> wake =
          [handler = std::move(handler), tracked](std::optional<Outcome> outcome) mutable {
            boost::asio::post(tracked, [handler = std::move(handler), outcome = std::move(outcome)]() mutable {
              std::move(handler)(std::move(outcome));
            });
            tracked = {};  // One wake only: the posted handler keeps the context busy now, not this.
          };
      std::unique_lock lock(mutex_);
      if (leaders_ < max_leaders_) {  // A leader left meanwhile: lead.
        ++leaders_;
        lock.unlock();
        wake(std::nullopt);
        return;
      }
      queue_.push_back(Waiter{std::move(item), std::move(wake)});
    };
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                   void(std::optional<Outcome>)>(std::move(initiation),
                                                                                 boost::asio::use_awaitable);
  }

  /// Up to `max` queued waiters, oldest first, for the calling leader to settle.
  std::vector<Waiter> Take(std::size_t max) {
    std::vector<Waiter> out;
    std::lock_guard lock(mutex_);
    while (!queue_.empty() && out.size() < max) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return out;
  }

  /// Ends a leader's turn: the first waiter still queued leads next, or the slot goes free.
  void Leave() {
    std::optional<Waiter> next;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) {
        --leaders_;
      } else {
        next.emplace(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (next) next->wake(std::nullopt);
  }

 private:
  bool TryLead() {
    std::lock_guard lock(mutex_);
    if (leaders_ >= max_leaders_) return false;
    ++leaders_;
    return true;
  }

  const unsigned max_leaders_;
  std::mutex mutex_;
  unsigned leaders_ = 0;       ///< Guarded by mutex_.
  std::deque<Waiter> queue_;   ///< Guarded by mutex_; oldest first.
};

}  // namespace basalt::store
