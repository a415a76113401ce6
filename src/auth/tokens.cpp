#include "auth/tokens.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <chrono>

#include <boost/json/serialize.hpp>

#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "store/values.hpp"

namespace basalt::auth {
namespace {

using core::ErrorCode;

std::int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

core::Error Invalid(std::string reason) {
  return core::Error::Make(ErrorCode::kUnauthorized, "The access token is not valid (" + reason + ").");
}

store::Task<core::Result<void>> InsertKey(store::Transaction& tx, const store::Dialect& d, SigningKey key) {
  store::Statement st{"INSERT INTO basalt_auth_keys (kid, private_key, public_key, created_at) VALUES (" +
                          d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) + ")",
                      {key.kid, core::Base64UrlEncode(key.private_key), core::Base64UrlEncode(key.public_key), key.created_at}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

/// Inserts a first key only when the table is still empty (inside the transaction).
store::Task<core::Result<void>> InsertFirstKey(store::Transaction& tx, const store::Dialect& d, SigningKey key) {
  store::Statement count{"SELECT COUNT(*) FROM basalt_auth_keys", {}};
  auto rows = co_await tx.Execute(std::move(count));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (!rows->rows.empty()) {
    if (const auto* n = std::get_if<std::int64_t>(&rows->rows[0][0]); n && *n > 0) co_return core::Result<void>{};
  }
  co_return co_await InsertKey(tx, d, std::move(key));
}

}  // namespace

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class TokenService::VerifiedCache {
 public:
  /// The claims of `token` if it verified before and has not expired at `now` (with `leeway`).
  std::optional<AccessClaims> Find(std::string_view token, std::int64_t now, std::int64_t leeway) {
    Shard& shard = ShardOf(token);
    std::lock_guard lock(shard.mutex);
    auto it = shard.claims.find(token);
    if (it == shard.claims.end()) return std::nullopt;
    if (it->second.expires_at + leeway <= now) {
      shard.claims.erase(it);
      return std::nullopt;
    }
    return it->second;
  }
  void Put(std::string_view token, const AccessClaims& claims) {
    Shard& shard = ShardOf(token);
    std::lock_guard lock(shard.mutex);
    // Bounded: a full shard starts over (the next request per token verifies once more).
    if (shard.claims.size() >= kPerShard) shard.claims.clear();
    shard.claims.emplace(std::string(token), claims);
  }

 private:
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kPerShard = 1024;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, AccessClaims, Hash, std::equal_to<>> claims;
  };
  Shard& ShardOf(std::string_view token) { return shards_[Hash{}(token) % kShards]; }
  std::array<Shard, kShards> shards_;
};

TokenService::TokenService(store::Database& database, TokenOptions options)
    : database_(database),
      options_(std::move(options)),
      keys_(std::make_shared<const KeySet>()),
      verified_(std::make_unique<VerifiedCache>()) {}

TokenService::~TokenService() = default;

Task<core::Result<void>> TokenService::Reload(unsigned shard) {
  store::Statement st{"SELECT kid, private_key, public_key, created_at FROM basalt_auth_keys", {}};
  auto rows = co_await database_.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  auto set = std::make_shared<KeySet>();
  for (const auto& row : rows->rows) {
    SigningKey key;
    key.kid = store::TextOf(row[0]);
    auto priv = core::Base64UrlDecode(store::TextOf(row[1]));
    auto pub = core::Base64UrlDecode(store::TextOf(row[2]));
    if (!priv || !pub || pub->size() != 32) {
      co_return core::Fail(ErrorCode::kInternal, "A signing key is corrupt.", "basalt_auth_keys kid " + key.kid);
    }
    key.private_key = std::move(*priv);
    key.public_key = std::move(*pub);
    if (const auto* t = std::get_if<std::int64_t>(&row[3])) key.created_at = *t;
    set->keys.push_back(std::move(key));
  }
  std::sort(set->keys.begin(), set->keys.end(), [](const SigningKey& a, const SigningKey& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.kid > b.kid;
  });
  keys_.store(std::move(set), std::memory_order_release);
  last_reload_ms_.store(SteadyMs(), std::memory_order_relaxed);
  co_return core::Result<void>{};
}

Task<core::Result<void>> TokenService::Load(unsigned shard) {
  auto key = GenerateSigningKey(core::FormatUuid(core::NewUuidV7()), UnixNow());
  if (!key) co_return std::unexpected(std::move(key.error()));
  const store::Dialect& d = database_.dialect();
  SigningKey first = std::move(*key);
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return InsertFirstKey(tx, d, first); });
  if (!done) co_return done;
  co_return co_await Reload(shard);
}

