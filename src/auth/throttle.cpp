#include "auth/throttle.hpp"

#include <algorithm>
#include <vector>

namespace basalt::auth {

using std::chrono::seconds;
using std::chrono::steady_clock;

LoginThrottle::LoginThrottle(ThrottleOptions options, Clock clock) : options_(options), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return steady_clock::now(); };
}

std::optional<std::int64_t> LoginThrottle::Locked(Map& map, const std::string& key, steady_clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end() || it->second.locked_until <= now) return std::nullopt;
  // Round up: a client waiting Retry-After seconds is never still locked.
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(it->second.locked_until - now).count();
  return std::max<std::int64_t>(1, (left + 999) / 1000);
}

std::optional<std::int64_t> LoginThrottle::RetryAfter(const std::string& account, const std::string& ip) {
  std::lock_guard lock(mutex_);
  const auto now = clock_();
  auto a = Locked(accounts_, account, now);
  auto i = Locked(ips_, ip, now);
  if (a && i) return std::max(*a, *i);
  return a ? a : i;
}

std::optional<std::int64_t> LoginThrottle::Count(Map& map, const std::string& key, unsigned threshold,
                                                 steady_clock::time_point now) {
  if (map.size() >= options_.max_entries && !map.contains(key)) Bound(map, now);
  Entry& e = map[key];
  if (e.failures > 0 && now - e.last > seconds(options_.forget_after_s)) e = Entry{};
  ++e.failures;
  e.last = now;
  if (e.failures < threshold) return std::nullopt;
  const unsigned extra = std::min(e.failures - threshold, 20u);
  const std::int64_t lock = std::min(options_.max_lock_s, options_.base_lock_s << extra);
  e.locked_until = now + seconds(lock);
  return lock;
}

std::optional<std::int64_t> LoginThrottle::Failure(const std::string& account, const std::string& ip,
                                                   LockedKeys* locked) {
  std::lock_guard lock(mutex_);
  const auto now = clock_();
  auto a = Count(accounts_, account, options_.account_threshold, now);
  auto i = Count(ips_, ip, options_.ip_threshold, now);
  if (locked) *locked = LockedKeys{.account = a.has_value(), .ip = i.has_value()};
  if (a && i) return std::max(*a, *i);
  return a ? a : i;
}

void LoginThrottle::Success(const std::string& account) {
  std::lock_guard lock(mutex_);
  accounts_.erase(account);
}

void LoginThrottle::Bound(Map& map, steady_clock::time_point now) {
  // First drop what is forgotten anyway; then, if still full, the stalest unlocked half.
  std::erase_if(map, [&](const auto& kv) {
    return kv.second.locked_until <= now && now - kv.second.last > seconds(options_.forget_after_s);
  });
  if (map.size() < options_.max_entries) return;
  std::vector<std::pair<steady_clock::time_point, std::string>> by_age;
  by_age.reserve(map.size());
  for (const auto& [k, e] : map) by_age.emplace_back(e.last, k);
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(by_age.size() / 2), by_age.end());
  for (std::size_t i = 0; i < by_age.size() / 2; ++i) map.erase(by_age[i].second);
}

}  // namespace basalt::auth
