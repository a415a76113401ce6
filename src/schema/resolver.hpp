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

/// Variables with no caller: `@now` is the current time (RFC 3339 UTC, milliseconds); every
/// `@request.*` is null. Used to check that a rule compiles.
class AnonymousVariables final : public query::VariableResolver {
 public:
  core::Result<query::Value> Variable(const std::vector<std::string>& path) const override;
};

/// Variables of one request: `@now`; `@request.auth.id` is the caller's user id (null when
/// anonymous or not acting for a user); `@request.auth.role` is "admin" when the caller holds the
/// admin role, else its first role (null when none). Every other `@request.*` is null. Values
/// are bound as parameters, never spliced into SQL.
class RequestVariables final : public query::VariableResolver {
 public:
  RequestVariables(std::string auth_id, std::string auth_role)
      : auth_id_(std::move(auth_id)), auth_role_(std::move(auth_role)) {}
  core::Result<query::Value> Variable(const std::vector<std::string>& path) const override;

 private:
  std::string auth_id_;
  std::string auth_role_;
};

}  // namespace basalt::schema
