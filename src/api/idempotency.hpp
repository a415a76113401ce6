#pragma once
/// `Idempotency-Key` on POST (DESIGN.md): the first response is stored and replayed for a retry
/// with the same key and the same request; the same key with another request is 422; a key whose
/// first request is still running is 409.

#include <chrono>
#include <vector>

#include "http/middleware.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

namespace basalt::api {

/// Settings of the idempotency stage.
struct IdempotencyOptions {
  std::chrono::hours ttl{24};  ///< How long a stored response is replayed.
  /// A first request still marked in flight after this long is treated as abandoned (the
  /// process died mid-request) and the key can be used again.
  std::chrono::seconds abandon_after{60};
};

/// "idempotency": for POST requests carrying `Idempotency-Key` (1-255 visible ASCII characters,
/// else 400). Keys are scoped by the caller's credentials (a hash of the Authorization header)
/// and the request path, so two clients never share a key. The fingerprint covers method, path,
/// Content-Type and body. 5xx answers are not stored, so the client may retry. A replay carries
/// `Idempotent-Replayed: true`.
http::Middleware IdempotencyStage(store::Database& database, IdempotencyOptions options = {});

/// The system table behind the stage (portable SQL).
std::vector<store::Migration> IdempotencyMigrations();

}  // namespace basalt::api
