#pragma once
/// Refresh tokens: opaque 256-bit random values (base64url, 43 characters), stored only as their
/// SHA-256 in `basalt_auth_refresh_tokens`, grouped in families (one per login). Every use rotates
/// the token (the old one is spent, a new one joins the family); presenting a spent or revoked
/// token revokes the whole family (reuse detection: one of the holders is a thief).

#include <cstdint>
#include <string>

#include "auth/passwords.hpp"
#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::auth {


/// A refresh token just issued.
struct RefreshToken {
  std::string token;      ///< Shown once to the client.
  std::string family_id;  ///< The login it belongs to.
};

/// What presenting a refresh token did.
struct RefreshOutcome {
  std::string user_id;
  std::string family_id;
  bool reused = false;   ///< A spent or revoked token: the family is now revoked, no new token.
  RefreshToken next;     ///< The rotated token (when !reused).
};

class SessionStore {
 public:
  /// Holds a reference to `database`; refresh tokens live `ttl_s` seconds.
  SessionStore(store::Database& database, std::int64_t ttl_s) : database_(database), ttl_s_(ttl_s) {}

  /// Starts a family for a login and returns its first token.
  Task<core::Result<RefreshToken>> Start(unsigned shard, std::string user_id);

  /// Rotates `token`. Unknown, malformed or expired: kUnauthorized. Spent or revoked: the family
  /// is revoked (committed) and the outcome says `reused`.
  Task<core::Result<RefreshOutcome>> Rotate(unsigned shard, std::string token);

  /// Revokes the family of `token` (logout). Unknown token: kUnauthorized. Returns the user id.
  Task<core::Result<std::string>> RevokeFamilyOf(unsigned shard, std::string token);

  /// Revokes every family of `user_id` except `keep_family` ("" keeps none), inside `tx`.
  static store::Task<core::Result<void>> RevokeUserIn(store::Transaction& tx, const store::Dialect& dialect,
                                                      const std::string& user_id, const std::string& keep_family);

  /// The family of a live token of `user_id`, or "" (the session making a password change).
  Task<core::Result<std::string>> FamilyOf(unsigned shard, std::string token, std::string user_id);

  std::int64_t ttl_s() const { return ttl_s_; }

 private:
  store::Database& database_;
  std::int64_t ttl_s_;
};

}  // namespace basalt::auth
