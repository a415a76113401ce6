#include "api/access_cache.hpp"

#include <algorithm>

#include "auth/scopes.hpp"
#include "core/crypto.hpp"

namespace basalt::api {
namespace {
constexpr std::int64_t kTouchEveryMs = 60'000;
constexpr std::size_t kMaxEntries = 10'000;  // a flood of distinct tokens must not grow memory forever
}  // namespace

AccessCache::AccessCache(auth::AccessStore& store, std::chrono::milliseconds ttl)
    : store_(store), ttl_ms_(ttl.count()) {}

http::Task<core::Result<std::optional<http::Principal>>> AccessCache::ApiKeyPrincipal(unsigned shard,
                                                                                      std::string token) {
  const std::int64_t now = auth::NowMs();
  const std::string hash = core::Sha256Hex(token);
  std::optional<KeyEntry> entry;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(hash);
    if (it != keys_.end() && now - it->second.fetched_at < ttl_ms_) entry = it->second;
  }
  if (!entry) {
    auto found = co_await store_.FindApiKey(shard, token);
    if (!found) co_return std::unexpected(std::move(found.error()));
    if (!*found) co_return std::optional<http::Principal>{};
    KeyEntry fresh{std::move(**found), {}, now};
    if (!fresh.key.user_id.empty()) {
      auto roles = co_await AssignedRoles(shard, fresh.key.user_id, now);
      if (!roles) co_return std::unexpected(std::move(roles.error()));
      fresh.owner_roles = std::move(*roles);
    }
    std::lock_guard lock(mu_);
    if (keys_.size() >= kMaxEntries) keys_.clear();
    keys_[hash] = fresh;
    entry = std::move(fresh);
  }
  if (!entry->key.Usable(now)) co_return std::optional<http::Principal>{};
  bool touch = false;
  {
    std::lock_guard lock(mu_);
    auto& last = touched_[entry->key.id];
    if (now - last >= kTouchEveryMs) {
      last = now;
      touch = true;
    }
    if (touched_.size() > kMaxEntries) touched_.clear();
  }
  if (touch) {
    // At most one write per key per minute (per instance), not one per request.
    auto touched = co_await store_.TouchApiKey(shard, entry->key.id, now);
    (void)touched;  // best effort: a failed bookkeeping write must not fail the request
  }
  http::Principal p;
  p.kind = http::Principal::Kind::kApiKey;
  p.id = entry->key.id;
  p.user_id = entry->key.user_id;
  p.roles = entry->owner_roles;
  p.scopes = entry->key.scopes;
  co_return std::optional<http::Principal>{std::move(p)};
}

http::Task<core::Result<std::vector<std::string>>> AccessCache::AssignedRoles(unsigned shard, std::string user_id,
                                                                                std::int64_t now) {
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user_id);
    if (it != users_.end() && now - it->second.fetched_at < ttl_ms_) co_return it->second.roles;
  }
  auto roles = co_await store_.UserRoles(shard, user_id);
  if (!roles) co_return std::unexpected(std::move(roles.error()));
  std::vector<std::string> held = std::move(*roles).value_or(std::vector<std::string>{});  // gone: none
  std::lock_guard lock(mu_);
  if (users_.size() >= kMaxEntries) users_.clear();
  users_[user_id] = UserEntry{held, now};
  co_return held;
}

http::Task<core::Result<void>> AccessCache::RefreshRoles(unsigned shard, std::int64_t now) {
  {
    std::lock_guard lock(mu_);
    if (roles_at_ >= 0 && now - roles_at_ < ttl_ms_) co_return core::Result<void>{};
  }
  auto roles = co_await store_.ListRoles(shard);
  if (!roles) co_return std::unexpected(std::move(roles.error()));
  std::unordered_map<std::string, std::vector<std::string>> fresh;
  for (auto& r : *roles) fresh[r.name] = std::move(r.permissions);
  std::lock_guard lock(mu_);
  roles_ = std::move(fresh);
  roles_at_ = now;
  co_return core::Result<void>{};
}

