#pragma once
/// Records: validation of request bodies into typed column values, and rows back into JSON.

#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "schema/collection.hpp"
#include "store/database.hpp"

namespace basalt::schema {

/// How a body is applied.
enum class WriteMode {
  kCreate,   ///< POST: missing fields take their default, else null.
  kReplace,  ///< PUT: the body is the whole record; missing fields take their default, else null.
  kMerge,    ///< PATCH: RFC 7396 merge patch onto the current record (null removes → default/null).
};

/// Column values to write, one per user field in declaration order; after SealSecrets, followed by
/// the blind index column of each secret field (the SelectList order).
using Columns = std::vector<std::pair<std::string, store::Value>>;

/// Validates `body` for `spec`. For kMerge, `current` is the current record (RowToJson) and the
/// patch is merged into it first (json fields merge recursively), then the result is validated
/// like a replace. Every problem is reported at once: kValidation with FieldErrors whose codes are
/// unknown_field, read_only, required, type, min, max, min_length, max_length, pattern, select,
/// email, url, datetime, relation. A body that is not an object is kValidation on field "".
core::Result<Columns> ValidateRecord(const CollectionSpec& spec, const boost::json::value& body, WriteMode mode,
                                     const boost::json::object* current = nullptr);

/// Turns the plaintext of every secret field in `columns` (ValidateRecord's output) into its
/// sealed value for record `id` (core::KeyRing::Seal with SecretAad) and appends the blind index
/// column of each secret field, so `columns` can be written as is. With kMerge, a secret field
/// absent from `body` keeps its stored value and index, taken from `current_row` (the record's
/// SelectList row). Does nothing for a spec without secrets. Errors: kUnavailable when a value
/// must be sealed and `keys` is null or empty, kInternal when sealing fails.
core::Result<void> SealSecrets(const CollectionSpec& spec, std::string_view id, const core::KeyRing* keys,
                               WriteMode mode, const boost::json::value& body,
                               const std::vector<store::Value>* current_row, Columns& columns);

/// The column list of a record in the order RowToJson expects: id, created_at, updated_at,
/// version, then user fields, then the blind index column of each secret field; quoted,
/// prefixed by `alias` when not empty.
std::string SelectList(const CollectionSpec& spec, std::string_view alias = {});

/// A row selected with SelectList as a record: bool as true/false, json parsed, multi-select as
/// an array, numbers typed. Secret fields are never part of it.
boost::json::object RowToJson(const CollectionSpec& spec, const std::vector<store::Value>& row);

/// RFC 7396: `patch` applied to `target`.
boost::json::value MergePatch(boost::json::value target, const boost::json::value& patch);

}  // namespace basalt::schema
