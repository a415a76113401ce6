#pragma once
/// Basalt's own system tables, as one ordered list of migrations across every module. Versions
/// are global and never reused; each module contributes its migrations here, in order.

#include <string_view>
#include <vector>

#include "store/migrations.hpp"

namespace basalt::app {

/// Every system migration, ordered by version. Portable SQL (runs on SQLite and PostgreSQL),
/// except where a module needs a backend's own feature: `dialect` is store::Dialect::Name()
/// ("sqlite" or "postgres"; the events outbox uses an identity column and transaction ids).
std::vector<store::Migration> SystemMigrations(std::string_view dialect = "sqlite");

}  // namespace basalt::app
