#pragma once
/// Access tokens: short-lived JWTs signed with Ed25519 (`alg: EdDSA`, header `kid`), claims iss,
/// aud, sub, exp, iat, jti and roles. The signing keys live in the system table
/// `basalt_auth_keys`, so every instance sharing a database signs and verifies with the same keys.
/// Rotation adds a new current key; the previous keys stay valid (and in the JWKS) until every
/// token they signed has expired (superseded + ttl + leeway).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/passwords.hpp"
#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::auth {

struct TokenOptions {
  std::string issuer = "basalt";    ///< `iss` written and required.
  std::string audience = "basalt";  ///< `aud` written and required.
  std::int64_t ttl_s = 900;         ///< Access-token lifetime.
  std::int64_t service_ttl_s = 900; ///< OAuth2 client-credentials token lifetime.
  std::int64_t leeway_s = 30;       ///< Clock skew tolerated on exp / iat / nbf.
  std::int64_t key_max_age_s = 0;   ///< Rotate automatically after this age; 0: only by command.
};

/// The verified claims of an access token.
struct AccessClaims {
  std::string subject;             ///< `sub`: the user id.
  std::string jti;                 ///< `jti`: unique token id.
  std::string session_id;          ///< `sid`: the login (refresh-token family); "" when absent.
  std::vector<std::string> roles;  ///< `roles`.
  std::string client_id;           ///< `client_id`: set only in OAuth2 service tokens.
  std::vector<std::string> scopes; ///< `scope` (space-separated in the token), service tokens.
  std::int64_t issued_at = 0;      ///< `iat`, Unix seconds.
  std::int64_t expires_at = 0;     ///< `exp`, Unix seconds.
};

/// A freshly signed access token.
struct IssuedToken {
  std::string token;
  std::int64_t expires_in = 0;  ///< Seconds.
};

/// Seconds since the Unix epoch.
std::int64_t UnixNow();

/// Signs and verifies access tokens. Thread-safe: readers take an immutable key snapshot.
class TokenService {
 public:
  /// Holds a reference to `database`, which must outlive the service.
  TokenService(store::Database& database, TokenOptions options);

  /// Reads the keys; creates the first key when the table is empty. Call before serving.
  Task<core::Result<void>> Load(unsigned shard);

  /// Adds a new current signing key and reloads; returns its kid.
  Task<core::Result<std::string>> Rotate(unsigned shard);

  /// Rotates when the current key is older than key_max_age_s (when set), and picks up keys that
  /// other instances added (at most once a minute). Cheap to call on every login.
  Task<core::Result<void>> Maintain(unsigned shard);

  /// A signed token for `user_id` with `roles` and session `sid`, valid ttl_s from now.
  /// Errors: kInternal.
  core::Result<IssuedToken> Issue(std::string_view user_id, const std::vector<std::string>& roles,
                                  std::string_view session_id = {}) const;

  /// A signed OAuth2 client-credentials token (RFC 9068 claims): `sub` and `client_id` are the
  /// client, `scope` the space-separated scopes; no roles. Valid service_ttl_s from now.
  core::Result<IssuedToken> IssueService(std::string_view client_id, const std::vector<std::string>& scopes) const;
  ~TokenService();
  /// Verifies a token: alg exactly EdDSA (no `none`, no HMAC, no `crit`), a known kid, the
  /// signature, iss, aud, exp/iat/nbf with the leeway, and the claim types. An unknown kid
  /// reloads the keys once (rate-limited) in case another instance rotated. A token that verified
  /// before is answered from a cache until its `exp` (plus the leeway).
  /// Errors: kUnauthorized with a short reason ("expired", "unknown key", ...).
  Task<core::Result<AccessClaims>> Verify(unsigned shard, std::string token);

  /// Verify against the keys already loaded, at `now` (unit tests, and the fast path).
  core::Result<AccessClaims> VerifyAt(std::string_view token, std::int64_t now) const;

  /// The JSON Web Key Set of the keys accepted now (RFC 7517, OKP / Ed25519 per RFC 8037).
  std::string Jwks() const;

  const TokenOptions& options() const { return options_; }

 private:
  struct KeySet {
    std::vector<SigningKey> keys;  ///< Newest first; keys[0] signs.
  };
  Task<core::Result<void>> Reload(unsigned shard);
  /// Keys that verify at `now`: the current one and those superseded less than ttl + leeway ago.
  static std::vector<const SigningKey*> Accepted(const KeySet& set, const TokenOptions& o, std::int64_t now);

  store::Database& database_;
  TokenOptions options_;
  std::atomic<std::shared_ptr<const KeySet>> keys_;
  std::atomic<std::int64_t> last_reload_ms_{0};
  /// Tokens that verified, by their exact text, until they expire: an Ed25519 verification costs
  /// tens of microseconds, a lookup well under one. Bounded; sharded to keep I/O threads apart.
  class VerifiedCache;
  std::unique_ptr<VerifiedCache> verified_;
};

}  // namespace basalt::auth
