#include "schema/catalog.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "core/ids.hpp"
#include "core/time.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"
#include "schema/ddl.hpp"
#include "schema/resolver.hpp"
#include "store/values.hpp"

namespace basalt::schema {
namespace json = boost::json;

namespace {

std::string Now() { return core::FormatRfc3339(std::chrono::system_clock::now()); }

core::Result<CollectionSpec> ParseStored(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return core::Fail(core::ErrorCode::kInternal, "A stored collection is corrupt.", ec.message());
  auto spec = ParseCollectionSpec(v);
  if (!spec) return core::Fail(core::ErrorCode::kInternal, "A stored collection is corrupt.", spec.error().message);
  return spec;
}

store::Statement RecordMigration(const std::string& collection, const DdlChange& ddl, const std::string& now) {
  return store::Statement{
      "INSERT INTO basalt_schema_migrations (id, collection, up_sql, down_sql, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)",
      {core::FormatUuid(core::NewUuidV7()), collection, ddl.up, ddl.down, now}};
}

// Rewrites "?n" placeholders for the backend's dialect.
store::Statement ForDialect(const store::Dialect& dialect, store::Statement st) {
  std::string out;
  for (std::size_t i = 0; i < st.sql.size(); ++i) {
    if (st.sql[i] == '?' && i + 1 < st.sql.size() && std::isdigit(static_cast<unsigned char>(st.sql[i + 1]))) {
      std::size_t j = i + 1;
      int n = 0;
      while (j < st.sql.size() && std::isdigit(static_cast<unsigned char>(st.sql[j]))) n = n * 10 + (st.sql[j++] - '0');
      out += dialect.Placeholder(n);
      i = j - 1;
    } else {
      out += st.sql[i];
    }
  }
  st.sql = std::move(out);
  return st;
}

// One basalt_collections row (name, spec, created_at, updated_at, version) as a Collection.
core::Result<std::shared_ptr<const Collection>> RowToCollection(const std::vector<store::Value>& row) {
  auto spec = ParseStored(store::TextOf(row.at(1)));
  if (!spec) return std::unexpected(std::move(spec.error()));
  auto c = std::make_shared<Collection>();
  c->spec = std::move(*spec);
  c->created_at = store::TextOf(row.at(2));
  c->updated_at = store::TextOf(row.at(3));
  if (const auto* v = std::get_if<std::int64_t>(&row.at(4))) c->version = *v;
  return c;
}

}  // namespace

store::Task<core::Result<void>> CreateInTransaction(store::Transaction& tx, const store::Dialect& dialect, std::shared_ptr<Collection> c, const std::string& spec_text, const DdlChange& ddl) {
    store::Statement st1 = ForDialect(
        dialect, {std::string("INSERT INTO basalt_collections (name, spec, created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, 1)"),
                  {c->spec.name, spec_text, c->created_at, c->updated_at}});
    auto inserted = co_await tx.Execute(std::move(st1));
    if (!inserted) {
      if (inserted.error().code == core::ErrorCode::kConflict)
        co_return core::Fail(core::ErrorCode::kConflict, "A collection named '" + c->spec.name + "' already exists.");
      co_return std::unexpected(std::move(inserted.error()));
    }
    if (auto created = co_await tx.ExecuteScript(ddl.up); !created) co_return created;
    store::Statement st2 = ForDialect(dialect, RecordMigration(c->spec.name, ddl, c->created_at));
    auto recorded = co_await tx.Execute(std::move(st2));
    if (!recorded) co_return std::unexpected(std::move(recorded.error()));
    co_return core::Result<void>{};
  }

store::Task<core::Result<void>> UpdateInTransaction(store::Transaction& tx, const store::Dialect& dialect, CollectionSpec& spec, std::optional<std::int64_t> expected_version, const std::string& now, std::shared_ptr<Collection> c) {
    store::Statement st3 = ForDialect(
        dialect, {std::string("SELECT spec, created_at, version FROM basalt_collections WHERE name = ?1"), {spec.name}});
    auto rows = co_await tx.Execute(std::move(st3));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    if (rows->rows.empty()) co_return core::Fail(core::ErrorCode::kNotFound, "No collection named '" + spec.name + "'.");
    auto current = ParseStored(store::TextOf(rows->rows[0][0]));
    if (!current) co_return std::unexpected(std::move(current.error()));
    const auto* version = std::get_if<std::int64_t>(&rows->rows[0][2]);
    const std::int64_t v = version ? *version : 0;
    if (expected_version && *expected_version != v)
      co_return core::Fail(core::ErrorCode::kPreconditionFailed, "The collection has changed since it was read.");
    auto ddl = ChangeCollectionDdl(*current, spec, DdlDialect::FromName(dialect.Name()));
    if (!ddl) co_return std::unexpected(std::move(ddl.error()));
    if (!ddl->up.empty()) {
      if (auto applied = co_await tx.ExecuteScript(ddl->up); !applied) {
        if (applied.error().code == core::ErrorCode::kConflict)
          co_return core::Fail(core::ErrorCode::kConflict,
                               "Existing records violate the new unique constraint.", applied.error().cause);
        co_return applied;
      }
    }
    for (auto& f : spec.fields) f.previous_name.clear();
    store::Statement st4 = ForDialect(
        dialect, {std::string("UPDATE basalt_collections SET spec = ?1, updated_at = ?2, version = ?3 WHERE name = ?4"),
                  {json::serialize(ToJson(spec)), now, v + 1, spec.name}});
    auto updated = co_await tx.Execute(std::move(st4));
    if (!updated) co_return std::unexpected(std::move(updated.error()));
    store::Statement st5 = ForDialect(dialect, RecordMigration(spec.name, *ddl, now));
    auto recorded = co_await tx.Execute(std::move(st5));
    if (!recorded) co_return std::unexpected(std::move(recorded.error()));
    c->created_at = store::TextOf(rows->rows[0][1]);
    c->updated_at = now;
    c->version = v + 1;
    co_return core::Result<void>{};
  }

store::Task<core::Result<void>> DropInTransaction(store::Transaction& tx, const store::Dialect& dialect, const std::string& name) {
    store::Statement st6 = {std::string("SELECT name, spec FROM basalt_collections"), {}};
    auto rows = co_await tx.Execute(std::move(st6));
    if (!rows) co_return std::unexpected(std::move(rows.error()));
    std::optional<CollectionSpec> target;
    for (const auto& row : rows->rows) {
      auto spec = ParseStored(store::TextOf(row.at(1)));
      if (!spec) co_return std::unexpected(std::move(spec.error()));
      if (spec->name == name) {
        target = std::move(*spec);
        continue;
      }
      for (const auto& f : spec->fields) {
        if (f.kind == FieldKind::kRelation && f.collection == name)
          co_return core::Fail(core::ErrorCode::kConflict, "Collection '" + spec->name + "' has a relation field '" +
                                                               f.name + "' to '" + name + "'; drop that field first.");
      }
    }
    if (!target) co_return core::Fail(core::ErrorCode::kNotFound, "No collection named '" + name + "'.");
    const DdlChange ddl = DropCollectionDdl(*target, DdlDialect::FromName(dialect.Name()));
    if (auto dropped = co_await tx.ExecuteScript(ddl.up); !dropped) co_return dropped;
    store::Statement st7 = ForDialect(dialect, {std::string("DELETE FROM basalt_collections WHERE name = ?1"), {name}});
    auto deleted = co_await tx.Execute(std::move(st7));
    if (!deleted) co_return std::unexpected(std::move(deleted.error()));
    store::Statement st8 = ForDialect(dialect, RecordMigration(name, ddl, Now()));
    auto recorded = co_await tx.Execute(std::move(st8));
    if (!recorded) co_return std::unexpected(std::move(recorded.error()));
    co_return core::Result<void>{};
  }

const Collection* Snapshot::Find(std::string_view name) const {
  auto it = collections.find(name);
  return it == collections.end() ? nullptr : it->second.get();
}

json::object ToJson(const Collection& c) {
  json::object out = ToJson(c.spec);
  out["created_at"] = c.created_at;
  out["updated_at"] = c.updated_at;
  out["version"] = c.version;
  return out;
}

std::vector<store::Migration> SystemMigrations() {
  return {store::Migration{
      200, "schema_catalog",
      "CREATE TABLE basalt_collections (name TEXT PRIMARY KEY NOT NULL, spec TEXT NOT NULL, created_at TEXT NOT NULL, "
      "updated_at TEXT NOT NULL, version BIGINT NOT NULL);\n"
      "CREATE TABLE basalt_schema_migrations (id TEXT PRIMARY KEY NOT NULL, collection TEXT NOT NULL, up_sql TEXT "
      "NOT NULL, down_sql TEXT NOT NULL, applied_at TEXT NOT NULL);\n"
      "CREATE INDEX basalt_schema_migrations_collection ON basalt_schema_migrations (collection, applied_at);\n",
      "DROP TABLE basalt_schema_migrations;\nDROP TABLE basalt_collections;\n"}};
}

core::Result<void> ValidateAgainst(const CollectionSpec& spec, const Snapshot& snapshot, std::string_view dialect_name) {
  std::vector<core::FieldError> errors;
  for (std::size_t i = 0; i < spec.fields.size(); ++i) {
    const FieldSpec& f = spec.fields[i];
    if (f.kind == FieldKind::kRelation && f.collection != spec.name && !snapshot.Find(f.collection))
      errors.push_back({"fields[" + std::to_string(i) + "].collection", "unknown_collection",
                        "no collection named '" + f.collection + "'"});
  }
  if (errors.empty()) {
    const DdlDialect dialect = DdlDialect::FromName(dialect_name);
    CollectionResolver resolver(snapshot, spec, dialect);
    AnonymousVariables variables;
    const query::SqlSyntax syntax =
        dialect.kind() == DdlDialect::Kind::kPostgres ? query::SqlSyntax::Postgres() : query::SqlSyntax::Sqlite();
    auto check = [&](const char* name, const std::optional<std::string>& rule) {
      if (!rule) return;
      auto expr = query::Parse(*rule);
      if (!expr) {
        errors.push_back({std::string("rules.") + name, "rule", expr.error().message});
        return;
      }
      auto compiled = query::Compile(*expr, resolver, variables, syntax);
      if (!compiled) errors.push_back({std::string("rules.") + name, "rule", compiled.error().message});
    };
    check("list", spec.rules.list);
    check("view", spec.rules.view);
    check("create", spec.rules.create);
    check("update", spec.rules.update);
    check("delete", spec.rules.del);
  }
  if (errors.empty()) return {};
  core::Error error = core::Error::Make(core::ErrorCode::kValidation, "The collection definition is invalid.");
  error.fields = std::move(errors);
  return std::unexpected(std::move(error));
}

core::Result<void> ValidateDependents(const Snapshot& next, std::string_view changed, std::string_view dialect_name) {
  for (const auto& [name, other] : next.collections) {
    if (name == changed) continue;
    const bool refers = std::any_of(other->spec.fields.begin(), other->spec.fields.end(), [&](const FieldSpec& f) {
      return f.kind == FieldKind::kRelation && f.collection == changed;
    });
    if (!refers) continue;
    if (auto ok = ValidateAgainst(other->spec, next, dialect_name); !ok) {
      core::Error error = core::Error::Make(
          core::ErrorCode::kConflict, "The rules of collection '" + name + "' depend on fields this change removes.");
      for (auto& f : ok.error().fields) f.field = name + "." + f.field;
      error.fields = std::move(ok.error().fields);
      return std::unexpected(std::move(error));
    }
  }
  return {};
}

Catalog::Catalog(store::Database& database)
    : database_(database), current_(std::make_shared<const Snapshot>()) {}

store::Task<core::Result<void>> Catalog::Load(unsigned shard) {
  store::Statement select{"SELECT name, spec, created_at, updated_at, version FROM basalt_collections ORDER BY name", {}};
  auto rows = co_await database_.Query(shard, std::move(select));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  auto next = std::make_shared<Snapshot>();
  for (const auto& row : rows->rows) {
    auto c = RowToCollection(row);
    if (!c) co_return std::unexpected(std::move(c.error()));
    next->collections[(*c)->spec.name] = std::move(*c);
  }
  std::lock_guard lock(publish_mutex_);
  current_.store(std::move(next), std::memory_order_release);
  co_return core::Result<void>{};
}

store::Task<core::Result<bool>> Catalog::Refresh(unsigned shard, std::chrono::milliseconds min_interval) {
  return RefreshAt(shard, min_interval, last_refresh_ms_);
}

store::Task<core::Result<bool>> Catalog::RefreshAt(unsigned shard, std::chrono::milliseconds min_interval,
                                                   std::atomic<std::int64_t>& last_ms) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = last_ms.load(std::memory_order_relaxed);
  if ((last != 0 && now - last < min_interval.count()) ||
      !last_ms.compare_exchange_strong(last, now, std::memory_order_relaxed))
    co_return false;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(publish_mutex_);
    generation = generation_;
  }
  store::Statement select{"SELECT name, spec, created_at, updated_at, version FROM basalt_collections", {}};
  auto rows = co_await database_.Query(shard, std::move(select));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  std::vector<std::shared_ptr<const Collection>> fresh;
  for (const auto& row : rows->rows) {
    auto c = RowToCollection(row);
    if (!c) co_return std::unexpected(std::move(c.error()));
    fresh.push_back(std::move(*c));
  }
  std::lock_guard lock(publish_mutex_);
  auto next = std::make_shared<Snapshot>(*current_.load(std::memory_order_acquire));
  std::set<std::string> present;
  for (auto& c : fresh) {
    present.insert(c->spec.name);
    auto it = next->collections.find(c->spec.name);
    if (it == next->collections.end() || it->second->version < c->version) next->collections[c->spec.name] = c;
  }
  // Dropped elsewhere. Unless this process published meanwhile: a collection it created after the
  // SELECT above would look dropped; the next refresh decides.
  if (generation == generation_) std::erase_if(next->collections, [&](const auto& kv) { return !present.contains(kv.first); });
  current_.store(std::move(next), std::memory_order_release);
  co_return true;
}

