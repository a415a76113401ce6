#include "auth/sessions.hpp"


#include <cctype>
#include <stdexcept>

#include "auth/jwt.hpp"
#include "auth/tokens.hpp"
#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "store/values.hpp"

namespace basalt::auth {
namespace {

using core::ErrorCode;


core::Error InvalidRefresh() {
  return core::Error::Make(ErrorCode::kUnauthorized, "The refresh token is not valid.");
}

/// Plausible shape of a token we issued: 43 base64url characters. Anything else is not looked up.
bool WellFormed(std::string_view token) {
  if (token.size() != 43) return false;
  for (char c : token) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

store::Task<core::Result<void>> InsertToken(store::Transaction& tx, const store::Dialect& d, const std::string& hash,
                                            const std::string& family, const std::string& user_id, std::int64_t now,
                                            std::int64_t expires) {
  store::Statement st{"INSERT INTO basalt_auth_refresh_tokens (token_hash, family_id, user_id, created_at, expires_at, "
                      "revoked) VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                          d.Placeholder(4) + ", " + d.Placeholder(5) + ", 0)",
                      {hash, family, user_id, now, expires}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<void>> RevokeFamily(store::Transaction& tx, const store::Dialect& d, const std::string& family) {
  store::Statement st{"UPDATE basalt_auth_refresh_tokens SET revoked = 1 WHERE family_id = " + d.Placeholder(1),
                      {family}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<void>> StartBody(store::Transaction& tx, const store::Dialect& d, const std::string& hash,
                                          const std::string& family, const std::string& user_id, std::int64_t now,
                                          std::int64_t expires) {
  co_return co_await InsertToken(tx, d, hash, family, user_id, now, expires);
}

store::Task<core::Result<void>> RotateBody(store::Transaction& tx, const store::Dialect& d, const std::string& hash,
                                           const std::string& next_hash, std::int64_t now, std::int64_t ttl,
                                           RefreshOutcome& out, bool& found) {
  store::Statement sel{"SELECT family_id, user_id, expires_at, used_at, revoked FROM basalt_auth_refresh_tokens "
                       "WHERE token_hash = " + d.Placeholder(1),
                       {hash}};
  auto rows = co_await tx.Execute(std::move(sel));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return core::Result<void>{};
  found = true;
  const auto& row = rows->rows[0];
  out.family_id = store::TextOf(row[0]);
  out.user_id = store::TextOf(row[1]);
  const bool spent = !std::holds_alternative<store::Null>(row[3]) || store::IntOf(row[4]) != 0;
  if (store::IntOf(row[2]) <= now && !spent) {
    found = false;  // expired: simply invalid
    co_return core::Result<void>{};
  }
  if (!spent) {
    // Spend it; a concurrent rotation of the same token loses here and counts as reuse.
    store::Statement use{"UPDATE basalt_auth_refresh_tokens SET used_at = " + d.Placeholder(1) +
                             " WHERE token_hash = " + d.Placeholder(2) + " AND used_at IS NULL AND revoked = 0",
                         {now, hash}};
    auto used = co_await tx.Execute(std::move(use));
    if (!used) co_return std::unexpected(std::move(used.error()));
    if (used->affected == 1) {
      co_return co_await InsertToken(tx, d, next_hash, out.family_id, out.user_id, now, now + ttl);
    }
  }
  out.reused = true;
  co_return co_await RevokeFamily(tx, d, out.family_id);
}

store::Task<core::Result<void>> RevokeOfBody(store::Transaction& tx, const store::Dialect& d, const std::string& hash,
                                             std::string& user_id) {
  store::Statement sel{"SELECT family_id, user_id FROM basalt_auth_refresh_tokens WHERE token_hash = " + d.Placeholder(1),
                       {hash}};
  auto rows = co_await tx.Execute(std::move(sel));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::unexpected(InvalidRefresh());
  user_id = store::TextOf(rows->rows[0][1]);
  co_return co_await RevokeFamily(tx, d, store::TextOf(rows->rows[0][0]));
}

}  // namespace

Task<core::Result<RefreshToken>> SessionStore::Start(unsigned shard, std::string user_id) {
  RefreshToken t{core::RandomToken(), core::FormatUuid(core::NewUuidV7())};
  const std::string hash = core::Sha256Hex(t.token);
  const std::int64_t now = UnixNow();
  const std::int64_t expires = now + ttl_s_;
  const store::Dialect& d = database_.dialect();
  auto done = co_await database_.Transact(
      shard, [&](store::Transaction& tx) { return StartBody(tx, d, hash, t.family_id, user_id, now, expires); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return t;
}

Task<core::Result<RefreshOutcome>> SessionStore::Rotate(unsigned shard, std::string token) {
  if (!WellFormed(token)) co_return std::unexpected(InvalidRefresh());
  const std::string hash = core::Sha256Hex(token);
  RefreshOutcome out;
  out.next.token = core::RandomToken();
  const std::string next_hash = core::Sha256Hex(out.next.token);
  const std::int64_t now = UnixNow();
  const std::int64_t ttl = ttl_s_;
  bool found = false;
  const store::Dialect& d = database_.dialect();
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) {
    return RotateBody(tx, d, hash, next_hash, now, ttl, out, found);
  });
  if (!done) co_return std::unexpected(std::move(done.error()));
  if (!found) co_return std::unexpected(InvalidRefresh());
  if (out.reused) out.next = {};
  else out.next.family_id = out.family_id;
  co_return out;
}

Task<core::Result<std::string>> SessionStore::RevokeFamilyOf(unsigned shard, std::string token) {
  if (!WellFormed(token)) co_return std::unexpected(InvalidRefresh());
  const std::string hash = core::Sha256Hex(token);
  std::string user_id;
  const store::Dialect& d = database_.dialect();
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return RevokeOfBody(tx, d, hash, user_id); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  co_return user_id;
}

Task<core::Result<std::string>> SessionStore::FamilyOf(unsigned shard, std::string token, std::string user_id) {
  if (!WellFormed(token)) co_return std::string();
  store::Statement st{"SELECT family_id FROM basalt_auth_refresh_tokens WHERE token_hash = " +
                          database_.dialect().Placeholder(1) + " AND user_id = " + database_.dialect().Placeholder(2) +
                          " AND revoked = 0",
                      {core::Sha256Hex(token), std::move(user_id)}};
  auto rows = co_await database_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::string();
  co_return store::TextOf(rows->rows[0][0]);
}

store::Task<core::Result<void>> SessionStore::RevokeUserIn(store::Transaction& tx, const store::Dialect& d,
                                                           const std::string& user_id, const std::string& keep_family) {
  store::Statement st{"UPDATE basalt_auth_refresh_tokens SET revoked = 1 WHERE user_id = " + d.Placeholder(1) +
                          " AND family_id <> " + d.Placeholder(2),
                      {user_id, keep_family}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

}  // namespace basalt::auth
