#pragma once
/// Private to store/: the in-process registry behind Database::Listen, shared by both backends.
/// Callbacks run under the hub's mutex, so destroying a Subscription waits for a callback in
/// progress and no callback ever runs after its Subscription is gone.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "store/database.hpp"

namespace basalt::store {

/// True for a channel name Listen/Notify accept: [a-z_][a-z0-9_]*, 1 to 63 characters.
inline bool ValidChannel(std::string_view channel) {
  if (channel.empty() || channel.size() > 63) return false;
  for (std::size_t i = 0; i < channel.size(); ++i) {
    const char c = channel[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

class NotifyHub {
 public:
  /// Registers `callback` for `channel`; the returned handle unregisters it.
  std::unique_ptr<Subscription> Add(std::string channel, NotificationCallback callback) {
    std::lock_guard lock(state_->mutex);
    const std::uint64_t id = ++state_->next_id;
    state_->entries.emplace(id, Entry{std::move(channel), std::move(callback)});
    return std::make_unique<Handle>(state_, id);
  }

  /// Calls every callback registered for `channel`.
  void Deliver(std::string_view channel, std::string_view payload) const {
    std::lock_guard lock(state_->mutex);
    for (auto& [id, entry] : state_->entries) {
      if (entry.channel == channel) entry.callback(payload, false);
    }
  }

  /// Tells every callback that notifications may have been missed.
  void DeliverLost() const {
    std::lock_guard lock(state_->mutex);
    for (auto& [id, entry] : state_->entries) entry.callback({}, true);
  }

  /// The channels with at least one registration.
  std::set<std::string> Channels() const {
    std::lock_guard lock(state_->mutex);
    std::set<std::string> out;
    for (const auto& [id, entry] : state_->entries) out.insert(entry.channel);
    return out;
  }

 private:
  struct Entry {
    std::string channel;
    NotificationCallback callback;
  };
  struct State {
    std::mutex mutex;
    std::map<std::uint64_t, Entry> entries;
    std::uint64_t next_id = 0;
  };
  class Handle final : public Subscription {
   public:
    Handle(std::shared_ptr<State> state, std::uint64_t id) : state_(std::move(state)), id_(id) {}
    ~Handle() override {
      std::lock_guard lock(state_->mutex);
      state_->entries.erase(id_);
    }

   private:
    std::shared_ptr<State> state_;
    std::uint64_t id_;
  };

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace basalt::store
