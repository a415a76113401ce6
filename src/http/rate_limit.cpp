#include "http/rate_limit.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "http/problem.hpp"

namespace basalt::http {
namespace {

constexpr std::int64_t kSecondNs = 1'000'000'000;

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return static_cast<std::size_t>(core::Fnv1a64(s)); }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

std::int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::seconds CeilSeconds(std::int64_t ns) {
  if (ns <= 0) return std::chrono::seconds(0);
  return std::chrono::seconds((ns + kSecondNs - 1) / kSecondNs);
}

}  // namespace

struct alignas(64) GcraLimiter::Shard {
  std::mutex mutex;
  /// Key -> theoretical arrival time (ns, the limiter's clock).
  std::unordered_map<std::string, std::int64_t, KeyHash, KeyEq> tat;
  std::size_t inserts_since_sweep = 0;
  std::int64_t last_now = 0;  ///< The latest clock reading applied here.
};

GcraLimiter::GcraLimiter(GcraOptions options) : options_(std::move(options)) {
  options_.shards = std::max(1u, options_.shards);
  if (!options_.now_ns) options_.now_ns = SteadyNowNs;
  shards_ = std::make_unique<Shard[]>(options_.shards);
  per_shard_max_ = std::max<std::size_t>(1, options_.max_keys / options_.shards);
}

GcraLimiter::~GcraLimiter() = default;

std::size_t GcraLimiter::size() const {
  std::size_t n = 0;
  for (unsigned i = 0; i < options_.shards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].tat.size();
  }
  return n;
}

RateDecision GcraLimiter::Check(std::string_view key, const Quota& quota, std::uint32_t cost) {
  // GCRA: emission interval T = period / count; a request of cost n moves the theoretical arrival
  // time (TAT) by n*T; it conforms when the new TAT is at most `tau` = burst*T ahead of now.
  const std::int64_t period_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(quota.period).count();
  const std::int64_t interval = std::max<std::int64_t>(1, period_ns / std::max<std::uint32_t>(1, quota.count));
  const std::uint32_t burst = std::max<std::uint32_t>(1, quota.burst);
  const std::int64_t tau = interval * burst;  // <= 3.6e12 ns x 1e6: fits
  // A cost above the burst never conforms; capping it at burst + 1 keeps n*T within int64.
  const std::int64_t increment = interval * std::clamp<std::uint32_t>(cost, 1, burst + 1);

  Shard& shard = shards_[core::Fnv1a64(key) % options_.shards];
  RateDecision d;
  d.limit = burst;
  std::lock_guard lock(shard.mutex);
  // The clock is read under the lock and never goes back within a shard: a reading taken before
  // another request's (this thread preempted, or queued on the lock) but applied after it would
  // see that request's TAT ahead of its stale "now" and, with a tolerance as small as 1 ms
  // (1e9/s, burst 1e6), refuse a request that conforms.
  const std::int64_t now = std::max(options_.now_ns(), shard.last_now);
  shard.last_now = now;
  auto it = shard.tat.find(key);
  // A request under this quota never leaves the TAT more than tau ahead (it is accepted only when
  // the new TAT is within tau), so a TAT further out was stored under a stricter quota that a
  // configuration reload replaced: clamped (and stored so), the key has used the new quota's
  // whole burst, and a loosened quota takes over within one of its intervals instead of after the
  // old debt.
  if (it != shard.tat.end() && it->second > now + tau) it->second = now + tau;
  const std::int64_t tat = it == shard.tat.end() ? now : std::max(it->second, now);
  const std::int64_t new_tat = tat + increment;
  const std::int64_t allow_at = new_tat - tau;
  if (now < allow_at) {
    d.allowed = false;
    d.remaining = static_cast<std::uint32_t>(std::max<std::int64_t>(0, (tau - (tat - now)) / interval));
    d.reset = CeilSeconds(tat - now);
    d.retry_after = std::max(std::chrono::seconds(1), CeilSeconds(allow_at - now));
    return d;
  }
  if (it != shard.tat.end()) {
    it->second = new_tat;
  } else {
    if (shard.tat.size() >= per_shard_max_) {
      // Idle keys (TAT passed) carry no state: drop them all, at most once per 1/8 of the shard's
      // capacity of inserts so a flood of live keys does not make every insert a full sweep.
      if (shard.inserts_since_sweep >= per_shard_max_ / 8) {
        std::erase_if(shard.tat, [now](const auto& entry) { return entry.second <= now; });
        shard.inserts_since_sweep = 0;
      }
      if (shard.tat.size() >= per_shard_max_) shard.tat.erase(shard.tat.begin());
    }
    shard.tat.emplace(std::string(key), new_tat);
    ++shard.inserts_since_sweep;
  }
  d.allowed = true;
  d.remaining = static_cast<std::uint32_t>(std::max<std::int64_t>(0, (tau - (new_tat - now)) / interval));
  d.reset = CeilSeconds(new_tat - now);
  return d;
}

