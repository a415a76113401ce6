#pragma once
/// Password hashing: argon2id (libsodium `crypto_pwhash_str`) on a small bounded pool of worker
/// threads, so a hash (tens of milliseconds, 19+ MiB) never runs on an I/O thread. The awaiting
/// coroutine is resumed on its own executor (its io_context) afterwards.

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/error.hpp"

namespace basalt::auth {

template <class T>
using Task = boost::asio::awaitable<T>;

/// OWASP's minimum for argon2id (Password Storage Cheat Sheet): m = 19 MiB, t = 2, p = 1.
inline constexpr std::uint64_t kMinArgonMemoryKib = 19 * 1024;
inline constexpr std::uint64_t kMinArgonIterations = 2;
/// Longest password accepted, in bytes (argon2 itself takes more; this bounds the work).
inline constexpr std::size_t kMaxPasswordBytes = 1024;

struct PasswordOptions {
  std::uint64_t memory_kib = kMinArgonMemoryKib;  ///< argon2id m, in KiB; at least kMinArgonMemoryKib.
  std::uint64_t iterations = kMinArgonIterations;  ///< argon2id t; at least kMinArgonIterations.
  unsigned threads = 2;                            ///< Worker threads (p = 1 per hash).
  std::size_t max_queue = 1024;                    ///< Jobs waiting beyond this: kUnavailable.
};

/// Checks options against the OWASP minimum and sane maxima. Errors: kValidation.
core::Result<void> ValidatePasswordOptions(const PasswordOptions& options);

/// Hashes and verifies passwords on its own threads. Thread-safe. The destructor finishes queued
/// jobs' threads (jobs still queued are answered kUnavailable) and joins.
class PasswordHasher {
 public:
  /// Starts the workers and computes the dummy hash used for unknown accounts.
  explicit PasswordHasher(PasswordOptions options);
  ~PasswordHasher();
  PasswordHasher(const PasswordHasher&) = delete;
  PasswordHasher& operator=(const PasswordHasher&) = delete;

  /// The PHC string ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"). Errors: kUnavailable when the
  /// queue is full or stopping, kInternal when libsodium fails (out of memory).
  Task<core::Result<std::string>> Hash(std::string password);

  /// True when `password` matches the PHC string `hash`. An empty `hash` (an unknown account)
  /// verifies against the dummy hash instead, so it costs the same, and returns false.
  /// libsodium compares in constant time. Errors: kUnavailable when the queue is full.
  Task<core::Result<bool>> Verify(std::string hash, std::string password);

  /// True when `hash` was made with weaker parameters than the current ones (less memory or fewer
  /// passes), or is not an argon2id string; false when they are the same or stronger.
  bool NeedsRehash(const std::string& hash) const;

  /// Blocking versions for the command line (no io_context): run on the calling thread.
  core::Result<std::string> HashNow(const std::string& password) const;

 private:
  class Pool;
  PasswordOptions options_;
  std::string dummy_hash_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace basalt::auth
