#include "app/database.hpp"

#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>

#include "app/system_migrations.hpp"
#include "schema/secrets.hpp"
#include "audit/audit.hpp"
#include "store/migrations.hpp"
#include "store/postgres.hpp"
#include "store/sqlite.hpp"

namespace basalt::app {

core::Result<std::unique_ptr<store::Database>> OpenDatabase(const config::Settings& settings, unsigned shards) {
  if (!settings.database.url.empty()) {
    return store::OpenPostgres({.url = settings.database.url, .shards = shards, .pool_size = settings.database.pool_size});
  }
  std::error_code ec;
  std::filesystem::create_directories(settings.storage.data_dir, ec);
  if (ec) {
    return core::Fail(core::ErrorCode::kInternal,
                      "cannot create data directory " + settings.storage.data_dir + ": " + ec.message());
  }
  return store::OpenSqlite({.path = (std::filesystem::path(settings.storage.data_dir) / "basalt.db").string(),
                            .shards = shards});
}

template <class T>
T RunBlocking(store::Task<T> task) {
  boost::asio::io_context ctx;
  auto future = boost::asio::co_spawn(ctx, std::move(task), boost::asio::use_future);
  ctx.run();
  return future.get();
}

template core::Result<int> RunBlocking(store::Task<core::Result<int>>);
template core::Result<std::int64_t> RunBlocking(store::Task<core::Result<std::int64_t>>);
template core::Result<std::string> RunBlocking(store::Task<core::Result<std::string>>);
template core::Result<void> RunBlocking(store::Task<core::Result<void>>);
template core::Result<schema::RotationReport> RunBlocking(store::Task<core::Result<schema::RotationReport>>);
template core::Result<audit::VerifyReport> RunBlocking(store::Task<core::Result<audit::VerifyReport>>);
template core::Result<audit::Record> RunBlocking(store::Task<core::Result<audit::Record>>);
template core::Result<std::vector<store::MigrationStatus>> RunBlocking(
    store::Task<core::Result<std::vector<store::MigrationStatus>>>);

core::Result<int> MigrateUp(store::Database& database) {
  store::Migrator migrator(database, SystemMigrations(database.dialect().Name()));
  return RunBlocking(migrator.Up());
}

core::Result<core::KeyRing> LoadKeyRing(const config::Settings& settings) {
  return core::KeyRing::Parse(settings.secrets.keys, settings.secrets.active_key);
}

std::unique_ptr<store::Database> OpenForCommand(const config::Settings& settings) {
  auto database = OpenDatabase(settings, 1);
  if (!database) {
    std::cerr << "basalt: cannot open the database: " << database.error().message << "\n";
    return nullptr;
  }
  if (auto migrated = MigrateUp(**database); !migrated) {
    std::cerr << "basalt: system migrations failed: " << migrated.error().message << "\n";
    (*database)->Close();
    return nullptr;
  }
  return std::move(*database);
}

}  // namespace basalt::app
