#include "schema/schema_io.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include <boost/json.hpp>

#include "core/time.hpp"

namespace basalt::schema {
namespace json = boost::json;

namespace {

// Specs in dependency order: repeatedly the first (by name) whose relation targets among `specs`
// are all placed; on a cycle, the first remaining by name.
std::vector<const CollectionSpec*> OrderSpecs(std::vector<const CollectionSpec*> specs) {
  std::sort(specs.begin(), specs.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  std::set<std::string> all, placed;
  for (const auto* s : specs) all.insert(s->name);
  std::vector<const CollectionSpec*> out;
  std::vector<bool> done(specs.size(), false);
  while (out.size() < specs.size()) {
    std::size_t pick = specs.size();
    for (std::size_t i = 0; i < specs.size() && pick == specs.size(); ++i) {
      if (done[i]) continue;
      const bool ready = std::all_of(specs[i]->fields.begin(), specs[i]->fields.end(), [&](const FieldSpec& f) {
        return f.kind != FieldKind::kRelation || f.collection == specs[i]->name || !all.count(f.collection) ||
               placed.count(f.collection);
      });
      if (ready) pick = i;
    }
    if (pick == specs.size()) {  // a cycle: break it by name
      for (std::size_t i = 0; i < specs.size(); ++i) {
        if (!done[i]) {
          pick = i;
          break;
        }
      }
    }
    done[pick] = true;
    placed.insert(specs[pick]->name);
    out.push_back(specs[pick]);
  }
  return out;
}

void Pretty(const json::value& v, std::string& out, int indent) {
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (o.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    std::size_t i = 0;
    for (const auto& [key, value] : o) {
      out += pad + json::serialize(json::string(key)) + ": ";
      Pretty(value, out, indent + 2);
      out += ++i < o.size() ? ",\n" : "\n";
    }
    out += std::string(static_cast<std::size_t>(indent), ' ') + "}";
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    const bool scalars = std::none_of(a.begin(), a.end(), [](const json::value& x) { return x.is_structured(); });
    if (a.empty() || scalars) {  // short lists of names stay on one line
      out += "[";
      for (std::size_t i = 0; i < a.size(); ++i) out += (i ? ", " : "") + json::serialize(a[i]);
      out += "]";
      return;
    }
    out += "[\n";
    for (std::size_t i = 0; i < a.size(); ++i) {
      out += pad;
      Pretty(a[i], out, indent + 2);
      out += i + 1 < a.size() ? ",\n" : "\n";
    }
    out += std::string(static_cast<std::size_t>(indent), ' ') + "]";
  } else {
    out += json::serialize(v);
  }
}

std::string Canonical(const CollectionSpec& spec) { return json::serialize(ToJson(spec)); }

core::Error Prefixed(core::Error error, const std::string& prefix) {
  for (auto& f : error.fields) f.field = f.field.empty() ? prefix : prefix + "." + f.field;
  return error;
}

std::string RefusalText(const core::Error& error) {
  std::string text = error.message;
  for (const auto& f : error.fields) text += " [" + f.field + ": " + f.message + "]";
  return text;
}

std::string Now() { return core::FormatRfc3339(std::chrono::system_clock::now()); }

core::Error InCollection(core::Error error, const std::string& name) {
  error.message = "Collection '" + name + "': " + error.message;
  return error;
}

store::Task<core::Result<void>> ApplyBody(store::Transaction& tx, const store::Dialect& dialect, const ImportPlan& plan,
                                          const std::string& now) {
  for (const ImportAction& a : plan.actions) {
    if (a.kind == ImportAction::Kind::kCreate) {
      auto c = std::make_shared<Collection>();
      c->spec = a.spec;
      c->created_at = c->updated_at = now;
      c->version = 1;
      const std::string spec_text = Canonical(c->spec);
      auto step = CreateInTransaction(tx, dialect, c, spec_text, a.ddl);
      auto done = co_await std::move(step);
      if (!done) co_return std::unexpected(InCollection(std::move(done.error()), a.collection));
    } else if (a.kind == ImportAction::Kind::kChange) {
      CollectionSpec spec = a.spec;
      auto c = std::make_shared<Collection>();
      const std::optional<std::int64_t> expected = a.live_version;
      auto step = UpdateInTransaction(tx, dialect, spec, expected, now, c);
      auto done = co_await std::move(step);
      if (!done) co_return std::unexpected(InCollection(std::move(done.error()), a.collection));
    } else if (a.kind == ImportAction::Kind::kDrop) {
      auto step = DropInTransaction(tx, dialect, a.collection);
      auto done = co_await std::move(step);
      if (!done) co_return std::unexpected(InCollection(std::move(done.error()), a.collection));
    }
  }
  co_return core::Result<void>{};
}

}  // namespace

std::vector<const CollectionSpec*> DependencyOrder(const Snapshot& snapshot) {
  std::vector<const CollectionSpec*> specs;
  for (const auto& [name, c] : snapshot.collections) specs.push_back(&c->spec);
  return OrderSpecs(std::move(specs));
}

json::value ExportDocument(const Snapshot& snapshot) {
  json::array collections;
  for (const CollectionSpec* spec : DependencyOrder(snapshot)) collections.emplace_back(ToJson(*spec));
  json::object doc;
  doc["basalt_schema"] = kSchemaDocumentVersion;
  doc["collections"] = std::move(collections);
  return doc;
}

std::string PrettyJson(const json::value& value) {
  std::string out;
  Pretty(value, out, 0);
  return out + "\n";
}

std::string Export(const Snapshot& snapshot) { return PrettyJson(ExportDocument(snapshot)); }

core::Result<SchemaDocument> ParseSchemaDocument(std::string_view text) {
  auto invalid = [](std::vector<core::FieldError> fields) {
    core::Error error = core::Error::Make(core::ErrorCode::kValidation, "The schema file is invalid.");
    error.fields = std::move(fields);
    return std::unexpected(std::move(error));
  };
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return invalid({{"", "json", "is not valid JSON (" + ec.message() + ")"}});
  if (!root.is_object()) return invalid({{"", "type", "must be a JSON object {\"basalt_schema\": 1, \"collections\": [...]}"}});
  std::vector<core::FieldError> errors;
  const json::object& obj = root.as_object();
  for (const auto& [key, _] : obj) {
    if (key != "basalt_schema" && key != "collections")
      errors.push_back({std::string(key), "unknown_field", "is not a schema file property"});
  }
  const json::value* version = obj.if_contains("basalt_schema");
  if (!version) {
    errors.push_back({"basalt_schema", "required", "is missing: this is not a basalt schema export"});
  } else if (!version->is_int64() || version->as_int64() != kSchemaDocumentVersion) {
    errors.push_back({"basalt_schema", "version",
                      "is " + json::serialize(*version) + "; this basalt reads version " +
                          std::to_string(kSchemaDocumentVersion)});
  }
  SchemaDocument doc;
  const json::value* collections = obj.if_contains("collections");
  if (!collections) {
    errors.push_back({"collections", "required", "must be an array of collections"});
  } else if (!collections->is_array()) {
    errors.push_back({"collections", "type", "must be an array of collections"});
  } else {
    std::set<std::string> names;
    std::size_t i = 0;
    for (const auto& item : collections->as_array()) {
      const std::string at = "collections[" + std::to_string(i++) + "]";
      auto spec = ParseCollectionSpec(item);
      if (!spec) {
        for (auto& f : Prefixed(std::move(spec.error()), at).fields) errors.push_back(std::move(f));
        continue;
      }
      for (std::size_t j = 0; j < spec->fields.size(); ++j) {
        if (!spec->fields[j].previous_name.empty())
          errors.push_back({at + ".fields[" + std::to_string(j) + "].previous_name", "unknown_field",
                            "renames are not part of a schema file (it describes the target state)"});
      }
      if (!names.insert(spec->name).second)
        errors.push_back({at + ".name", "duplicate", "collection '" + spec->name + "' appears twice"});
      doc.collections.push_back(std::move(*spec));
    }
  }
  if (!errors.empty()) return invalid(std::move(errors));
  return doc;
}

std::string_view ActionName(ImportAction::Kind kind) {
  switch (kind) {
    case ImportAction::Kind::kCreate: return "create";
    case ImportAction::Kind::kChange: return "change";
    case ImportAction::Kind::kDrop: return "drop";
    case ImportAction::Kind::kUnchanged: return "unchanged";
    case ImportAction::Kind::kKeep: return "keep";
  }
  return "?";
}

bool ImportPlan::Refused() const {
  return std::any_of(actions.begin(), actions.end(), [](const ImportAction& a) { return !a.refusal.empty(); });
}

bool ImportPlan::Empty() const {
  return std::all_of(actions.begin(), actions.end(), [](const ImportAction& a) {
    return a.kind == ImportAction::Kind::kUnchanged || a.kind == ImportAction::Kind::kKeep;
  });
}

core::Result<ImportPlan> PlanImport(const SchemaDocument& document, const Snapshot& live, std::string_view dialect_name,
                                    const ImportOptions& options) {
  const DdlDialect dialect = DdlDialect::FromName(dialect_name);
  // The catalog as it will be after the import.
  Snapshot target = live;
  std::map<std::string, std::size_t> in_file;
  for (std::size_t i = 0; i < document.collections.size(); ++i) {
    const CollectionSpec& spec = document.collections[i];
    in_file[spec.name] = i;
    auto c = std::make_shared<Collection>();
    c->spec = spec;
    if (const Collection* old = live.Find(spec.name)) c->version = old->version;
    target.collections[spec.name] = std::move(c);
  }
  if (options.prune) {
    for (const auto& [name, c] : live.collections) {
      if (!in_file.count(name)) target.collections.erase(name);
    }
  }
  // The file must fit the resulting catalog: relation targets exist, rules compile.
  std::vector<core::FieldError> errors;
  for (std::size_t i = 0; i < document.collections.size(); ++i) {
    if (auto ok = ValidateAgainst(document.collections[i], target, dialect_name); !ok) {
      for (auto& f : Prefixed(std::move(ok.error()), "collections[" + std::to_string(i) + "]").fields)
        errors.push_back(std::move(f));
    }
  }
  if (!errors.empty()) {
    core::Error error = core::Error::Make(core::ErrorCode::kValidation,
                                          "The schema file does not fit the catalog it would produce.");
    error.fields = std::move(errors);
    return std::unexpected(std::move(error));
  }

  ImportPlan plan;
  plan.dialect = std::string(dialect_name);
  std::vector<ImportAction> creates, changes, drops, noops;
  for (const CollectionSpec* spec : DependencyOrder(target)) {
    const Collection* old = live.Find(spec->name);
    if (!in_file.count(spec->name)) {  // live, not in the file, not pruned
      noops.push_back({ImportAction::Kind::kKeep, spec->name, *spec, old->version, {}, {}});
      continue;
    }
    if (!old) {
      creates.push_back({ImportAction::Kind::kCreate, spec->name, *spec, 0, CreateCollectionDdl(*spec, dialect), {}});
      continue;
    }
    if (Canonical(old->spec) == Canonical(*spec)) {
      noops.push_back({ImportAction::Kind::kUnchanged, spec->name, *spec, old->version, {}, {}});
      continue;
    }
    ImportAction action{ImportAction::Kind::kChange, spec->name, *spec, old->version, {}, {}};
    if (auto ddl = ChangeCollectionDdl(old->spec, *spec, dialect); !ddl) action.refusal = RefusalText(ddl.error());
    else action.ddl = std::move(*ddl);
    if (action.refusal.empty()) {
      if (auto ok = ValidateDependents(target, spec->name, dialect_name); !ok) action.refusal = RefusalText(ok.error());
    }
    changes.push_back(std::move(action));
  }
  if (options.prune) {
    auto order = DependencyOrder(live);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {  // referencing collections first
      if (in_file.count((*it)->name)) continue;
      drops.push_back({ImportAction::Kind::kDrop, (*it)->name, **it, live.Find((*it)->name)->version,
                       DropCollectionDdl(**it, dialect), {}});
    }
  }
  std::sort(noops.begin(), noops.end(), [](const auto& a, const auto& b) { return a.collection < b.collection; });
  for (auto* group : {&creates, &changes, &drops, &noops}) {
    for (auto& a : *group) plan.actions.push_back(std::move(a));
  }
  return plan;
}

std::string FormatPlan(const ImportPlan& plan) {
  std::string out = "Schema import plan (" + plan.dialect + "):\n";
  std::map<ImportAction::Kind, int> counts;
  for (const ImportAction& a : plan.actions) {
    ++counts[a.kind];
    std::string line = "  " + std::string(ActionName(a.kind));
    line.resize(std::max<std::size_t>(line.size() + 1, 13), ' ');
    line += a.collection;
    if (a.kind == ImportAction::Kind::kChange || a.kind == ImportAction::Kind::kDrop)
      line += " (version " + std::to_string(a.live_version) + ")";
    if (a.kind == ImportAction::Kind::kKeep) line += " (not in the file; --prune would drop it)";
    out += line + "\n";
    if (!a.refusal.empty()) {
      out += "      REFUSED: " + a.refusal + "\n";
      continue;
    }
    if (a.kind == ImportAction::Kind::kChange && a.ddl.up.empty()) out += "      (no SQL: definition and rules only)\n";
    std::size_t pos = 0;
    while (pos < a.ddl.up.size()) {
      std::size_t nl = a.ddl.up.find('\n', pos);
      if (nl == std::string::npos) nl = a.ddl.up.size();
      if (nl > pos) out += "      " + a.ddl.up.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
    }
  }
  using K = ImportAction::Kind;
  out += std::to_string(counts[K::kCreate]) + " to create, " + std::to_string(counts[K::kChange]) + " to change, " +
         std::to_string(counts[K::kDrop]) + " to drop, " + std::to_string(counts[K::kUnchanged]) + " unchanged, " +
         std::to_string(counts[K::kKeep]) + " kept.\n";
  return out;
}

store::Task<core::Result<void>> ApplyImport(store::Database& database, const ImportPlan& plan, unsigned shard) {
  if (plan.Refused()) {
    core::Error error = core::Error::Make(core::ErrorCode::kConflict, "The import is refused; nothing was changed.");
    for (const ImportAction& a : plan.actions) {
      if (a.refusal.empty()) continue;
      if (error.message.find(": ") == std::string::npos)
        error.message = "The import is refused (collection '" + a.collection + "': " + a.refusal + "); nothing was changed.";
      error.fields.push_back({a.collection, "unsafe_change", a.refusal});
    }
    co_return std::unexpected(std::move(error));
  }
  const store::Dialect& dialect = database.dialect();
  if (dialect.Name() != plan.dialect)
    co_return core::Fail(core::ErrorCode::kInternal, "The import plan was made for another database.");
  if (plan.Empty()) co_return core::Result<void>{};
  const std::string now = Now();
  auto done = co_await database.Transact(shard, [&](store::Transaction& tx) { return ApplyBody(tx, dialect, plan, now); });
  co_return done;
}

}  // namespace basalt::schema
