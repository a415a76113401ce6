#include "auth/migrations.hpp"

namespace basalt::auth {

std::vector<store::Migration> IdentityMigrations() {
  return {
      {.version = 600,
       .name = "auth users, signing keys, refresh tokens, invites",
       .up = "CREATE TABLE basalt_auth_users ("
             " user_id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,"
             " roles TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
             "CREATE TABLE basalt_auth_keys ("
             " kid TEXT PRIMARY KEY, private_key TEXT NOT NULL, public_key TEXT NOT NULL, created_at BIGINT NOT NULL);"
             "CREATE TABLE basalt_auth_refresh_tokens ("
             " token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, user_id TEXT NOT NULL,"
             " created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT, revoked BIGINT NOT NULL);"
             "CREATE INDEX basalt_auth_refresh_family ON basalt_auth_refresh_tokens (family_id);"
             "CREATE INDEX basalt_auth_refresh_user ON basalt_auth_refresh_tokens (user_id);"
             "CREATE TABLE basalt_auth_invites ("
             " token_hash TEXT PRIMARY KEY, created_by TEXT NOT NULL, created_at BIGINT NOT NULL,"
             " expires_at BIGINT NOT NULL, used_at BIGINT, used_by TEXT);",
       .down = "DROP TABLE basalt_auth_invites; DROP TABLE basalt_auth_refresh_tokens;"
               " DROP TABLE basalt_auth_keys; DROP TABLE basalt_auth_users;"},
  };
}

}  // namespace basalt::auth
