#pragma once
/// Users' credentials: the system table `basalt_auth_users`, one row per user of the built-in
/// `users` collection (same id), holding what the records API must never see or write: the
/// normalised email (unique), the argon2id hash, and the roles (a JSON array of strings, e.g.
/// ["user"] or ["admin"]). Keeping them out of the collection's table makes mass assignment
/// through the records API impossible by construction.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/passwords.hpp"
#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::auth {

/// One user's credentials.
struct UserCredentials {
  std::string id;                  ///< The user's record id in the `users` collection.
  std::string email;               ///< Normalised (see NormalizeEmail).
  std::string password_hash;       ///< argon2id PHC string.
  std::vector<std::string> roles;  ///< "user", "admin", custom roles.
};

/// Trims and lower-cases an address and checks its shape (one '@', a non-empty local part and a
/// domain with a dot, no spaces or control characters, at most 254 bytes).
/// Errors: kValidation with a field error on "email".
core::Result<std::string> NormalizeEmail(std::string_view email);

/// Roles as stored: a JSON array text; and back (malformed text reads as no roles).
std::string RolesToJson(const std::vector<std::string>& roles);
std::vector<std::string> RolesFromJson(std::string_view text);

/// Reads and writes `basalt_auth_users`. Thread-safe (stateless apart from the database).
class UserStore {
 public:
  explicit UserStore(store::Database& database) : database_(database) {}

  /// The credentials for a normalised email, or nullopt.
  Task<core::Result<std::optional<UserCredentials>>> FindByEmail(unsigned shard, std::string email);
  /// The credentials of a user id, or nullopt.
  Task<core::Result<std::optional<UserCredentials>>> FindById(unsigned shard, std::string id);
  /// How many users have credentials.
  Task<core::Result<std::int64_t>> Count(unsigned shard);

  /// Inserts credentials inside `tx`. Errors: kConflict "email taken" (unique), database errors.
  static store::Task<core::Result<void>> Insert(store::Transaction& tx, const store::Dialect& dialect,
                                                const UserCredentials& user);
  /// Replaces a user's password hash inside `tx`. Errors: kNotFound.
  static store::Task<core::Result<void>> SetPasswordHash(store::Transaction& tx, const store::Dialect& dialect,
                                                         const std::string& id, const std::string& hash);
  /// Replaces a user's password hash inside `tx` only while it still is `old_hash` (a rehash after
  /// login must not undo a password change that committed meanwhile). True when replaced.
  static store::Task<core::Result<bool>> ReplacePasswordHash(store::Transaction& tx, const store::Dialect& dialect,
                                                             const std::string& id, const std::string& old_hash,
                                                             const std::string& new_hash);
  /// Deletes the credentials of `email` whose user record no longer exists in `users_table`
  /// (a quoted table name from the schema), so the address can be registered again.
  static store::Task<core::Result<void>> DeleteOrphan(store::Transaction& tx, const store::Dialect& dialect,
                                                      const std::string& email, const std::string& users_table);
  /// How many users have credentials, inside `tx`.
  static store::Task<core::Result<std::int64_t>> CountIn(store::Transaction& tx);

 private:
  Task<core::Result<std::optional<UserCredentials>>> FindBy(unsigned shard, std::string column, std::string value);
  store::Database& database_;
};

}  // namespace basalt::auth
