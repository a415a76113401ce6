#pragma once
/// Live subscribers of this process. The dispatcher publishes every new outbox event once; each
/// subscription of the event's collection gets a shared pointer to it in a bounded queue. A
/// subscription whose queue is full is marked overflowed (and woken) instead of growing: its
/// consumer ends the stream, and the client resumes with Last-Event-ID.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/outbox.hpp"

namespace basalt::events {

/// One subscriber's queue. Thread-safe.
class Subscription {
 public:
  Subscription(std::string collection, std::size_t max_pending, std::function<void()> wake)
      : collection_(std::move(collection)), max_pending_(max_pending), wake_(std::move(wake)) {}

  /// Everything queued so far, in order; empties the queue.
  std::vector<std::shared_ptr<const Event>> Take();
  /// True once an event did not fit: the consumer must end the stream.
  bool overflowed() const;
  const std::string& collection() const { return collection_; }

 private:
  friend class Hub;
  /// Queues `e`; false only when this event made the queue overflow.
  bool Push(const std::shared_ptr<const Event>& e);

  const std::string collection_;
  const std::size_t max_pending_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<const Event>> queue_;
  bool overflow_ = false;
};

/// The set of live subscriptions of this process.
class Hub {
 public:
  /// Registers a subscriber of `collection`; `wake` (thread-safe) is called after events arrive.
  std::shared_ptr<Subscription> Subscribe(std::string collection, std::size_t max_pending, std::function<void()> wake);
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);
  /// Hands each event to every subscription of its collection, in order.
  void Publish(const std::vector<std::shared_ptr<const Event>>& events);

  std::size_t subscribers() const;
  /// Subscriptions cut off because their queue was full, since start.
  std::uint64_t overflows() const { return overflows_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mutex_;
  std::multimap<std::string, std::shared_ptr<Subscription>, std::less<>> by_collection_;
  std::atomic<std::uint64_t> overflows_{0};
};

}  // namespace basalt::events
