#pragma once
/// The system tables of auth/ (versions 600..649): users' credentials, signing keys, refresh
/// tokens, invites. Portable SQL for SQLite and PostgreSQL.

#include <vector>

#include "store/migrations.hpp"

namespace basalt::auth {

std::vector<store::Migration> IdentityMigrations();

}  // namespace basalt::auth
