#include "schema/secrets.hpp"

#include "schema/collection.hpp"
#include "schema/ddl.hpp"

namespace basalt::schema {

namespace {

/// One value to rewrite: UPDATE ... SET value, index WHERE id AND value = old.
struct Rewrite {
  std::string id;
  std::string field;
  std::string old_value;
  std::string new_value;
  std::string new_index;
};

store::Task<core::Result<void>> WriteBatch(store::Transaction& tx, const store::Dialect& dialect,
                                           const std::string& table, const std::vector<Rewrite>& rewrites,
                                           std::int64_t& written, std::int64_t& changed) {
  for (const auto& r : rewrites) {
    store::Statement st{"UPDATE " + Quote(table) + " SET " + Quote(r.field) + " = " + dialect.Placeholder(1) + ", " +
                            Quote(BlindIndexColumn(r.field)) + " = " + dialect.Placeholder(2) + " WHERE \"id\" = " +
                            dialect.Placeholder(3) + " AND " + Quote(r.field) + " = " + dialect.Placeholder(4),
                        {r.new_value, r.new_index, r.id, r.old_value}};
    auto done = co_await tx.Execute(std::move(st));
    if (!done) co_return std::unexpected(std::move(done.error()));
    if (done->affected > 0) ++written;
    else ++changed;
  }
  co_return core::Result<void>{};
}

}  // namespace

store::Task<core::Result<RotationReport>> RotateSecrets(store::Database& database, const Snapshot& snapshot,
                                                        const core::KeyRing& keys, std::size_t batch) {
  if (keys.empty()) co_return core::Fail(core::ErrorCode::kUnavailable, "No encryption key is configured (secrets.keys).");
  RotationReport report;
  const store::Dialect& dialect = database.dialect();
  const std::string active = keys.active_id();
  for (const auto& [name, collection] : snapshot.collections) {
    const CollectionSpec& spec = collection->spec;
    std::vector<const FieldSpec*> secrets;
    for (const auto& f : spec.fields) {
      if (f.kind == FieldKind::kSecret) secrets.push_back(&f);
    }
    if (secrets.empty()) continue;
    report.collections.push_back(spec.name);
    const std::string table = TableName(spec.name);
    std::string columns = "\"id\"";
    for (const FieldSpec* f : secrets) columns += ", " + Quote(f->name);
    std::string after;  // keyset: the last id of the previous batch
    for (;;) {
      store::Statement select{"SELECT " + columns + " FROM " + Quote(table) +
                                  (after.empty() ? std::string() : " WHERE \"id\" > " + dialect.Placeholder(1)) +
                                  " ORDER BY \"id\" LIMIT " + std::to_string(batch),
                              {}};
      if (!after.empty()) select.params.push_back(after);
      auto rows = co_await database.Query(0, std::move(select));
      if (!rows) co_return std::unexpected(std::move(rows.error()));
      if (rows->rows.empty()) break;
      std::vector<Rewrite> rewrites;
      for (const auto& row : rows->rows) {
        const auto* id = std::get_if<std::string>(&row.at(0));
        if (!id) continue;
        for (std::size_t j = 0; j < secrets.size(); ++j) {
          const auto* sealed = std::get_if<std::string>(&row.at(1 + j));
          if (!sealed) continue;
          ++report.scanned;
          if (core::KeyRing::KeyIdOf(*sealed) == active) continue;
          auto plain = keys.Open(*sealed, SecretAad(spec.name, secrets[j]->name, *id));
          if (!plain) {
            core::Error e = plain.error();
            e.message = "Record " + *id + " of '" + spec.name + "', field '" + secrets[j]->name + "': " + e.message;
            co_return std::unexpected(std::move(e));
          }
          auto resealed = keys.Seal(*plain, SecretAad(spec.name, secrets[j]->name, *id));
          if (!resealed) co_return std::unexpected(std::move(resealed.error()));
          rewrites.push_back(Rewrite{*id, secrets[j]->name, *sealed, std::move(*resealed),
                                     keys.BlindIndex(SecretContext(spec.name, secrets[j]->name), *plain)});
        }
      }
      if (const auto* last = std::get_if<std::string>(&rows->rows.back().at(0))) after = *last;
      if (!rewrites.empty()) {
        std::int64_t written = 0, changed = 0;
        auto done = co_await database.Transact(0, [&](store::Transaction& tx) {
          return WriteBatch(tx, dialect, table, rewrites, written, changed);
        });
        if (!done) co_return std::unexpected(std::move(done.error()));
        report.rewritten += written;
        report.changed += changed;
      }
      if (rows->rows.size() < batch) break;
    }
  }
  co_return report;
}

}  // namespace basalt::schema