http::Task<core::Result<void>> AccessCache::Expand(unsigned shard, http::Principal& p) {
  using Kind = http::Principal::Kind;
  if (p.kind != Kind::kUser && p.kind != Kind::kApiKey) co_return core::Result<void>{};
  const std::int64_t now = auth::NowMs();
  if (p.kind == Kind::kUser && !p.user_id.empty()) {
    // The stored roles win over the token's: a role taken away stops working within the cache's
    // ttl, not when the token expires.
    auto assigned = co_await AssignedRoles(shard, p.user_id, now);
    if (!assigned) co_return std::unexpected(std::move(assigned.error()));
    p.roles = std::move(*assigned);
  }
  auto refreshed = co_await RefreshRoles(shard, now);
  if (!refreshed) co_return std::unexpected(std::move(refreshed.error()));
  std::vector<std::string> perms;
  auto add = [&perms](const std::vector<std::string>& more) {
    for (const auto& m : more) {
      if (std::find(perms.begin(), perms.end(), m) == perms.end()) perms.push_back(m);
    }
  };
  std::lock_guard lock(mu_);
  for (const auto& role : p.roles) {
    if (auth::IsBuiltinRole(role)) {
      add(auth::BuiltinRolePermissions(role));
    } else if (auto it = roles_.find(role); it != roles_.end()) {
      add(it->second);
    }
  }
  p.permissions = std::move(perms);
  co_return core::Result<void>{};
}

http::Task<core::Result<std::optional<std::vector<std::string>>>> AccessCache::RolePermissions(unsigned shard,
                                                                                                 std::string role) {
  if (auth::IsBuiltinRole(role)) co_return std::optional<std::vector<std::string>>{auth::BuiltinRolePermissions(role)};
  auto refreshed = co_await RefreshRoles(shard, auth::NowMs());
  if (!refreshed) co_return std::unexpected(std::move(refreshed.error()));
  std::lock_guard lock(mu_);
  auto it = roles_.find(role);
  if (it == roles_.end()) co_return std::optional<std::vector<std::string>>{};
  co_return std::optional<std::vector<std::string>>{it->second};
}

http::Task<core::Result<bool>> AccessCache::IsRevoked(unsigned shard, std::string jti) {
  const std::int64_t now = auth::NowMs();
  bool stale = false;
  {
    std::lock_guard lock(mu_);
    if (denied_.contains(jti)) co_return true;
    stale = denied_at_ < 0 || now - denied_at_ >= ttl_ms_;
  }
  if (!stale) co_return false;
  auto ids = co_await store_.DeniedTokenIds(shard, now);
  if (!ids) co_return std::unexpected(std::move(ids.error()));
  std::lock_guard lock(mu_);
  denied_.clear();
  for (auto& id : *ids) denied_.insert(std::move(id));
  denied_at_ = now;
  co_return denied_.contains(jti);
}

http::Task<core::Result<bool>> AccessCache::ServiceTokenActive(unsigned shard, std::string jti, std::string client_id) {
  auto revoked = co_await IsRevoked(shard, std::move(jti));
  if (!revoked) co_return std::unexpected(std::move(revoked.error()));
  if (*revoked) co_return false;
  const std::int64_t now = auth::NowMs();
  {
    std::lock_guard lock(mu_);
    auto it = clients_.find(client_id);
    if (it != clients_.end() && now - it->second.second < ttl_ms_) co_return it->second.first;
  }
  auto client = co_await store_.GetClient(shard, client_id);
  if (!client) co_return std::unexpected(std::move(client.error()));
  const bool active = *client && !(*client)->revoked_at;
  std::lock_guard lock(mu_);
  if (clients_.size() >= kMaxEntries) clients_.clear();
  clients_[client_id] = {active, now};
  co_return active;
}

void AccessCache::ForgetClient(const std::string& client_id) {
  std::lock_guard lock(mu_);
  clients_.erase(client_id);
}

void AccessCache::ForgetApiKey(const std::string& id) {
  std::lock_guard lock(mu_);
  std::erase_if(keys_, [&id](const auto& kv) { return kv.second.key.id == id; });
}

void AccessCache::ForgetRoles() {
  std::lock_guard lock(mu_);
  roles_at_ = -1;
}

void AccessCache::ForgetUser(const std::string& user_id) {
  std::lock_guard lock(mu_);
  users_.erase(user_id);
  std::erase_if(keys_, [&user_id](const auto& kv) { return kv.second.key.user_id == user_id; });
}

void AccessCache::DenyLocally(const std::string& jti) {
  std::lock_guard lock(mu_);
  denied_.insert(jti);
}

}  // namespace basalt::api
