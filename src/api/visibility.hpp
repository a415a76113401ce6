#pragma once
/// Private to api/: which records of a collection a caller may see in a live stream, under the
/// same rule compilation as the records handlers (records.cpp implements these).

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "api/data_support.hpp"
#include "core/error.hpp"
#include "store/database.hpp"

namespace basalt::core {
class KeyRing;
}
namespace basalt::schema {
struct CollectionSpec;
struct Snapshot;
}  // namespace basalt::schema

namespace basalt::api::detail {

/// The view rule plus an optional filter, compiled once per subscriber.
struct Visibility {
  bool everything = false;  ///< A superuser, or a public view rule without filter: no query needed.
  std::string conditions;   ///< SQL over the alias "t"; placeholders 1..params.size().
  std::vector<store::Value> params;
};

/// Errors: 401 (kUnauthorized) when the view rule is admin-only and the caller is not a
/// superuser; 400/422 for a bad filter, as on lists.
core::Result<Visibility> CompileVisibility(const store::Dialect& dialect, const schema::Snapshot& snap,
                                           const schema::CollectionSpec& spec, Caller caller, std::string_view filter,
                                           const core::KeyRing* keys);

/// `SELECT 1 FROM (<record's values, typed like its columns>) AS "t" WHERE <conditions>`: one row
/// when the caller may see `record` (a record as JSON, e.g. an event's data). Evaluating the
/// event's own copy of the record also works for deletes and ignores later changes.
store::Statement VisibilityQuery(const store::Dialect& dialect, const schema::CollectionSpec& spec,
                                 const Visibility& visibility, const boost::json::object& record);

}  // namespace basalt::api::detail