void Catalog::RefreshInBackground(unsigned shard, const boost::asio::any_io_executor& executor,
                                  std::chrono::milliseconds interval) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  const std::int64_t last = last_background_ms_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < interval.count()) return;
  // RefreshAt claims the slot with a compare-exchange, so concurrent callers start at most one. Its
  // own slot: a lookup of an unknown name must not be skipped because of a background refresh.
  boost::asio::co_spawn(executor, RefreshAt(shard, interval, last_background_ms_),
                        [](std::exception_ptr, const core::Result<bool>&) {});
}

core::Result<void> Catalog::LoadBlocking(unsigned shard) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, Load(shard), boost::asio::use_future);
  io.run();
  try {
    return future.get();
  } catch (const std::exception& e) {
    return core::Fail(core::ErrorCode::kInternal, "Loading the catalog failed.", e.what());
  }
}

void Catalog::Publish(std::shared_ptr<const Collection> collection, const std::string& removed) {
  std::lock_guard lock(publish_mutex_);
  ++generation_;
  auto next = std::make_shared<Snapshot>(*current_.load(std::memory_order_acquire));
  if (collection) {
    auto it = next->collections.find(collection->spec.name);
    if (it == next->collections.end() || it->second->version <= collection->version)
      next->collections[collection->spec.name] = std::move(collection);
  }
  if (!removed.empty()) next->collections.erase(removed);
  current_.store(std::move(next), std::memory_order_release);
}

