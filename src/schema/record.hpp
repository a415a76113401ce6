#pragma once
/// Records: validation of request bodies into typed column values, and rows back into JSON.

#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

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

/// Column values to write, one per user field in declaration order.
using Columns = std::vector<std::pair<std::string, store::Value>>;

/// Validates `body` for `spec`. For kMerge, `current` is the current record (RowToJson) and the
/// patch is merged into it first (json fields merge recursively), then the result is validated
/// like a replace. Every problem is reported at once: kValidation with FieldErrors whose codes are
/// unknown_field, read_only, required, type, min, max, min_length, max_length, pattern, select,
/// email, url, datetime, relation. A body that is not an object is kValidation on field "".
core::Result<Columns> ValidateRecord(const CollectionSpec& spec, const boost::json::value& body, WriteMode mode,
                                     const boost::json::object* current = nullptr);

/// The column list of a record in the order RowToJson expects: id, created_at, updated_at,
/// version, then user fields; quoted, prefixed by `alias` when not empty.
std::string SelectList(const CollectionSpec& spec, std::string_view alias = {});

/// A row selected with SelectList as a record: bool as true/false, json parsed, multi-select as
/// an array, numbers typed.
boost::json::object RowToJson(const CollectionSpec& spec, const std::vector<store::Value>& row);

/// RFC 7396: `patch` applied to `target`.
boost::json::value MergePatch(boost::json::value target, const boost::json::value& patch);

}  // namespace basalt::schema
