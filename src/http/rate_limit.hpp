#pragma once
/// Rate limiting: the RateLimiter interface (in-memory GCRA here; a shared store such as Redis can
/// implement it later) and the "rate_limit" stage that applies it to every request.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/middleware.hpp"

namespace basalt::http {

/// A quota: at most `burst` requests at once, refilled at `count` per `period` (GCRA's emission
/// interval is period / count).
struct Quota {
  std::uint32_t count = 100;                     ///< Requests per period (> 0).
  std::chrono::milliseconds period{1000};        ///< > 0.
  std::uint32_t burst = 200;                     ///< Largest burst (>= 1); RateLimit-Limit.
  bool operator==(const Quota&) const = default;
};

/// The answer for one request.
struct RateDecision {
  bool allowed = true;
  std::uint32_t limit = 0;       ///< The quota's burst (RateLimit-Limit).
  std::uint32_t remaining = 0;   ///< Requests that would still pass right now (RateLimit-Remaining).
  std::chrono::seconds reset{0};        ///< Until the quota is whole again, rounded up (RateLimit-Reset).
  std::chrono::seconds retry_after{0};  ///< When refused: until one request passes, rounded up, >= 1.
};

/// Decides whether a request identified by `key` may pass under `quota`, and records it when it
/// does. Implementations are thread-safe. A refused request consumes nothing.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  /// `cost` (>= 1) is how many requests this one counts as.
  virtual RateDecision Check(std::string_view key, const Quota& quota, std::uint32_t cost = 1) = 0;
};

/// Settings of GcraLimiter.
struct GcraOptions {
  unsigned shards = 64;           ///< Independent lock + map shards (keys spread by hash).
  std::size_t max_keys = 100'000; ///< Memory bound, over all shards. Idle keys are evicted first.
  /// Monotonic clock in nanoseconds; tests inject their own.
  std::function<std::int64_t()> now_ns;
};

/// In-memory GCRA (generic cell rate algorithm): one "theoretical arrival time" per key, so a key
/// costs one map entry. Keys are spread over shards by hash, each with its own mutex, so I/O
/// threads rarely meet on one lock. A key whose TAT has passed is indistinguishable from a new
/// one, so evicting it changes nothing: when a shard is full, such idle keys go first; only if
/// none is idle does an arbitrary key go (that client gets a fresh quota: fail open, never closed).
class GcraLimiter final : public RateLimiter {
 public:
  explicit GcraLimiter(GcraOptions options = {});
  ~GcraLimiter() override;
  RateDecision Check(std::string_view key, const Quota& quota, std::uint32_t cost = 1) override;
  /// Keys currently held (for tests and metrics).
  std::size_t size() const;

 private:
  struct Shard;
  GcraOptions options_;
  std::unique_ptr<Shard[]> shards_;
  std::size_t per_shard_max_;
};

/// Settings of the stage.
struct RateLimitOptions {
  Quota default_quota;  ///< For every route without an override; one bucket per identity.
  /// Route template (as registered, e.g. "/api/v1/auth/login") -> quota; each such route has its
  /// own bucket per identity. Requests that matched no route are looked up by their path, so an
  /// override for a route that does not exist yet already applies.
  std::vector<std::pair<std::string, Quota>> routes;
  /// Paths never limited (exact match): the probes and /metrics.
  std::vector<std::string> exempt = {"/healthz", "/readyz", "/metrics"};
};

/// The options the stage applies, replaceable while requests run (a configuration reload). A
/// request reads the current version with one atomic load and no reference count (both I/O
/// threads would otherwise bump one shared count per request); replaced versions are kept until
/// the policy goes, which costs a few hundred bytes per reload.
class RateLimitPolicy {
 public:
  explicit RateLimitPolicy(RateLimitOptions options);
  ~RateLimitPolicy();
  RateLimitPolicy(const RateLimitPolicy&) = delete;
  RateLimitPolicy& operator=(const RateLimitPolicy&) = delete;

  const RateLimitOptions& Current() const { return *current_.load(std::memory_order_acquire); }
  /// Later requests use `options`; requests already past the stage keep the old ones.
  void Replace(RateLimitOptions options);

 private:
  std::atomic<const RateLimitOptions*> current_;
  std::mutex mutex_;  // guards versions_
  std::vector<std::unique_ptr<const RateLimitOptions>> versions_;
};

/// "rate_limit": keys each request by identity (the principal's kind and id when authenticated,
/// else the client address) and by bucket (the overriding route template, or the default), asks
/// `limiter`, and adds `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF
/// draft-ietf-httpapi-ratelimit-headers) to the response. A refused request gets 429
/// problem+json, code `rate_limited`, with `Retry-After`. Install after authentication.
Middleware RateLimitStage(std::shared_ptr<RateLimiter> limiter, std::shared_ptr<RateLimitPolicy> policy);
/// The same with fixed options.
Middleware RateLimitStage(std::shared_ptr<RateLimiter> limiter, RateLimitOptions options);

}  // namespace basalt::http
