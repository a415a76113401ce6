#pragma once
/// Helpers for store tests: run a coroutine to completion, temp directories, backend factories.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "core/hash.hpp"
#include "core/error.hpp"
#include "store/database.hpp"
#include "store/postgres.hpp"
#include "store/sqlite.hpp"

namespace basalt::store::testing {

/// Runs a coroutine to completion on a private io_context.
template <class T>
T RunTask(Task<T> task) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.run();
  return future.get();
}

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("basalt-store-" + std::to_string(std::random_device{}()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// One backend under test: opens the database that belongs to `dir` (the same dir opens the same
/// database again, e.g. after Close) with `shards` read shards.
struct Backend {
  std::string name;
  std::function<core::Result<std::unique_ptr<Database>>(const std::filesystem::path& dir, unsigned shards)> open;
  /// Why this backend cannot run here (e.g. no server configured); empty when it can.
  std::function<std::string()> skip;
};

/// The backend's skip reason, empty when it can run. Fixtures call GTEST_SKIP() with it.
inline std::string SkipReason(const Backend& backend) { return backend.skip ? backend.skip() : std::string(); }

/// The PostgreSQL server the tests use: env BASALT_TEST_POSTGRES_URL (scripts/test.sh starts a
/// throwaway cluster with scripts/pg-test-cluster.sh and exports it). Empty when unset.
inline std::string PostgresTestUrl() {
  const char* url = std::getenv("BASALT_TEST_POSTGRES_URL");
  return url ? std::string(url) : std::string();
}

inline std::string PostgresSkipReason() {
  if (!PostgresTestUrl().empty()) return {};
  return "PostgreSQL tests skipped: BASALT_TEST_POSTGRES_URL is not set. Run `scripts/pg-test-cluster.sh start "
         "/tmp/pgt` and export the URL it prints (`make test` does this).";
}

/// The schema that belongs to a test directory: "t_" + FNV-1a 64 of its path, so reopening the
/// same directory reaches the same data and every test gets its own tables.
inline std::string PostgresSchemaFor(const std::filesystem::path& dir) {
  return "t_" + core::Hex64(core::Fnv1a64(dir.string()));
}

/// Opens the test server with search_path set (URL `options`) to the schema of `dir`, creating
/// that schema when missing.
inline core::Result<std::unique_ptr<Database>> OpenPostgresFor(const std::filesystem::path& dir, unsigned shards,
                                                               unsigned pool_size = 4) {
  std::string url = PostgresTestUrl();
  if (url.empty()) return core::Fail(core::ErrorCode::kUnavailable, PostgresSkipReason());
  const std::string schema = PostgresSchemaFor(dir);
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += "options=-csearch_path%3D" + schema;
  PostgresOptions options;
  options.url = url;
  options.shards = shards;
  options.pool_size = pool_size;
  auto db = OpenPostgres(options);
  if (!db) return db;
  auto created = RunTask((*db)->Transact(0, [schema](Transaction& tx) -> Task<core::Result<void>> {
    co_return co_await tx.ExecuteScript("CREATE SCHEMA IF NOT EXISTS " + schema);
  }));
  if (!created) return std::unexpected(std::move(created.error()));
  return db;
}

/// Test names and failure messages show the backend's name, not its bytes.
inline void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

/// Every backend the conformance suites run against. PostgreSQL: one schema per `dir` on the
/// server of BASALT_TEST_POSTGRES_URL; skipped (with the reason) when that is unset.
inline std::vector<Backend> AllBackends() {
  std::vector<Backend> out;
  out.push_back(Backend{"sqlite",
                        [](const std::filesystem::path& dir, unsigned shards) {
                          SqliteOptions options;
                          options.path = (dir / "basalt.db").string();
                          options.shards = shards;
                          return OpenSqlite(options);
                        },
                        {}});
  out.push_back(Backend{"postgres",
                        [](const std::filesystem::path& dir, unsigned shards) { return OpenPostgresFor(dir, shards); },
                        PostgresSkipReason});
  return out;
}

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

}  // namespace basalt::store::testing