Task<core::Result<std::string>> TokenService::Rotate(unsigned shard) {
  // created_at strictly after the current key's, so "newest" is unambiguous even within a second.
  std::int64_t created = UnixNow();
  if (auto set = keys_.load(std::memory_order_acquire); !set->keys.empty())
    created = std::max(created, set->keys.front().created_at + 1);
  auto key = GenerateSigningKey(core::FormatUuid(core::NewUuidV7()), created);
  if (!key) co_return std::unexpected(std::move(key.error()));
  const std::string kid = key->kid;
  const store::Dialect& d = database_.dialect();
  SigningKey next = std::move(*key);
  auto done = co_await database_.Transact(shard, [&](store::Transaction& tx) { return InsertKey(tx, d, next); });
  if (!done) co_return std::unexpected(std::move(done.error()));
  auto reloaded = co_await Reload(shard);
  if (!reloaded) co_return std::unexpected(std::move(reloaded.error()));
  co_return kid;
}

Task<core::Result<void>> TokenService::Maintain(unsigned shard) {
  if (SteadyMs() - last_reload_ms_.load(std::memory_order_relaxed) > 60'000) {
    if (auto r = co_await Reload(shard); !r) co_return r;
  }
  if (options_.key_max_age_s <= 0) co_return core::Result<void>{};
  auto set = keys_.load(std::memory_order_acquire);
  if (!set->keys.empty() && UnixNow() - set->keys.front().created_at < options_.key_max_age_s)
    co_return core::Result<void>{};
  // Another instance may have rotated already: look before adding a key.
  if (auto r = co_await Reload(shard); !r) co_return r;
  set = keys_.load(std::memory_order_acquire);
  if (!set->keys.empty() && UnixNow() - set->keys.front().created_at < options_.key_max_age_s)
    co_return core::Result<void>{};
  auto rotated = co_await Rotate(shard);
  if (!rotated) co_return std::unexpected(std::move(rotated.error()));
  co_return core::Result<void>{};
}

core::Result<IssuedToken> TokenService::Issue(std::string_view user_id, const std::vector<std::string>& roles,
                                              std::string_view session_id) const {
  auto set = keys_.load(std::memory_order_acquire);
  if (set->keys.empty()) return core::Fail(ErrorCode::kInternal, "Cannot issue a token.", "no signing key loaded");
  const std::int64_t now = UnixNow();
  boost::json::array role_list;
  for (const auto& r : roles) role_list.emplace_back(r);
  boost::json::object claims{{"iss", options_.issuer},
                             {"aud", options_.audience},
                             {"sub", user_id},
                             {"iat", now},
                             {"exp", now + options_.ttl_s},
                             {"jti", core::FormatUuid(core::NewUuidV7())},
                             {"roles", std::move(role_list)}};
  if (!session_id.empty()) claims["sid"] = session_id;
  auto token = SignJwt(set->keys.front(), claims);
  if (!token) return std::unexpected(std::move(token.error()));
  return IssuedToken{std::move(*token), options_.ttl_s};
}

core::Result<IssuedToken> TokenService::IssueService(std::string_view client_id,
                                                     const std::vector<std::string>& scopes) const {
  auto set = keys_.load(std::memory_order_acquire);
  if (set->keys.empty()) return core::Fail(ErrorCode::kInternal, "Cannot issue a token.", "no signing key loaded");
  const std::int64_t now = UnixNow();
  std::string scope;
  for (const auto& s : scopes) {
    if (!scope.empty()) scope += ' ';
    scope += s;
  }
  boost::json::object claims{{"iss", options_.issuer},
                             {"aud", options_.audience},
                             {"sub", client_id},
                             {"client_id", client_id},
                             {"scope", std::move(scope)},
                             {"iat", now},
                             {"exp", now + options_.service_ttl_s},
                             {"jti", core::FormatUuid(core::NewUuidV7())}};
  auto token = SignJwt(set->keys.front(), claims);
  if (!token) return std::unexpected(std::move(token.error()));
  return IssuedToken{std::move(*token), options_.service_ttl_s};
}

std::vector<const SigningKey*> TokenService::Accepted(const KeySet& set, const TokenOptions& o, std::int64_t now) {
  std::vector<const SigningKey*> out;
  for (std::size_t i = 0; i < set.keys.size(); ++i) {
    // keys[i] was superseded when keys[i-1] was created; its last token expires ttl later.
    const std::int64_t ttl = std::max(o.ttl_s, o.service_ttl_s);
    if (i == 0 || now < set.keys[i - 1].created_at + ttl + o.leeway_s) out.push_back(&set.keys[i]);
  }
  return out;
}

