#pragma once
/// The query::FieldResolver of a collection: its user fields and system fields, and one hop
/// through a relation (`author.name`) as a correlated scalar subquery.

#include <memory>
#include <string>

#include "core/crypto.hpp"
#include "query/resolver.hpp"
#include "schema/catalog.hpp"
#include "schema/ddl.hpp"

namespace basalt::schema {

/// Resolves field paths of `collection`, whose table is aliased `alias` ("t") in the query.
/// Holds references: `snapshot` and `collection` must outlive it. json fields are kJson; multi
/// select fields are multi-valued (elements of the JSON array). Unknown paths, paths longer than
/// two segments, and paths through a relation to an unknown collection are kBadRequest errors
/// "unknown field 'x.y'". Secret fields resolve to their blind index column with
/// `equality_keys` computed under `keys` (every key of the ring; none when `keys` is null or
/// empty, so equality never matches); `keys` must outlive the resolver.
class CollectionResolver final : public query::FieldResolver {
 public:
  CollectionResolver(const Snapshot& snapshot, const CollectionSpec& collection, const DdlDialect& dialect,
                     std::string alias = "t", const core::KeyRing* keys = nullptr);
  core::Result<query::ResolvedField> Resolve(const std::vector<std::string>& path) const override;

  /// Type of a system or user field for the compiler, or nullopt when unknown.
  static std::optional<query::FieldType> TypeOf(const CollectionSpec& collection, std::string_view field);

 private:
  const Snapshot& snapshot_;
  const CollectionSpec& collection_;
  DdlDialect dialect_;
  std::string alias_;
  const core::KeyRing* keys_;
};

/// Variables for rules and filters in this slice: `@now` is the current time (RFC 3339 UTC,
/// milliseconds); every `@request.*` is null (there are no users yet).
class AnonymousVariables final : public query::VariableResolver {
 public:
  core::Result<query::Value> Variable(const std::vector<std::string>& path) const override;
};

}  // namespace basalt::schema