namespace {
// Runs `step`, then `also` (when set) in the same transaction.
store::Task<core::Result<void>> Then(store::Task<core::Result<void>> step, store::Transaction& tx,
                                     const store::TransactionWork& also) {
  auto done = co_await std::move(step);
  if (!done || !also) co_return done;
  co_return co_await also(tx);
}
}  // namespace

store::Task<core::Result<std::shared_ptr<const Collection>>> Catalog::Create(unsigned shard, CollectionSpec spec, store::TransactionWork also) {
  auto snap = snapshot();
  if (snap->Find(spec.name))
    co_return core::Fail(core::ErrorCode::kConflict, "A collection named '" + spec.name + "' already exists.");
  const store::Dialect& dialect = database_.dialect();
  if (auto ok = ValidateAgainst(spec, *snap, dialect.Name()); !ok) co_return std::unexpected(std::move(ok.error()));
  for (auto& f : spec.fields) f.previous_name.clear();
  auto c = std::make_shared<Collection>();
  c->created_at = c->updated_at = Now();
  c->version = 1;
  const DdlChange ddl = CreateCollectionDdl(spec, DdlDialect::FromName(dialect.Name()));
  const std::string spec_text = json::serialize(ToJson(spec));
  c->spec = std::move(spec);
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return Then(CreateInTransaction(tx, dialect, c, spec_text, ddl), tx, also); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  Publish(c);
  co_return std::shared_ptr<const Collection>(c);
}

