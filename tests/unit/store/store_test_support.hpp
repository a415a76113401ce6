#pragma once
/// Helpers for store tests: run a coroutine to completion, temp directories, backend factories.

#include <atomic>
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

#include "core/error.hpp"
#include "store/database.hpp"
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
};

/// Test names and failure messages show the backend's name, not its bytes.
inline void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

/// Every backend the conformance suites run against. A PostgreSQL factory (own database or
/// schema per `dir`, skipped when no server is configured) is added here later.
inline std::vector<Backend> AllBackends() {
  return {Backend{"sqlite", [](const std::filesystem::path& dir, unsigned shards) {
                    SqliteOptions options;
                    options.path = (dir / "basalt.db").string();
                    options.shards = shards;
                    return OpenSqlite(options);
                  }}};
}

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

}  // namespace basalt::store::testing
