#include "store/deferred.hpp"

#include <utility>

namespace basalt::store {

Task<core::Result<void>> ExecuteDeferred(Transaction& tx, Statement statement) {
  if (auto* deferring = dynamic_cast<DeferringTransaction*>(&tx)) co_return co_await deferring->Defer(std::move(statement));
  auto result = co_await tx.Execute(std::move(statement));
  if (!result) co_return std::unexpected(std::move(result.error()));
  co_return core::Result<void>{};
}

std::string UseIndex(const Dialect& dialect, std::string_view index) {
  // The one backend difference of this helper; it lives in store/ like every other.
  if (dialect.Name() == "sqlite") return " INDEXED BY " + dialect.QuoteIdentifier(index);
  return {};
}

}  // namespace basalt::store