store::Task<core::Result<std::shared_ptr<const Collection>>> Catalog::Update(
    unsigned shard, CollectionSpec spec, std::optional<std::int64_t> expected_version, store::TransactionWork also) {
  auto snap = snapshot();
  const store::Dialect& dialect = database_.dialect();
  if (!snap->Find(spec.name))
    co_return core::Fail(core::ErrorCode::kNotFound, "No collection named '" + spec.name + "'.");
  if (auto ok = ValidateAgainst(spec, *snap, dialect.Name()); !ok) co_return std::unexpected(std::move(ok.error()));
  {
    // Other collections' rules may reach into this one through a relation (`author.name`): they
    // must still compile against the changed fields.
    Snapshot next = *snap;
    auto changed = std::make_shared<Collection>();
    changed->spec = spec;
    next.collections[spec.name] = changed;
    if (auto ok = ValidateDependents(next, spec.name, dialect.Name()); !ok) co_return std::unexpected(std::move(ok.error()));
  }
  auto c = std::make_shared<Collection>();
  const std::string now = Now();
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return Then(UpdateInTransaction(tx, dialect, spec, expected_version, now, c), tx, also); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  c->spec = std::move(spec);
  Publish(c);
  co_return std::shared_ptr<const Collection>(c);
}

store::Task<core::Result<void>> Catalog::Drop(unsigned shard, std::string name, store::TransactionWork also) {
  const store::Dialect& dialect = database_.dialect();
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return Then(DropInTransaction(tx, dialect, name), tx, also); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  Publish(nullptr, name);
  co_return core::Result<void>{};
}

}  // namespace basalt::schema