core::Result<AccessClaims> TokenService::VerifyAt(std::string_view token, std::int64_t now) const {
  auto decoded = DecodeJwt(token);
  if (!decoded) return std::unexpected(std::move(decoded.error()));
  const auto& h = decoded->header;
  // Exactly EdDSA: rejects "none", every HMAC ("HS256" keyed with our public key) and RSA/EC.
  const auto* alg = h.if_contains("alg");
  if (!alg || !alg->is_string() || alg->as_string() != "EdDSA") return std::unexpected(Invalid("algorithm"));
  if (h.contains("crit") || h.contains("jku") || h.contains("jwk") || h.contains("x5u") || h.contains("x5c"))
    return std::unexpected(Invalid("header"));
  const auto* kid = h.if_contains("kid");
  if (!kid || !kid->is_string()) return std::unexpected(Invalid("unknown key"));
  auto set = keys_.load(std::memory_order_acquire);
  const SigningKey* key = nullptr;
  for (const SigningKey* k : Accepted(*set, options_, now)) {
    if (k->kid == kid->as_string()) key = k;
  }
  if (!key) return std::unexpected(Invalid("unknown key"));
  if (!VerifyEd25519(key->public_key, decoded->signing_input, decoded->signature))
    return std::unexpected(Invalid("signature"));
  const auto& p = decoded->payload;
  const auto* iss = p.if_contains("iss");
  if (!iss || !iss->is_string() || iss->as_string() != options_.issuer) return std::unexpected(Invalid("issuer"));
  const auto* aud = p.if_contains("aud");
  bool aud_ok = false;
  if (aud && aud->is_string()) aud_ok = aud->as_string() == options_.audience;
  if (aud && aud->is_array()) {
    for (const auto& a : aud->as_array()) aud_ok = aud_ok || (a.is_string() && a.as_string() == options_.audience);
  }
  if (!aud_ok) return std::unexpected(Invalid("audience"));
  const auto* exp = p.if_contains("exp");
  const auto* iat = p.if_contains("iat");
  if (!exp || !exp->is_int64() || !iat || !iat->is_int64()) return std::unexpected(Invalid("claims"));
  if (exp->as_int64() + options_.leeway_s <= now) return std::unexpected(Invalid("expired"));
  if (iat->as_int64() - options_.leeway_s > now) return std::unexpected(Invalid("issued in the future"));
  if (const auto* nbf = p.if_contains("nbf")) {
    if (!nbf->is_int64() || nbf->as_int64() - options_.leeway_s > now) return std::unexpected(Invalid("not yet valid"));
  }
  const auto* sub = p.if_contains("sub");
  const auto* jti = p.if_contains("jti");
  if (!sub || !sub->is_string() || sub->as_string().empty() || !jti || !jti->is_string())
    return std::unexpected(Invalid("claims"));
  AccessClaims claims;
  claims.subject = std::string(sub->as_string());
  claims.jti = std::string(jti->as_string());
  claims.issued_at = iat->as_int64();
  claims.expires_at = exp->as_int64();
  if (const auto* sid = p.if_contains("sid")) {
    if (!sid->is_string()) return std::unexpected(Invalid("claims"));
    claims.session_id = std::string(sid->as_string());
  }
  if (const auto* roles = p.if_contains("roles")) {
    if (!roles->is_array()) return std::unexpected(Invalid("claims"));
    for (const auto& r : roles->as_array()) {
      if (!r.is_string()) return std::unexpected(Invalid("claims"));
      claims.roles.emplace_back(r.as_string());
    }
  }
  if (const auto* client = p.if_contains("client_id")) {
    // A service token: a client, its scopes, and never roles (no user behind it).
    if (!client->is_string() || client->as_string().empty() || p.contains("roles") || p.contains("sid"))
      return std::unexpected(Invalid("claims"));
    claims.client_id = std::string(client->as_string());
    if (const auto* scope = p.if_contains("scope")) {
      if (!scope->is_string()) return std::unexpected(Invalid("claims"));
      std::string_view rest = scope->as_string();
      while (!rest.empty()) {
        const auto space = rest.find(' ');
        if (space != 0) claims.scopes.emplace_back(rest.substr(0, space));
        if (space == std::string_view::npos) break;
        rest.remove_prefix(space + 1);
      }
    }
  }
  return claims;
}

Task<core::Result<AccessClaims>> TokenService::Verify(unsigned shard, std::string token) {
  const std::int64_t now = UnixNow();
  if (auto known = verified_->Find(token, now, options_.leeway_s)) co_return std::move(*known);
  auto claims = VerifyAt(token, now);
  if (claims) verified_->Put(token, *claims);
  if (claims || claims.error().message.find("unknown key") == std::string::npos) co_return claims;
  // Another instance may have rotated: reload at most once a second, then try again.
  if (SteadyMs() - last_reload_ms_.load(std::memory_order_relaxed) < 1000) co_return claims;
  if (auto r = co_await Reload(shard); !r) co_return claims;
  auto again = VerifyAt(token, UnixNow());
  if (again) verified_->Put(token, *again);
  co_return again;
}

std::string TokenService::Jwks() const {
  auto set = keys_.load(std::memory_order_acquire);
  boost::json::array keys;
  for (const SigningKey* k : Accepted(*set, options_, UnixNow())) {
    keys.push_back(boost::json::object{{"kty", "OKP"},
                                       {"crv", "Ed25519"},
                                       {"x", core::Base64UrlEncode(k->public_key)},
                                       {"kid", k->kid},
                                       {"use", "sig"},
                                       {"alg", "EdDSA"}});
  }
  return boost::json::serialize(boost::json::object{{"keys", std::move(keys)}});
}

}  // namespace basalt::auth