namespace {

class Stage {
 public:
  Stage(std::shared_ptr<RateLimiter> limiter, std::shared_ptr<RateLimitPolicy> policy)
      : limiter_(std::move(limiter)), policy_(std::move(policy)) {}

  bool Applies(const Request& req) const {
    const auto& exempt = policy_->Current().exempt;
    return std::ranges::find(exempt, req.path()) == exempt.end();
  }

  Task<Response> Handle(Request& req, Next next) {
    const RateDecision decision = Decide(req);
    if (!decision.allowed) {
      Response res = Problem(core::Error::Make(core::ErrorCode::kRateLimited,
                                               "Too many requests; retry after " +
                                                   std::to_string(decision.retry_after.count()) + " s."),
                             req.request_id());
      res.Set("Retry-After", std::to_string(decision.retry_after.count()));
      AddHeaders(res, decision);
      co_return res;
    }
    Response res = co_await next(req);
    AddHeaders(res, decision);
    co_return res;
  }

 private:
  // Synchronous (no suspension), so the thread-local key buffer is never shared across requests.
  RateDecision Decide(const Request& req) {
    const std::string_view route = req.route().empty() ? req.path() : req.route();
    const RateLimitOptions& options = policy_->Current();
    const Quota* quota = &options.default_quota;
    std::string_view bucket;
    for (const auto& [name, q] : options.routes) {
      if (name == route) {
        quota = &q;
        bucket = name;
        break;
      }
    }
    // Reused per thread: no allocation once it has grown to the longest key seen.
    thread_local std::string key;
    key.clear();
    const Principal& p = req.principal();
    if (p.anonymous()) {
      key += "ip:";
      key += req.remote_address();
    } else {
      key += p.kind_name();
      key += ':';
      key += p.id;
    }
    if (!bucket.empty()) {
      key += '\x1f';
      key += bucket;
    }
    return limiter_->Check(key, *quota, 1);
  }

  static void AddHeaders(Response& res, const RateDecision& d) {
    res.Add("RateLimit-Limit", std::to_string(d.limit));
    res.Add("RateLimit-Remaining", std::to_string(d.remaining));
    res.Add("RateLimit-Reset", std::to_string(d.reset.count()));
  }

  std::shared_ptr<RateLimiter> limiter_;
  std::shared_ptr<RateLimitPolicy> policy_;
};

}  // namespace

RateLimitPolicy::RateLimitPolicy(RateLimitOptions options) : current_(nullptr) { Replace(std::move(options)); }

RateLimitPolicy::~RateLimitPolicy() = default;

void RateLimitPolicy::Replace(RateLimitOptions options) {
  auto version = std::make_unique<const RateLimitOptions>(std::move(options));
  std::lock_guard lock(mutex_);
  current_.store(version.get(), std::memory_order_release);
  versions_.push_back(std::move(version));
}

Middleware RateLimitStage(std::shared_ptr<RateLimiter> limiter, std::shared_ptr<RateLimitPolicy> policy) {
  auto stage = std::make_shared<Stage>(std::move(limiter), std::move(policy));
  return {"rate_limit",
          [stage](Request& req, Next next) -> Task<Response> { return stage->Handle(req, next); },
          [stage](const Request& req) { return stage->Applies(req); }};
}

Middleware RateLimitStage(std::shared_ptr<RateLimiter> limiter, RateLimitOptions options) {
  return RateLimitStage(std::move(limiter), std::make_shared<RateLimitPolicy>(std::move(options)));
}

}  // namespace basalt::http
