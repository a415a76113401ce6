#include "auth/access_store.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

#include "auth/scopes.hpp"
#include "core/crypto.hpp"
#include "auth/users.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "store/values.hpp"

namespace basalt::auth {
namespace {

using store::Null;
using store::ResultSet;
using store::Statement;
using store::Value;

std::optional<std::int64_t> OptInt(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
  return std::nullopt;
}
Value OrNull(const std::optional<std::int64_t>& v) { return v ? Value(*v) : Value(Null{}); }

constexpr const char* kKeyColumns =
    "id, user_id, name, scopes, created_by, created_at, expires_at, last_used_at, revoked_at, secret_hash";

ApiKey RowToKey(const std::vector<Value>& r) {
  ApiKey k;
  k.id = store::TextOf(r[0]);
  k.user_id = store::TextOf(r[1]);
  k.name = store::TextOf(r[2]);
  k.scopes = SplitScopes(store::TextOf(r[3]));
  k.created_by = store::TextOf(r[4]);
  k.created_at = OptInt(r[5]).value_or(0);
  k.expires_at = OptInt(r[6]);
  k.last_used_at = OptInt(r[7]);
  k.revoked_at = OptInt(r[8]);
  return k;
}

constexpr const char* kClientColumns = "id, name, scopes, created_by, created_at, revoked_at, secret_hash";

Client RowToClient(const std::vector<Value>& r) {
  Client c;
  c.id = store::TextOf(r[0]);
  c.name = store::TextOf(r[1]);
  c.scopes = SplitScopes(store::TextOf(r[2]));
  c.created_by = store::TextOf(r[3]);
  c.created_at = OptInt(r[4]).value_or(0);
  c.revoked_at = OptInt(r[5]);
  return c;
}

Role RowToRole(const std::vector<Value>& r) {
  return Role{store::TextOf(r[0]), SplitScopes(store::TextOf(r[1])), OptInt(r[2]).value_or(0), OptInt(r[3]).value_or(0)};
}

// The body of Write: runs the statements in order, keeps the first one's result set.
store::Task<core::Result<void>> RunAll(store::Transaction& tx, std::shared_ptr<std::vector<Statement>> statements,
                                       std::shared_ptr<ResultSet> out) {
  for (std::size_t i = 0; i < statements->size(); ++i) {
    auto r = co_await tx.Execute((*statements)[i]);
    if (!r) co_return std::unexpected(std::move(r.error()));
    if (i == 0) *out = std::move(*r);
  }
  co_return core::Result<void>{};
}

// Statements in one transaction; returns the first one's result set.
store::Task<core::Result<ResultSet>> WriteAll(store::Database& db, unsigned shard,
                                              std::shared_ptr<std::vector<Statement>> statements) {
  auto out = std::make_shared<ResultSet>();
  // A named std::function, not a lambda temporary inside co_await: GCC 12 destroys such temporaries
  // twice (src/README.md).
  store::TransactionWork work = [statements, out](store::Transaction& tx) { return RunAll(tx, statements, out); };
  auto done = co_await db.Transact(shard, std::move(work));
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return std::move(*out);
}

// Plain functions (not coroutines) so that callers never build a temporary inside co_await.
store::Task<core::Result<ResultSet>> Write(store::Database& db, unsigned shard, Statement statement) {
  auto all = std::make_shared<std::vector<Statement>>();
  all->push_back(std::move(statement));
  return WriteAll(db, shard, std::move(all));
}
store::Task<core::Result<ResultSet>> WriteBoth(store::Database& db, unsigned shard, Statement first, Statement second) {
  auto all = std::make_shared<std::vector<Statement>>();
  all->push_back(std::move(first));
  all->push_back(std::move(second));
  return WriteAll(db, shard, std::move(all));
}

}  // namespace

std::vector<store::Migration> AccessMigrations() {
  return {
      {.version = 650,
       .name = "create_api_keys",
       .up = "CREATE TABLE basalt_api_keys (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, "
             "scopes TEXT NOT NULL, secret_hash TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, "
             "expires_at BIGINT, last_used_at BIGINT, revoked_at BIGINT);"
             "CREATE INDEX basalt_api_keys_user ON basalt_api_keys (user_id, created_at);",
       .down = "DROP TABLE basalt_api_keys;"},
      {.version = 651,
       .name = "create_oauth2_clients",
       .up = "CREATE TABLE basalt_oauth2_clients (id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, "
             "secret_hash TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT);",
       .down = "DROP TABLE basalt_oauth2_clients;"},
      {.version = 652,
       .name = "create_roles",
       .up = "CREATE TABLE basalt_roles (name TEXT PRIMARY KEY, permissions TEXT NOT NULL, "
             "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);",
       .down = "DROP TABLE basalt_roles;"},
      {.version = 653,
       .name = "create_revoked_tokens",
       .up = "CREATE TABLE basalt_revoked_tokens (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);"
             "CREATE INDEX basalt_revoked_tokens_expiry ON basalt_revoked_tokens (expires_at);",
       .down = "DROP TABLE basalt_revoked_tokens;"},
  };
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> ApiKeyIdOf(std::string_view token) {
  if (!token.starts_with("bsk_") || token.size() > 200) return std::nullopt;
  token.remove_prefix(4);
  const std::size_t sep = token.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 >= token.size() || sep > 64) return std::nullopt;
  const std::string_view id = token.substr(0, sep);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) return std::nullopt;
  }
  return std::string(id);
}

