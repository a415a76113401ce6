#pragma once
/// Private to api/: short-lived in-memory caches the authentication stage reads on every request,
/// so that an API key, a role's permissions or a revoked token id costs no database round trip
/// most of the time.
///
/// Freshness: every entry lives at most `ttl` (5 s by default). Changes made through this
/// instance (revoking a key, editing a role, assigning a role, revoking a token) take effect here
/// at once; other instances see them within `ttl`. That bound is documented in docs/access.md.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/access_store.hpp"
#include "http/request.hpp"
#include "http/task.hpp"

namespace basalt::api {

class AccessCache {
 public:
  explicit AccessCache(auth::AccessStore& store, std::chrono::milliseconds ttl = std::chrono::seconds(5));

  auth::AccessStore& store() { return store_; }

  /// The principal for an API key token (`bsk_...`); nullopt when unknown, wrong, expired or revoked.
  /// Updates last_used_at at most once a minute per key (and per instance).
  http::Task<core::Result<std::optional<http::Principal>>> ApiKeyPrincipal(unsigned shard, std::string token);

  /// For a user, replaces the token's roles with the stored ones (at most `ttl` old); then fills
  /// `permissions` of a user or API key principal from its roles (built-in and custom).
  http::Task<core::Result<void>> Expand(unsigned shard, http::Principal& principal);

  /// True when the token id was revoked (and the token has not expired yet).
  http::Task<core::Result<bool>> IsRevoked(unsigned shard, std::string jti);

  /// True when a service token's id is not revoked and its client exists and is not revoked.
  http::Task<core::Result<bool>> ServiceTokenActive(unsigned shard, std::string jti, std::string client_id);

  /// Permissions of one role (built-in or custom); nullopt when there is no such role.
  http::Task<core::Result<std::optional<std::vector<std::string>>>> RolePermissions(unsigned shard, std::string role);

  /// Local invalidation after a change made through this instance.
  void ForgetApiKey(const std::string& id);
  void ForgetRoles();
  void ForgetUser(const std::string& user_id);
  void DenyLocally(const std::string& jti);
  void ForgetClient(const std::string& client_id);

 private:
  struct KeyEntry {
    auth::ApiKey key;
    std::vector<std::string> owner_roles;
    std::int64_t fetched_at = 0;
  };
  struct UserEntry {
    std::vector<std::string> roles;
    std::int64_t fetched_at = 0;
  };
  http::Task<core::Result<void>> RefreshRoles(unsigned shard, std::int64_t now);
  http::Task<core::Result<std::vector<std::string>>> AssignedRoles(unsigned shard, std::string user_id, std::int64_t now);

  auth::AccessStore& store_;
  std::int64_t ttl_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, KeyEntry> keys_;            // by SHA-256 of the token
  std::unordered_map<std::string, std::int64_t> touched_;     // key id -> last last_used_at write
  std::unordered_map<std::string, UserEntry> users_;          // user id -> assigned roles
  std::unordered_map<std::string, std::vector<std::string>> roles_;  // custom role -> permissions
  std::int64_t roles_at_ = -1;
  std::unordered_map<std::string, std::pair<bool, std::int64_t>> clients_;  // id -> (active, fetched_at)
  std::unordered_set<std::string> denied_;
  std::int64_t denied_at_ = -1;
};

}  // namespace basalt::api
