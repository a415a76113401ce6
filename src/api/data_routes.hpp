#pragma once
/// The data API: collections (admin) and their records.

#include <functional>
#include <string>

#include "core/error.hpp"
#include "http/router.hpp"

namespace basalt::core {
class KeyRing;
}
namespace basalt::store {
class Database;
}
namespace basalt::schema {
class Catalog;
}
namespace basalt::audit {
class AuditLog;
}

namespace basalt::api {

/// What the data handlers need. References must outlive the router.
struct DataServices {
  store::Database& database;  ///< Records and the catalog tables.
  schema::Catalog& catalog;   ///< Loaded before the server starts.
  const core::KeyRing& keys;  ///< Seals secret fields; empty when `secrets.keys` is not set.
  /// Collection changes are recorded here, in the change's own transaction; null records nothing.
  audit::AuditLog* audit = nullptr;
};

/// POST/GET /api/v1/collections, GET/PATCH/DELETE /api/v1/collections/{name} (admin only).
core::Result<void> RegisterCollections(http::Router& router, const DataServices& services);

/// /api/v1/collections/{name}/records[/{id}]: list, create, view, replace, merge-patch, delete,
/// under the collection's rules.
core::Result<void> RegisterRecords(http::Router& router, const DataServices& services);

}  // namespace basalt::api