store::Task<core::Result<AccessStore::CreatedKey>> AccessStore::CreateApiKey(unsigned shard, ApiKey key) {
  key.id = core::FormatUuid(core::NewUuidV7());
  key.created_at = NowMs();
  const std::string token = "bsk_" + key.id + "_" + core::RandomToken();
  const auto& d = db_.dialect();
  Statement s{"INSERT INTO basalt_api_keys (id, user_id, name, scopes, secret_hash, created_by, created_at, expires_at) "
              "VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                  d.Placeholder(4) + ", " + d.Placeholder(5) + ", " + d.Placeholder(6) + ", " + d.Placeholder(7) +
                  ", " + d.Placeholder(8) + ")",
              {key.id, key.user_id, key.name, JoinScopes(key.scopes), core::Sha256Hex(token), key.created_by, key.created_at,
               OrNull(key.expires_at)}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return CreatedKey{std::move(key), token};
}

store::Task<core::Result<std::vector<ApiKey>>> AccessStore::ListApiKeys(unsigned shard,
                                                                          std::optional<std::string> user_id) {
  Statement s{std::string("SELECT ") + kKeyColumns + " FROM basalt_api_keys", {}};
  if (user_id) {
    s.sql += " WHERE user_id = " + db_.dialect().Placeholder(1);
    s.params.push_back(*user_id);
  }
  s.sql += " ORDER BY created_at DESC, id DESC LIMIT 1000";
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  std::vector<ApiKey> out;
  for (const auto& row : r->rows) out.push_back(RowToKey(row));
  co_return out;
}

store::Task<core::Result<std::optional<ApiKey>>> AccessStore::GetApiKey(unsigned shard, std::string id) {
  Statement s{std::string("SELECT ") + kKeyColumns + " FROM basalt_api_keys WHERE id = " + db_.dialect().Placeholder(1),
              {id}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->rows.empty()) co_return std::optional<ApiKey>{};
  co_return std::optional<ApiKey>{RowToKey(r->rows.front())};
}

store::Task<core::Result<bool>> AccessStore::RevokeApiKey(unsigned shard, std::string id) {
  const auto& d = db_.dialect();
  Statement s{"UPDATE basalt_api_keys SET revoked_at = " + d.Placeholder(1) + " WHERE id = " + d.Placeholder(2) +
                  " AND revoked_at IS NULL",
              {NowMs(), id}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return r->affected > 0;
}

store::Task<core::Result<std::optional<ApiKey>>> AccessStore::FindApiKey(unsigned shard, std::string token) {
  auto id = ApiKeyIdOf(token);
  if (!id) co_return std::optional<ApiKey>{};
  Statement s{std::string("SELECT ") + kKeyColumns + " FROM basalt_api_keys WHERE id = " + db_.dialect().Placeholder(1),
              {*id}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  // Hash the token even when the id is unknown, so both paths cost the same.
  const std::string hash = core::Sha256Hex(token);
  if (r->rows.empty()) co_return std::optional<ApiKey>{};
  if (!core::ConstantTimeEquals(hash, store::TextOf(r->rows.front()[9]))) co_return std::optional<ApiKey>{};
  co_return std::optional<ApiKey>{RowToKey(r->rows.front())};
}

store::Task<core::Result<void>> AccessStore::TouchApiKey(unsigned shard, std::string id, std::int64_t now) {
  const auto& d = db_.dialect();
  Statement s{"UPDATE basalt_api_keys SET last_used_at = " + d.Placeholder(1) + " WHERE id = " + d.Placeholder(2),
              {now, id}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<AccessStore::CreatedClient>> AccessStore::CreateClient(unsigned shard, Client client) {
  client.id = core::FormatUuid(core::NewUuidV7());
  client.created_at = NowMs();
  std::string secret = core::RandomToken();
  const auto& d = db_.dialect();
  Statement s{"INSERT INTO basalt_oauth2_clients (id, name, scopes, secret_hash, created_by, created_at) VALUES (" +
                  d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) +
                  ", " + d.Placeholder(5) + ", " + d.Placeholder(6) + ")",
              {client.id, client.name, JoinScopes(client.scopes), core::Sha256Hex(secret), client.created_by,
               client.created_at}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return CreatedClient{std::move(client), std::move(secret)};
}

store::Task<core::Result<std::vector<Client>>> AccessStore::ListClients(unsigned shard) {
  Statement s{std::string("SELECT ") + kClientColumns + " FROM basalt_oauth2_clients ORDER BY created_at DESC, id DESC LIMIT 1000",
              {}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  std::vector<Client> out;
  for (const auto& row : r->rows) out.push_back(RowToClient(row));
  co_return out;
}

store::Task<core::Result<std::optional<Client>>> AccessStore::GetClient(unsigned shard, std::string id) {
  Statement s{std::string("SELECT ") + kClientColumns + " FROM basalt_oauth2_clients WHERE id = " +
                  db_.dialect().Placeholder(1),
              {id}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->rows.empty()) co_return std::optional<Client>{};
  co_return std::optional<Client>{RowToClient(r->rows.front())};
}

store::Task<core::Result<bool>> AccessStore::RevokeClient(unsigned shard, std::string id) {
  const auto& d = db_.dialect();
  Statement s{"UPDATE basalt_oauth2_clients SET revoked_at = " + d.Placeholder(1) + " WHERE id = " + d.Placeholder(2) +
                  " AND revoked_at IS NULL",
              {NowMs(), id}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return r->affected > 0;
}

store::Task<core::Result<std::optional<Client>>> AccessStore::AuthenticateClient(unsigned shard, std::string id,
                                                                                 std::string secret) {
  const std::string hash = core::Sha256Hex(secret);
  if (id.empty() || id.size() > 64) co_return std::optional<Client>{};
  Statement s{std::string("SELECT ") + kClientColumns + " FROM basalt_oauth2_clients WHERE id = " +
                  db_.dialect().Placeholder(1),
              {id}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->rows.empty()) co_return std::optional<Client>{};
  const auto& row = r->rows.front();
  if (!core::ConstantTimeEquals(hash, store::TextOf(row[6]))) co_return std::optional<Client>{};
  Client c = RowToClient(row);
  if (c.revoked_at) co_return std::optional<Client>{};
  co_return std::optional<Client>{std::move(c)};
}

store::Task<core::Result<std::vector<Role>>> AccessStore::ListRoles(unsigned shard) {
  Statement s{"SELECT name, permissions, created_at, updated_at FROM basalt_roles ORDER BY name", {}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  std::vector<Role> out;
  for (const auto& row : r->rows) out.push_back(RowToRole(row));
  co_return out;
}

store::Task<core::Result<Role>> AccessStore::CreateRole(unsigned shard, Role role) {
  role.created_at = role.updated_at = NowMs();
  const auto& d = db_.dialect();
  Statement s{"INSERT INTO basalt_roles (name, permissions, created_at, updated_at) VALUES (" + d.Placeholder(1) + ", " +
                  d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) + ")",
              {role.name, JoinScopes(role.permissions), role.created_at, role.updated_at}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) {
    if (r.error().code == core::ErrorCode::kConflict) {
      co_return core::Fail(core::ErrorCode::kConflict, "A role with this name exists.");
    }
    co_return std::unexpected(std::move(r.error()));
  }
  co_return role;
}

store::Task<core::Result<bool>> AccessStore::UpdateRole(unsigned shard, Role role) {
  const auto& d = db_.dialect();
  Statement s{"UPDATE basalt_roles SET permissions = " + d.Placeholder(1) + ", updated_at = " + d.Placeholder(2) +
                  " WHERE name = " + d.Placeholder(3),
              {JoinScopes(role.permissions), NowMs(), role.name}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return r->affected > 0;
}

store::Task<core::Result<bool>> AccessStore::DeleteRole(unsigned shard, std::string name) {
  Statement del{"DELETE FROM basalt_roles WHERE name = " + db_.dialect().Placeholder(1), {name}};
  auto r = co_await Write(db_, shard, std::move(del));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->affected == 0) co_return false;
  // Then take it off every user holding it. A user it is not yet taken off holds a role that no
  // longer exists, which grants nothing (AccessCache ignores unknown custom roles).
  Statement holders{"SELECT user_id FROM basalt_auth_users WHERE roles LIKE " + db_.dialect().Placeholder(1),
                    {"%\"" + name + "\"%"}};
  auto rows = co_await db_.Query(shard, std::move(holders));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  for (const auto& row : rows->rows) {
    auto removed = co_await SetUserRole(shard, store::TextOf(row[0]), name, false);
    if (!removed) co_return std::unexpected(std::move(removed.error()));
  }
  co_return true;
}

store::Task<core::Result<std::optional<std::vector<std::string>>>> AccessStore::UserRoles(unsigned shard,
                                                                                         std::string user_id) {
  Statement s{"SELECT roles FROM basalt_auth_users WHERE user_id = " + db_.dialect().Placeholder(1), {user_id}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->rows.empty()) co_return std::optional<std::vector<std::string>>{};
  std::vector<std::string> roles = RolesFromJson(store::TextOf(r->rows[0][0]));
  std::sort(roles.begin(), roles.end());
  co_return std::optional<std::vector<std::string>>{std::move(roles)};
}

store::Task<core::Result<std::optional<bool>>> AccessStore::SetUserRole(unsigned shard, std::string user_id,
                                                                        std::string role, bool assigned) {
  const auto& d = db_.dialect();
  // Compare-and-set on the stored text, so two concurrent changes to one user cannot lose either.
  for (int attempt = 0; attempt < 8; ++attempt) {
    Statement read{"SELECT roles FROM basalt_auth_users WHERE user_id = " + d.Placeholder(1), {user_id}};
    auto current = co_await db_.Query(shard, std::move(read));
    if (!current) co_return std::unexpected(std::move(current.error()));
    if (current->rows.empty()) co_return std::optional<bool>{};
    const std::string before = store::TextOf(current->rows[0][0]);
    std::vector<std::string> roles = RolesFromJson(before);
    const bool held = std::find(roles.begin(), roles.end(), role) != roles.end();
    if (held == assigned) co_return std::optional<bool>{false};
    if (assigned) {
      roles.push_back(role);
    } else {
      std::erase(roles, role);
    }
    Statement update{"UPDATE basalt_auth_users SET roles = " + d.Placeholder(1) + ", updated_at = " + d.Placeholder(2) +
                         " WHERE user_id = " + d.Placeholder(3) + " AND roles = " + d.Placeholder(4),
                     {RolesToJson(roles), core::FormatRfc3339(std::chrono::system_clock::now()), user_id, before}};
    auto r = co_await Write(db_, shard, std::move(update));
    if (!r) co_return std::unexpected(std::move(r.error()));
    if (r->affected == 1) co_return std::optional<bool>{true};
  }
  co_return core::Fail(core::ErrorCode::kConflict, "The user's roles were changing concurrently; try again.");
}

store::Task<core::Result<void>> AccessStore::DenyTokenId(unsigned shard, std::string jti, std::int64_t expires_at) {
  const auto& d = db_.dialect();
  Statement s{"INSERT INTO basalt_revoked_tokens (jti, expires_at) VALUES (" + d.Placeholder(1) + ", " +
                  d.Placeholder(2) + ") ON CONFLICT (jti) DO NOTHING",
              {jti, expires_at}};
  auto r = co_await Write(db_, shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<std::vector<std::string>>> AccessStore::DeniedTokenIds(unsigned shard, std::int64_t now) {
  Statement s{"SELECT jti FROM basalt_revoked_tokens WHERE expires_at > " + db_.dialect().Placeholder(1), {now}};
  auto r = co_await db_.Query(shard, std::move(s));
  if (!r) co_return std::unexpected(std::move(r.error()));
  std::vector<std::string> out;
  for (const auto& row : r->rows) out.push_back(store::TextOf(row[0]));
  co_return out;
}

}  // namespace basalt::auth
