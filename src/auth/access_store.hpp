#pragma once
/// Machines and services in storage: API keys, OAuth2 clients, custom roles, role assignments and
/// revoked token ids. Secrets are 256-bit random values shown once and stored only as SHA-256
/// hashes; lookups go by id and compare hashes in constant time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

namespace basalt::auth {

/// System migrations 650..699 (both dialects share the SQL: TEXT and BIGINT only).
std::vector<store::Migration> AccessMigrations();

/// Milliseconds since the Unix epoch.
std::int64_t NowMs();


/// One API key (never its secret).
struct ApiKey {
  std::string id;                         ///< UUIDv7; the `<id>` of `bsk_<id>_<secret>`.
  std::string user_id;                    ///< The owner; "" for a key owned by no user (admin-made).
  std::string name;
  std::vector<std::string> scopes;
  std::string created_by;                 ///< Principal kind:id that created it.
  std::int64_t created_at = 0;            ///< Unix ms.
  std::optional<std::int64_t> expires_at;
  std::optional<std::int64_t> last_used_at;
  std::optional<std::int64_t> revoked_at;
  /// Not revoked and not expired at `now`.
  bool Usable(std::int64_t now) const { return !revoked_at && (!expires_at || *expires_at > now); }
};

/// One OAuth2 client for the client-credentials grant (never its secret).
struct Client {
  std::string id;                   ///< The `client_id` (UUIDv7).
  std::string name;
  std::vector<std::string> scopes;  ///< The most a token for this client may carry.
  std::string created_by;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> revoked_at;
};

/// A custom role.
struct Role {
  std::string name;
  std::vector<std::string> permissions;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

/// Splits `bsk_<id>_<secret>` into id and the whole token; nullopt when it is not that shape.
std::optional<std::string> ApiKeyIdOf(std::string_view token);

/// The store. Holds a reference to the database, which must outlive it. Thread-safe (no state).
class AccessStore {
 public:
  explicit AccessStore(store::Database& db) : db_(db) {}

  /// A new key and its token `bsk_<id>_<secret>` (the only time the secret exists).
  struct CreatedKey {
    ApiKey key;
    std::string token;
  };
  store::Task<core::Result<CreatedKey>> CreateApiKey(unsigned shard, ApiKey key);
  /// Keys of one owner, or of everyone when `user_id` is nullopt; newest first.
  store::Task<core::Result<std::vector<ApiKey>>> ListApiKeys(unsigned shard, std::optional<std::string> user_id);
  store::Task<core::Result<std::optional<ApiKey>>> GetApiKey(unsigned shard, std::string id);
  /// Marks it revoked; false when unknown or already revoked.
  store::Task<core::Result<bool>> RevokeApiKey(unsigned shard, std::string id);
  /// The key this token names when its hash matches (constant-time), whatever its state.
  store::Task<core::Result<std::optional<ApiKey>>> FindApiKey(unsigned shard, std::string token);
  /// Sets last_used_at.
  store::Task<core::Result<void>> TouchApiKey(unsigned shard, std::string id, std::int64_t now);

  struct CreatedClient {
    Client client;
    std::string secret;
  };
  store::Task<core::Result<CreatedClient>> CreateClient(unsigned shard, Client client);
  store::Task<core::Result<std::vector<Client>>> ListClients(unsigned shard);
  store::Task<core::Result<std::optional<Client>>> GetClient(unsigned shard, std::string id);
  store::Task<core::Result<bool>> RevokeClient(unsigned shard, std::string id);
  /// The client when the id exists, is not revoked and the secret's hash matches; nullopt otherwise.
  store::Task<core::Result<std::optional<Client>>> AuthenticateClient(unsigned shard, std::string id, std::string secret);

  /// Custom roles (the built-in ones are not stored).
  store::Task<core::Result<std::vector<Role>>> ListRoles(unsigned shard);
  /// kConflict when the name exists.
  store::Task<core::Result<Role>> CreateRole(unsigned shard, Role role);
  /// false when unknown.
  store::Task<core::Result<bool>> UpdateRole(unsigned shard, Role role);
  /// Deletes the role, then removes it from every user holding it; false when unknown.
  store::Task<core::Result<bool>> DeleteRole(unsigned shard, std::string name);

  /// A user's roles (built-in and custom), sorted; nullopt when there is no such user. Roles are
  /// stored with the user's credentials (basalt_auth_users.roles), the one source that tokens
  /// and access checks read.
  store::Task<core::Result<std::optional<std::vector<std::string>>>> UserRoles(unsigned shard, std::string user_id);
  /// Adds (true) or removes (false) a role; whether anything changed, nullopt when there is no
  /// such user. kConflict when the user's roles keep changing under it.
  store::Task<core::Result<std::optional<bool>>> SetUserRole(unsigned shard, std::string user_id, std::string role,
                                                             bool assigned);

  /// Denylists a token id until `expires_at` (Unix ms). Idempotent.
  store::Task<core::Result<void>> DenyTokenId(unsigned shard, std::string jti, std::int64_t expires_at);
  /// Token ids denied and not yet expired at `now`; purges the expired ones first is not done here.
  store::Task<core::Result<std::vector<std::string>>> DeniedTokenIds(unsigned shard, std::int64_t now);

 private:
  store::Database& db_;
};

}  // namespace basalt::auth
