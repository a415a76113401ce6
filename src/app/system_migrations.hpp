#pragma once
/// Basalt's own system tables, as one ordered list of migrations across every module. Versions
/// are global and never reused; each module contributes its migrations here, in order.

#include <vector>

#include "store/migrations.hpp"

namespace basalt::app {

/// Every system migration, ordered by version. Portable SQL (runs on SQLite and PostgreSQL).
std::vector<store::Migration> SystemMigrations();

}  // namespace basalt::app
