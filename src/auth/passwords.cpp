#include "auth/passwords.hpp"

#include <sodium.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace basalt::auth {

namespace asio = boost::asio;
using core::ErrorCode;

core::Result<void> ValidatePasswordOptions(const PasswordOptions& o) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The password hashing options are too weak or too large.");
  if (o.memory_kib < kMinArgonMemoryKib) e.fields.push_back({"memory_kib", "too_small", "at least 19456 KiB (OWASP)"});
  if (o.memory_kib > 4ull * 1024 * 1024) e.fields.push_back({"memory_kib", "too_large", "at most 4 GiB"});
  if (o.iterations < kMinArgonIterations) e.fields.push_back({"iterations", "too_small", "at least 2 (OWASP)"});
  if (o.iterations > 64) e.fields.push_back({"iterations", "too_large", "at most 64"});
  if (o.threads < 1 || o.threads > 64) e.fields.push_back({"threads", "out_of_range", "1 to 64"});
  if (!e.fields.empty()) return std::unexpected(std::move(e));
  return {};
}

namespace {

core::Result<std::string> HashWith(const PasswordOptions& o, const std::string& password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), o.iterations, o.memory_kib * 1024,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return core::Fail(ErrorCode::kInternal, "Cannot hash the password.", "crypto_pwhash_str_alg failed (memory)");
  }
  return std::string(out);
}

}  // namespace

/// A fixed set of threads taking jobs from a bounded queue.
class PasswordHasher::Pool {
 public:
  using Job = std::move_only_function<void(bool run)>;  // run=false: cancelled

  Pool(unsigned threads, std::size_t max_queue) : max_queue_(max_queue) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~Pool() {
    std::deque<Job> left;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      left.swap(jobs_);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    for (auto& job : left) job(false);
  }
  /// False when full or stopping (the job is not taken).
  bool Submit(Job& job) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || jobs_.size() >= max_queue_) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Loop() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job(true);
    }
  }

  std::size_t max_queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

namespace {

using Work = std::move_only_function<core::Result<std::string>()>;

/// Runs `work` on the pool and resumes the caller on its own executor with the result.
template <class PoolT>
Task<core::Result<std::string>> RunOnPool(PoolT& pool, Work work) {
  auto executor = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(core::Result<std::string>)>(
      [&pool, executor](auto handler, Work w) mutable {
        // Tracked: the caller's io_context must not run out of work while a worker holds its handler.
        asio::any_io_executor tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked);
        typename PoolT::Job job = [handler = std::move(handler), tracked, w = std::move(w)](bool run) mutable {
          core::Result<std::string> r =
              run ? w()
                  : core::Result<std::string>(
                        core::Fail(ErrorCode::kUnavailable, "The server is busy hashing passwords; try again shortly."));
          asio::post(tracked, [handler = std::move(handler), r = std::move(r)]() mutable {
            std::move(handler)(std::move(r));
          });
        };
        // Not taken (queue full or stopping): answer busy at once, still through the caller's executor.
        if (!pool.Submit(job)) job(false);
      },
      asio::use_awaitable, std::move(work));
}

}  // namespace

PasswordHasher::PasswordHasher(PasswordOptions options) : options_(options) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot start");
  // The dummy hash: a random password nobody knows, with the current parameters.
  unsigned char random[32];
  randombytes_buf(random, sizeof random);
  auto dummy = HashWith(options_, std::string(reinterpret_cast<char*>(random), sizeof random));
  if (!dummy) throw std::runtime_error("cannot compute the dummy password hash");
  dummy_hash_ = std::move(*dummy);
  pool_ = std::make_unique<Pool>(options_.threads, options_.max_queue);
}

PasswordHasher::~PasswordHasher() = default;

Task<core::Result<std::string>> PasswordHasher::Hash(std::string password) {
  Work work = [o = options_, p = std::move(password)]() { return HashWith(o, p); };
  co_return co_await RunOnPool(*pool_, std::move(work));
}

Task<core::Result<bool>> PasswordHasher::Verify(std::string hash, std::string password) {
  const bool known = !hash.empty();
  Work work = [h = known ? std::move(hash) : dummy_hash_, p = std::move(password), known]() -> core::Result<std::string> {
    const bool ok = crypto_pwhash_str_verify(h.c_str(), p.data(), p.size()) == 0;
    return std::string(ok && known ? "1" : "0");
  };
  auto r = co_await RunOnPool(*pool_, std::move(work));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return *r == "1";
}

namespace {

/// The unsigned integer after `key` (e.g. "$m=") in a PHC string; nullopt when absent or malformed.
std::optional<std::uint64_t> PhcNumber(std::string_view hash, std::string_view key) {
  const std::size_t at = hash.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::uint64_t value = 0;
  std::size_t i = at + key.size(), digits = 0;
  for (; i < hash.size() && hash[i] >= '0' && hash[i] <= '9' && digits < 19; ++i, ++digits)
    value = value * 10 + static_cast<std::uint64_t>(hash[i] - '0');
  if (digits == 0) return std::nullopt;
  return value;
}

}  // namespace

bool PasswordHasher::NeedsRehash(const std::string& hash) const {
  // libsodium answers "made with other parameters" (1), or "malformed" (-1). Only weaker parameters are worth a rehash: a hash made with more
  // memory or passes than now (the settings went down) stays.
  if (!hash.starts_with("$argon2id$")) return true;  // argon2i (libsodium verifies it too): replace it
  const int r = crypto_pwhash_str_needs_rehash(hash.c_str(), options_.iterations, options_.memory_kib * 1024);
  if (r <= 0) return r < 0;
  const auto m = PhcNumber(hash, "$m=");
  const auto t = PhcNumber(hash, ",t=");
  if (!m || !t) return true;
  return *m < options_.memory_kib || *t < options_.iterations;
}

core::Result<std::string> PasswordHasher::HashNow(const std::string& password) const {
  return HashWith(options_, password);
}

}  // namespace basalt::auth
