#include "schema/resolver.hpp"

#include <chrono>

#include "core/time.hpp"

namespace basalt::schema {

namespace {

// The equality transform of secret field `field` of `collection`.
std::function<std::vector<std::string>(std::string_view)> SecretKeys(const core::KeyRing* keys,
                                                                       std::string context) {
  return [keys, context = std::move(context)](std::string_view value) {
    return keys ? keys->BlindIndexes(context, value) : std::vector<std::string>{};
  };
}

std::string JoinPath(const std::vector<std::string>& path) {
  std::string p;
  for (const auto& s : path) p += (p.empty() ? "" : ".") + s;
  return p;
}

}  // namespace

CollectionResolver::CollectionResolver(const Snapshot& snapshot, const CollectionSpec& collection,
                                       const DdlDialect& dialect, std::string alias, const core::KeyRing* keys)
    : snapshot_(snapshot), collection_(collection), dialect_(dialect), alias_(std::move(alias)), keys_(keys) {}

std::optional<query::FieldType> CollectionResolver::TypeOf(const CollectionSpec& c, std::string_view name) {
  if (name == "id") return query::FieldType::kText;
  if (name == "created_at" || name == "updated_at") return query::FieldType::kDatetime;
  if (name == "version") return query::FieldType::kInteger;
  const FieldSpec* f = c.Find(name);
  if (!f) return std::nullopt;
  switch (f->kind) {
    case FieldKind::kInteger: return query::FieldType::kInteger;
    case FieldKind::kNumber: return query::FieldType::kNumber;
    case FieldKind::kBool: return query::FieldType::kBool;
    case FieldKind::kDatetime: return query::FieldType::kDatetime;
    case FieldKind::kJson: return query::FieldType::kJson;
    case FieldKind::kRelation: return query::FieldType::kRelation;
    default: return query::FieldType::kText;
  }
}

core::Result<query::ResolvedField> CollectionResolver::Resolve(const std::vector<std::string>& path) const {
  auto unknown = [&] { return core::Fail(core::ErrorCode::kBadRequest, "unknown field '" + JoinPath(path) + "'"); };
  if (path.empty() || path.size() > 2) return unknown();
  auto type = TypeOf(collection_, path[0]);
  if (!type) return unknown();
  const std::string column = Quote(alias_) + "." + Quote(path[0]);
  const FieldSpec* field = collection_.Find(path[0]);
  if (path.size() == 1) {
    if (field && field->kind == FieldKind::kSelect && field->multi)
      return query::ResolvedField{dialect_.JsonArrayElements(column), query::FieldType::kText, true, {}};
    if (field && field->kind == FieldKind::kSecret)
      return query::ResolvedField{Quote(alias_) + "." + Quote(BlindIndexColumn(field->name)), query::FieldType::kText,
                                  false, {}, SecretKeys(keys_, SecretContext(collection_.name, field->name))};
    return query::ResolvedField{column, *type, false, {}};
  }
  if (!field || field->kind != FieldKind::kRelation) return unknown();
  const CollectionSpec* target = nullptr;
  if (field->collection == collection_.name) {
    target = &collection_;
  } else if (const Collection* c = snapshot_.Find(field->collection)) {
    target = &c->spec;
  }
  if (!target) return unknown();
  auto target_type = TypeOf(*target, path[1]);
  const FieldSpec* target_field = target->Find(path[1]);
  if (!target_type || (target_field && target_field->kind == FieldKind::kSelect && target_field->multi))
    return unknown();
  // A correlated scalar subquery: at most one row (by primary key), no JOIN to deduplicate.
  const std::string r = Quote("r_" + path[0]);
  if (target_field && target_field->kind == FieldKind::kSecret)
    return query::ResolvedField{"(SELECT " + r + "." + Quote(BlindIndexColumn(path[1])) + " FROM " +
                                    Quote(TableName(target->name)) + " AS " + r + " WHERE " + r + ".\"id\" = " + column +
                                    ")",
                                query::FieldType::kText, false, {},
                                SecretKeys(keys_, SecretContext(target->name, path[1]))};
  return query::ResolvedField{"(SELECT " + r + "." + Quote(path[1]) + " FROM " + Quote(TableName(target->name)) +
                                  " AS " + r + " WHERE " + r + ".\"id\" = " + column + ")",
                              *target_type, false, {}};
}

core::Result<query::Value> AnonymousVariables::Variable(const std::vector<std::string>& path) const {
  if (path.size() == 1 && path[0] == "now") return query::Value{core::FormatRfc3339(std::chrono::system_clock::now())};
  return query::Value{};
}

core::Result<query::Value> RequestVariables::Variable(const std::vector<std::string>& path) const {
  if (path.size() == 3 && path[0] == "request" && path[1] == "auth") {
    if (path[2] == "id") return auth_id_.empty() ? query::Value{} : query::Value{auth_id_};
    if (path[2] == "role") return auth_role_.empty() ? query::Value{} : query::Value{auth_role_};
  }
  return AnonymousVariables().Variable(path);
}

}  // namespace basalt::schema
