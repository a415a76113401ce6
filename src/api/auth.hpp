#pragma once
/// /api/v1/auth/*: registration, login, refresh, logout, me, password change, invites, first-admin
/// setup; /.well-known/jwks.json. Users are the records of the built-in `users` collection; their
/// credentials live in auth/ (auth/users.hpp), never in the records API.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "auth/passwords.hpp"
#include "auth/sessions.hpp"
#include "auth/throttle.hpp"
#include "auth/tokens.hpp"
#include "auth/users.hpp"
#include "http/router.hpp"
#include "schema/catalog.hpp"
#include "store/database.hpp"

namespace basalt::audit {
class AuditLog;
}

namespace basalt::api {

/// Who may register.
enum class Registration {
  kOpen,    ///< Anyone.
  kClosed,  ///< Nobody (admins create users: `basalt admin create`, the records API).
  kInvite,  ///< Only with a single-use invite token from POST /api/v1/auth/invites.
};

/// The one-time setup token of an instance that started with no users; dead once used.
class SetupToken {
 public:
  /// Arms it with `token`.
  void Arm(std::string token);
  /// True (and disarmed) when `token` matches; constant-time comparison.
  bool Consume(std::string_view token);
  /// Re-arms a token consumed by a request that then failed.
  void Restore(std::string token);
  bool armed() const;

 private:
  mutable std::mutex mutex_;
  std::string hash_;  ///< SHA-256 hex of the token; empty when not armed.
};

struct AuthOptions {
  Registration registration = Registration::kOpen;
  std::size_t password_min_length = 8;  ///< Code points.
  std::int64_t invite_ttl_s = 7 * 24 * 3600;
};

/// Everything the auth handlers use; owned by app/.
struct AuthServices {
  store::Database& database;
  schema::Catalog& catalog;
  auth::PasswordHasher& passwords;
  auth::TokenService& tokens;
  auth::UserStore& users;
  auth::SessionStore& sessions;
  auth::LoginThrottle& throttle;
  SetupToken& setup;
  AuthOptions options;
  audit::AuditLog* audit = nullptr;  ///< Identity events go here (not recorded when null).
};

/// Registers the routes above.
core::Result<void> RegisterAuth(http::Router& router, const AuthServices& services);

/// The built-in `users` collection as first created (extendable like any collection): one
/// optional text field `name`; rules let a user list, view and update only their own record.
std::string UsersCollectionSpec();

/// Creates the `users` collection when the catalog has none (start-up, `basalt admin create`).
store::Task<core::Result<void>> EnsureUsersCollection(schema::Catalog& catalog, unsigned shard);

/// Checks a new password: at least `min_length` code points, at most 1024 bytes, valid UTF-8.
/// Errors: kValidation on `field`.
core::Result<void> CheckPasswordPolicy(std::string_view password, std::size_t min_length, std::string field = "password");

/// A user to create: its record fields, and its credentials.
struct NewUser {
  std::string email;               ///< Normalised.
  std::string password_hash;       ///< argon2id PHC string.
  std::vector<std::string> roles;  ///< e.g. {"user"} or {"admin"}.
  boost::json::object fields;      ///< Extra fields of the `users` record (validated here).
  std::string invite_hash;         ///< When set: consume this invite in the same transaction.
  bool first_user_only = false;    ///< Refuse (kConflict) when any user exists (setup token).
};

/// Creates the `users` record and its credentials in one transaction; `user` receives the user's
/// JSON (the record plus `email` and `roles`). Errors: kValidation (fields), kConflict (email
/// taken; users exist for first_user_only), kForbidden (invite invalid, used or expired).
store::Task<core::Result<void>> CreateUser(store::Database& database, unsigned shard, const schema::Collection& users,
                                           NewUser user, boost::json::object& out);

}  // namespace basalt::api
