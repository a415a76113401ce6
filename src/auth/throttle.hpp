#pragma once
/// Brute-force defence for logins: failed attempts counted per account and per client IP, in
/// memory (per instance), thread-safe and bounded. After `threshold` failures a key is locked for
/// base_lock_s, doubling with each further failure up to max_lock_s; a successful login clears the
/// account's counter. Counters forget a key `forget_after_s` after its last failure.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace basalt::auth {

struct ThrottleOptions {
  unsigned account_threshold = 5;    ///< Failures per account before it locks.
  unsigned ip_threshold = 20;        ///< Failures per IP before it locks.
  std::int64_t base_lock_s = 30;     ///< First lock; doubles per further failure.
  std::int64_t max_lock_s = 900;     ///< Longest lock.
  std::int64_t forget_after_s = 3600;///< A key with no failure for this long is forgotten.
  std::size_t max_entries = 100'000; ///< Memory bound per kind; the stalest entries go first.
};

/// Which keys a failure locked.
struct LockedKeys {
  bool account = false;
  bool ip = false;
};

/// Counts failures and answers whether a login may be tried now.
class LoginThrottle {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit LoginThrottle(ThrottleOptions options, Clock clock = {});

  /// Seconds until the account or the IP may try again, or nullopt when they may now.
  std::optional<std::int64_t> RetryAfter(const std::string& account, const std::string& ip);
  /// Records a failure. Returns the new lock in seconds when this failure locked a key; `locked`
  /// (when given) says which.
  std::optional<std::int64_t> Failure(const std::string& account, const std::string& ip, LockedKeys* locked = nullptr);
  /// A successful login: forgets the account's failures (the IP's stay).
  void Success(const std::string& account);

 private:
  struct Entry {
    unsigned failures = 0;
    std::chrono::steady_clock::time_point last;
    std::chrono::steady_clock::time_point locked_until;
  };
  using Map = std::unordered_map<std::string, Entry>;
  std::optional<std::int64_t> Locked(Map& map, const std::string& key, std::chrono::steady_clock::time_point now);
  std::optional<std::int64_t> Count(Map& map, const std::string& key, unsigned threshold,
                                    std::chrono::steady_clock::time_point now);
  void Bound(Map& map, std::chrono::steady_clock::time_point now);

  ThrottleOptions options_;
  Clock clock_;
  std::mutex mutex_;
  Map accounts_;
  Map ips_;
};

}  // namespace basalt::auth
