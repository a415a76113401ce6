/// Group commit throughput: 512 single-row INSERT transactions per iteration, issued by
/// `concurrency` coroutines at once (1 = one at a time: one COMMIT and one fsync each).
/// Counters: items_per_second (transactions/s) and commits (groups) per iteration.

#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "store/sqlite.hpp"

namespace {

namespace asio = boost::asio;
using basalt::store::Statement;
using basalt::store::Task;
using basalt::store::Transaction;

constexpr int kTransactions = 512;

void BM_SqliteGroupCommit(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  const auto dir = std::filesystem::temp_directory_path() / ("basalt-store-bench-" + std::to_string(concurrency));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::atomic<std::int64_t> commits{0};
  basalt::store::SqliteOptions options;
  options.path = (dir / "bench.db").string();
  options.shards = 1;
  options.on_group_commit = [&](std::size_t) { ++commits; };
  auto db = basalt::store::OpenSqlite(options);
  if (!db) {
    state.SkipWithError(db.error().cause.c_str());
    return;
  }
  auto& database = **db;
  auto create = [](Transaction& tx) -> Task<basalt::core::Result<void>> {
    Statement st{"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {}};
    auto r = co_await tx.Execute(std::move(st));
    if (!r) co_return std::unexpected(r.error());
    co_return basalt::core::Result<void>{};
  };
  {
    asio::io_context io;
    asio::co_spawn(io, [&]() -> Task<void> { (void)co_await database.Transact(0, create); }, asio::detached);
    io.run();
  }
  std::int64_t failures = 0;
  commits = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    std::atomic<int> next{0};
    for (int c = 0; c < concurrency; ++c) {
      asio::co_spawn(
          io,
          [&]() -> Task<void> {
            while (next.fetch_add(1) < kTransactions) {
              auto r = co_await database.Transact(0, [](Transaction& tx) -> Task<basalt::core::Result<void>> {
                Statement st{"INSERT INTO t (v) VALUES (?1)", {std::string("payload")}};
                auto ok = co_await tx.Execute(std::move(st));
                if (!ok) co_return std::unexpected(ok.error());
                co_return basalt::core::Result<void>{};
              });
              if (!r) ++failures;
            }
          },
          asio::detached);
    }
    io.run();
  }
  state.SetItemsProcessed(state.iterations() * kTransactions);
  state.counters["commits_per_iter"] =
      benchmark::Counter(static_cast<double>(commits.load()) / static_cast<double>(state.iterations()));
  state.counters["failures"] = static_cast<double>(failures);
  database.Close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteGroupCommit)->Arg(1)->Arg(8)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
