#include "store/deferred.hpp"

#include <string>
#include <utility>
#include <variant>

namespace basalt::store {

Task<core::Result<void>> ExecuteDeferred(Transaction& tx, Statement statement) {
  if (auto* deferring = dynamic_cast<DeferringTransaction*>(&tx)) co_return co_await deferring->Defer(std::move(statement));
  auto result = co_await tx.Execute(std::move(statement));
  if (!result) co_return std::unexpected(std::move(result.error()));
  co_return core::Result<void>{};
}

Task<core::Result<void>> ExecuteAndNotify(Transaction& tx, Statement statement, std::string channel, bool defer) {
  if (defer) {
    if (auto* deferring = dynamic_cast<DeferringTransaction*>(&tx))
      co_return co_await deferring->DeferNotifying(std::move(statement), std::move(channel));
  }
  auto result = co_await tx.Execute(std::move(statement));
  if (!result) co_return std::unexpected(std::move(result.error()));
  std::string payload;
  if (!result->rows.empty() && !result->rows[0].empty()) {
    const Value& v = result->rows[0][0];
    if (const auto* i = std::get_if<std::int64_t>(&v)) payload = std::to_string(*i);
    else if (const auto* s = std::get_if<std::string>(&v)) payload = *s;
  }
  co_return co_await tx.Notify(std::move(channel), std::move(payload));
}

Task<core::Result<void>> TransactRelaxed(Database& db, unsigned shard, TransactionWork work) {
  if (auto* relaxing = dynamic_cast<RelaxingDatabase*>(&db)) co_return co_await relaxing->TransactRelaxed(shard, std::move(work));
  co_return co_await db.Transact(shard, std::move(work));
}

std::string UseIndex(const Dialect& dialect, std::string_view index) {
  // The one backend difference of this helper; it lives in store/ like every other.
  if (dialect.Name() == "sqlite") return " INDEXED BY " + dialect.QuoteIdentifier(index);
  return {};
}

}  // namespace basalt::store
