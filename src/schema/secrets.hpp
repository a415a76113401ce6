#pragma once
/// Key rotation for secret fields: re-encrypts every stored secret value under the key ring's
/// active key, in small batches of short transactions, while servers keep running.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "schema/catalog.hpp"
#include "store/database.hpp"

namespace basalt::schema {

/// What a rotation did.
struct RotationReport {
  std::int64_t scanned = 0;    ///< Non-null secret values read.
  std::int64_t rewritten = 0;  ///< Values re-encrypted under the active key (with a new blind index).
  std::int64_t changed = 0;    ///< Values a concurrent write replaced first; left alone (run again).
  std::vector<std::string> collections;  ///< Collections with secret fields that were visited.
};

/// Walks every collection of `snapshot` that has secret fields, in primary-key order, `batch`
/// records at a time. A value whose key id is already the active one is left alone, so a second
/// run rewrites nothing (idempotent) and an interrupted run simply starts over (resumable). Other
/// values are opened with the key their id names, sealed again under the active key (bound to the
/// same collection, field and record) and written back with their blind index, in one short
/// transaction per batch; the write only happens if the stored value is still the one read
/// (a concurrent write wins and is counted in `changed`). `version` and `updated_at` stay as they
/// are: the record's content does not change. Errors: kUnavailable for an empty ring; kNotFound
/// when a value is sealed under a key the ring does not hold; kForbidden when a value does not
/// authenticate; database errors. Nothing is lost on error: every value stays readable.
store::Task<core::Result<RotationReport>> RotateSecrets(store::Database& database, const Snapshot& snapshot,
                                                        const core::KeyRing& keys, std::size_t batch = 200);

}  // namespace basalt::schema
