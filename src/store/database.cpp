#include "store/database.hpp"

#include <utility>

namespace basalt::store {

Task<core::Result<void>> Transaction::ExecuteDeferred(Statement statement) {
  auto result = co_await Execute(std::move(statement));
  if (!result) co_return std::unexpected(std::move(result.error()));
  co_return core::Result<void>{};
}

}  // namespace basalt::store
