#include "app/system_migrations.hpp"

#include "api/idempotency.hpp"
#include "auth/access_store.hpp"
#include "auth/migrations.hpp"
#include "audit/audit.hpp"
#include "queue/migrations.hpp"
#include "events/outbox.hpp"
#include "schema/catalog.hpp"

namespace basalt::app {

std::vector<store::Migration> SystemMigrations(std::string_view dialect) {
  std::vector<store::Migration> all;
  // Each module appends its own list here; versions are global (the Migrator sorts them).
  auto append = [&all](std::vector<store::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(schema::SystemMigrations());     // versions 200..299
  append(api::IdempotencyMigrations());  // version 500
  append(auth::IdentityMigrations());    // versions 600..649
  append(auth::AccessMigrations());      // versions 650..699
  append(audit::Migrations());           // versions 700..749
  append(queue::SystemMigrations());     // versions 900..949
  append(events::Migrations(dialect));   // versions 950..999
  return all;
}

}  // namespace basalt::app
