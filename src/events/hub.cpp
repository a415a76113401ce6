#include "events/hub.hpp"

#include <algorithm>

namespace basalt::events {

std::vector<std::shared_ptr<const Event>> Subscription::Take() {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const Event>> out(std::make_move_iterator(queue_.begin()),
                                                std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

bool Subscription::overflowed() const {
  std::lock_guard lock(mutex_);
  return overflow_;
}

bool Subscription::Push(const std::shared_ptr<const Event>& e) {
  std::lock_guard lock(mutex_);
  if (overflow_) return true;  // already cut off: nothing more to count
  if (queue_.size() >= max_pending_) {
    overflow_ = true;
    queue_.clear();  // the consumer ends the stream; free the memory now
    return false;
  }
  queue_.push_back(e);
  return true;
}

std::shared_ptr<Subscription> Hub::Subscribe(std::string collection, std::size_t max_pending,
                                             std::function<void()> wake) {
  auto s = std::make_shared<Subscription>(collection, std::max<std::size_t>(1, max_pending), std::move(wake));
  std::lock_guard lock(mutex_);
  by_collection_.emplace(std::move(collection), s);
  return s;
}

void Hub::Unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = by_collection_.equal_range(subscription->collection());
  for (auto it = begin; it != end; ++it) {
    if (it->second == subscription) {
      by_collection_.erase(it);
      return;
    }
  }
}

void Hub::Publish(const std::vector<std::shared_ptr<const Event>>& events) {
  std::vector<std::shared_ptr<Subscription>> touched;
  {
    std::lock_guard lock(mutex_);
    for (const auto& e : events) {
      auto [begin, end] = by_collection_.equal_range(e->collection);
      for (auto it = begin; it != end; ++it) {
        if (!it->second->Push(e)) overflows_.fetch_add(1, std::memory_order_relaxed);
        if (std::find(touched.begin(), touched.end(), it->second) == touched.end()) touched.push_back(it->second);
      }
    }
  }
  for (const auto& s : touched) {
    if (s->wake_) s->wake_();
  }
}

std::size_t Hub::subscribers() const {
  std::lock_guard lock(mutex_);
  return by_collection_.size();
}

}  // namespace basalt::events
