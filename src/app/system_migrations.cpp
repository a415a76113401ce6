#include "app/system_migrations.hpp"

namespace basalt::app {

std::vector<store::Migration> SystemMigrations() {
  std::vector<store::Migration> all;
  // Each module appends its own list here, keeping versions increasing.
  return all;
}

}  // namespace basalt::app
