#include "auth/users.hpp"

#include <chrono>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/time.hpp"
#include "store/values.hpp"

namespace basalt::auth {
namespace {

using core::ErrorCode;

core::Error BadEmail(std::string message) {
  core::Error e = core::Error::Make(ErrorCode::kValidation, "The email address is invalid.");
  e.fields.push_back({"email", "invalid", std::move(message)});
  return e;
}

}  // namespace

core::Result<std::string> NormalizeEmail(std::string_view email) {
  while (!email.empty() && (email.front() == ' ' || email.front() == '\t')) email.remove_prefix(1);
  while (!email.empty() && (email.back() == ' ' || email.back() == '\t')) email.remove_suffix(1);
  if (email.empty()) return std::unexpected(BadEmail("required"));
  if (email.size() > 254) return std::unexpected(BadEmail("at most 254 characters"));
  std::string out;
  out.reserve(email.size());
  for (char c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::unexpected(BadEmail("no spaces or control characters"));
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::size_t at = out.find('@');
  if (at == std::string::npos || at == 0 || out.find('@', at + 1) != std::string::npos)
    return std::unexpected(BadEmail("must look like name@example.com"));
  const std::string_view domain = std::string_view(out).substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.')
    return std::unexpected(BadEmail("must look like name@example.com"));
  return out;
}

std::string RolesToJson(const std::vector<std::string>& roles) {
  boost::json::array a;
  for (const auto& r : roles) a.emplace_back(r);
  return boost::json::serialize(a);
}

std::vector<std::string> RolesFromJson(std::string_view text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& r : v.as_array()) {
    if (r.is_string()) out.emplace_back(r.as_string());
  }
  return out;
}

Task<core::Result<std::optional<UserCredentials>>> UserStore::FindBy(unsigned shard, std::string column,
                                                                     std::string value) {
  store::Statement st{"SELECT user_id, email, password_hash, roles FROM basalt_auth_users WHERE " + column + " = " +
                          database_.dialect().Placeholder(1),
                      {std::move(value)}};
  auto rows = co_await database_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::optional<UserCredentials>();
  const auto& row = rows->rows[0];
  co_return UserCredentials{store::TextOf(row[0]), store::TextOf(row[1]), store::TextOf(row[2]), RolesFromJson(store::TextOf(row[3]))};
}

Task<core::Result<std::optional<UserCredentials>>> UserStore::FindByEmail(unsigned shard, std::string email) {
  return FindBy(shard, "email", std::move(email));
}

Task<core::Result<std::optional<UserCredentials>>> UserStore::FindById(unsigned shard, std::string id) {
  return FindBy(shard, "user_id", std::move(id));
}

Task<core::Result<std::int64_t>> UserStore::Count(unsigned shard) {
  store::Statement st{"SELECT COUNT(*) FROM basalt_auth_users", {}};
  auto rows = co_await database_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::int64_t{0};
  if (const auto* n = std::get_if<std::int64_t>(&rows->rows[0][0])) co_return *n;
  co_return std::int64_t{0};
}

store::Task<core::Result<std::int64_t>> UserStore::CountIn(store::Transaction& tx) {
  store::Statement st{"SELECT COUNT(*) FROM basalt_auth_users", {}};
  auto rows = co_await tx.Execute(std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (!rows->rows.empty()) {
    if (const auto* n = std::get_if<std::int64_t>(&rows->rows[0][0])) co_return *n;
  }
  co_return std::int64_t{0};
}

store::Task<core::Result<void>> UserStore::Insert(store::Transaction& tx, const store::Dialect& d,
                                                  const UserCredentials& user) {
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  store::Statement st{"INSERT INTO basalt_auth_users (user_id, email, password_hash, roles, created_at, updated_at) "
                      "VALUES (" + d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " +
                          d.Placeholder(4) + ", " + d.Placeholder(5) + ", " + d.Placeholder(6) + ")",
                      {user.id, user.email, user.password_hash, RolesToJson(user.roles), now, now}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) {
    if (r.error().code == ErrorCode::kConflict) {
      core::Error e = core::Error::Make(ErrorCode::kConflict, "This email address is already registered.");
      e.fields.push_back({"email", "taken", "already registered"});
      co_return std::unexpected(std::move(e));
    }
    co_return std::unexpected(std::move(r.error()));
  }
  co_return core::Result<void>{};
}

store::Task<core::Result<void>> UserStore::SetPasswordHash(store::Transaction& tx, const store::Dialect& d,
                                                           const std::string& id, const std::string& hash) {
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  store::Statement st{"UPDATE basalt_auth_users SET password_hash = " + d.Placeholder(1) + ", updated_at = " +
                          d.Placeholder(2) + " WHERE user_id = " + d.Placeholder(3),
                      {hash, now, id}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->affected == 0) co_return core::Fail(ErrorCode::kNotFound, "No such user.");
  co_return core::Result<void>{};
}

store::Task<core::Result<bool>> UserStore::ReplacePasswordHash(store::Transaction& tx, const store::Dialect& d,
                                                               const std::string& id, const std::string& old_hash,
                                                               const std::string& new_hash) {
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  store::Statement st{"UPDATE basalt_auth_users SET password_hash = " + d.Placeholder(1) + ", updated_at = " +
                          d.Placeholder(2) + " WHERE user_id = " + d.Placeholder(3) + " AND password_hash = " +
                          d.Placeholder(4),
                      {new_hash, now, id, old_hash}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return r->affected == 1;
}

store::Task<core::Result<void>> UserStore::DeleteOrphan(store::Transaction& tx, const store::Dialect& d,
                                                        const std::string& email, const std::string& users_table) {
  store::Statement st{"DELETE FROM basalt_auth_users WHERE email = " + d.Placeholder(1) + " AND NOT EXISTS (SELECT 1 FROM " +
                          users_table + " AS u WHERE u.\"id\" = basalt_auth_users.user_id)",
                      {email}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

}  // namespace basalt::auth
