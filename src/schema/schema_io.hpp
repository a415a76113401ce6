#pragma once
/// Moving a whole schema between environments (`basalt schema export` / `basalt schema import`).
///
/// The document: `{"basalt_schema": 1, "collections": [<canonical spec>, ...]}`, each spec exactly
/// as `POST /api/v1/collections` accepts it (schema::ToJson of the spec), in dependency order (a
/// relation's target before the collections that reference it; ties and cycles by name).
///
/// An import is a diff against the live catalog: collections to create, to change (the rules of
/// PUT /api/v1/collections/{name}: ChangeCollectionDdl, ValidateAgainst, ValidateDependents), to
/// drop (only with `prune`), and the rest unchanged or kept. ApplyImport runs the whole plan in one
/// transaction, each step recorded in basalt_schema_migrations as the API records it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/error.hpp"
#include "schema/catalog.hpp"
#include "schema/collection.hpp"
#include "schema/ddl.hpp"
#include "store/database.hpp"

namespace basalt::schema {

/// The version of the document format (`"basalt_schema"`).
inline constexpr std::int64_t kSchemaDocumentVersion = 1;

/// The document as a JSON value, collections in dependency order.
boost::json::value ExportDocument(const Snapshot& snapshot);

/// ExportDocument pretty-printed (2-space indent, keys in the canonical order, trailing newline).
/// Deterministic: the same catalog always gives the same bytes.
std::string Export(const Snapshot& snapshot);

/// JSON pretty-printer used by Export (objects keep their key order).
std::string PrettyJson(const boost::json::value& value);

/// The collections of `snapshot` in dependency order (relation targets first; ties by name;
/// members of a relation cycle by name).
std::vector<const CollectionSpec*> DependencyOrder(const Snapshot& snapshot);

/// A parsed import document.
struct SchemaDocument {
  std::vector<CollectionSpec> collections;  ///< In file order.
};

/// Parses and validates a document: JSON, version, every spec (ParseCollectionSpec), unique names,
/// no `previous_name`. Every problem is reported at once: kValidation with field paths like
/// "collections[2].fields[0].type".
core::Result<SchemaDocument> ParseSchemaDocument(std::string_view text);

/// Options of an import.
struct ImportOptions {
  bool prune = false;  ///< Drop live collections absent from the document.
};

/// One step of an import plan.
struct ImportAction {
  enum class Kind {
    kCreate,     ///< New collection.
    kChange,     ///< Live collection whose spec differs.
    kDrop,       ///< Live collection absent from the document, with prune.
    kUnchanged,  ///< Same spec as live: nothing to do.
    kKeep,       ///< Live collection absent from the document, without prune: left alone.
  };
  Kind kind = Kind::kUnchanged;
  std::string collection;
  CollectionSpec spec;            ///< create/change: the new spec; drop/keep/unchanged: the live spec.
  std::int64_t live_version = 0;  ///< change/drop/keep/unchanged: the live version (guards the apply).
  DdlChange ddl;                  ///< The SQL that runs (up) and would undo it (down); empty for no-ops.
  std::string refusal;            ///< Non-empty: this step is unsafe or impossible; the import is refused.
};

/// "create", "change", "drop", "unchanged", "keep".
std::string_view ActionName(ImportAction::Kind kind);

/// A whole import: steps in execution order (creates in dependency order, then changes, then
/// drops with referencing collections first), then the no-ops (unchanged, keep) by name.
struct ImportPlan {
  std::string dialect;  ///< store::Dialect::Name() of the database the plan is for.
  std::vector<ImportAction> actions;
  /// True when some step was refused (ApplyImport would refuse the whole plan).
  bool Refused() const;
  /// True when nothing would change.
  bool Empty() const;
};

/// Computes the diff between `document` and `live`, with the SQL for `dialect_name`. Errors:
/// kValidation when the document does not fit the resulting catalog (unknown relation target,
/// a rule that does not compile), reported at once with "collections[i]." paths. Unsafe changes
/// are not errors: they are refused steps of the plan (ImportPlan::Refused), so a dry run can
/// show them all.
core::Result<ImportPlan> PlanImport(const SchemaDocument& document, const Snapshot& live,
                                    std::string_view dialect_name, const ImportOptions& options = {});

/// The plan for people: one line per action, its SQL indented below, then a summary line.
std::string FormatPlan(const ImportPlan& plan);

/// Applies `plan` in one transaction of `database`: all or nothing. Errors: kConflict naming the
/// collection and the reason when the plan has refused steps (nothing is run) or a step fails
/// (e.g. existing records violate a new unique index); kPreconditionFailed when a collection
/// changed since the plan was made; database errors. A running server's catalog does not see the
/// result until it restarts (or refreshes new collections on demand).
store::Task<core::Result<void>> ApplyImport(store::Database& database, const ImportPlan& plan, unsigned shard = 0);

}  // namespace basalt::schema
