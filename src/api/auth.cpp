// /api/v1/auth/*: users and sessions. Passwords are hashed on auth::PasswordHasher's pool (never
// on an I/O thread); a login for an unknown email verifies against a dummy hash and answers the
// same message as a wrong password; failures feed the per-account and per-IP throttle (429 with
// Retry-After). Tokens: auth::TokenService (JWT access tokens), auth::SessionStore (refresh tokens).
// Identity events go to the audit log (docs/audit-log.md lists them): after the action, in their
// own transaction; a failed append is logged and does not change the answer.

#include "api/auth.hpp"


#include <chrono>

#include <boost/json.hpp>

#include "api/audit_log.hpp"
#include "api/authorize.hpp"
#include "api/data_support.hpp"
#include "auth/scopes.hpp"
#include "audit/audit.hpp"
#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "obs/log.hpp"
#include "schema/record.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;
using core::ErrorCode;
using schema::Quote;

constexpr std::string_view kInvalidLogin = "Invalid email or password.";

core::Error Err(ErrorCode code, std::string message) { return core::Error::Make(code, std::move(message)); }

core::Error FieldError(ErrorCode code, std::string message, std::string field, std::string field_code,
                       std::string field_message) {
  core::Error e = Err(code, std::move(message));
  e.fields.push_back({std::move(field), std::move(field_code), std::move(field_message)});
  return e;
}

http::Response JsonResponse(int status, const json::object& body) {
  http::Response res = http::Response::Json(status, json::serialize(body));
  res.Set("Cache-Control", "no-store");
  return res;
}

/// The body as a JSON object (415 / 400 otherwise).
core::Result<json::object> ObjectBody(const http::Request& req) {
  auto body = detail::ParseBody(req);
  if (!body) return std::unexpected(std::move(body.error()));
  if (!body->is_object()) return std::unexpected(Err(ErrorCode::kBadRequest, "The body must be a JSON object."));
  return std::move(body->as_object());
}

/// A required string member; 422 naming it otherwise.
core::Result<std::string> RequiredString(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::unexpected(FieldError(ErrorCode::kValidation, "The request is invalid.",
                                                            std::string(name), "required", "required"));
  if (!v->is_string()) return std::unexpected(FieldError(ErrorCode::kValidation, "The request is invalid.",
                                                         std::string(name), "type", "must be a string"));
  return std::string(v->as_string());
}

/// Refuses members outside `allowed` (400 naming the first).
core::Result<void> OnlyMembers(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, _] : o) {
    bool ok = false;
    for (auto a : allowed) ok = ok || key == a;
    if (!ok) return std::unexpected(FieldError(ErrorCode::kValidation, "The request is invalid.", std::string(key),
                                               "unknown", "unknown member"));
  }
  return {};
}

std::int64_t NowS() { return auth::UnixNow(); }

// ---- audit -------------------------------------------------------------------------------------

/// Appends an identity event. The actor is the request's principal, or the user `actor_user` when
/// not empty (a login, a registration: the caller proved to be that user). `change`: one field
/// name or "". All views must outlive the call (named locals; see src/README on GCC 12).
http::Task<void> Audit(const AuthServices& s, const http::Request& req, std::string_view action,
                       const std::string& target, audit::Outcome outcome, std::string_view actor_user = {},
                       std::string_view change = {}) {
  if (s.audit == nullptr) co_return;
  audit::Entry entry = AuditEntry(req, std::string(action), target, outcome);
  if (!actor_user.empty()) {
    entry.actor_kind = audit::ActorKind::kUser;
    entry.actor_id = std::string(actor_user);
  }
  if (!change.empty()) entry.changes.emplace_back(change);
  auto appended = co_await s.audit->Append(req.shard(), std::move(entry));
  if (!appended) {
    obs::Log(obs::LogLevel::kError, "audit log: cannot record an identity event",
             {{"request_id", req.request_id()}, {"action", std::string(action)}, {"cause", appended.error().cause}});
  }
}

std::string UserTarget(std::string_view id) { return "user:" + std::string(id); }

/// The audit target of a login attempt: `user:<id>` for an existing account; for an address
/// nobody has, `email_sha256:<hex>` (the SHA-256 of the normalised address, so an admin can ask
/// "were there attempts for x?" without the log holding addresses people mistyped); for input
/// that is not an email address at all (often a password typed in the wrong box) nothing derived
/// from it: `email:invalid`.
std::string LoginTarget(const std::optional<auth::UserCredentials>& creds, const core::Result<std::string>& normalized) {
  if (creds) return UserTarget(creds->id);
  if (normalized) return "email_sha256:" + core::Sha256Hex(*normalized);
  return "email:invalid";
}

/// Counts a failed password check against `account` and `ip`, and records `auth.lockout` for each
/// key this failure locked (target `account_target` for the account, `ip:<address>` for the IP).
http::Task<void> CountFailure(const AuthServices& s, const http::Request& req, const std::string& account,
                              const std::string& ip, const std::string& account_target) {
  auth::LockedKeys which;
  auto locked = s.throttle.Failure(account, ip, &which);
  if (!locked) co_return;
  obs::Log(obs::LogLevel::kWarn, "login lockout",
           {{"request_id", req.request_id()}, {"ip", ip}, {"lock_s", *locked}});
  if (which.account) co_await Audit(s, req, "auth.lockout", account_target, audit::Outcome::kDenied);
  if (which.ip) {
    const std::string ip_target = "ip:" + ip;
    co_await Audit(s, req, "auth.lockout", ip_target, audit::Outcome::kDenied);
  }
}

http::Response TooManyAttempts(const http::Request& req, std::int64_t retry_after) {
  http::Response res =
      http::Problem(Err(ErrorCode::kRateLimited, "Too many failed logins; try again later."), req.request_id());
  res.Set("Retry-After", std::to_string(retry_after));
  return res;
}

/// The user's JSON (the `users` record plus email and roles), or nullopt when the record or the
/// credentials are gone.
http::Task<core::Result<std::optional<json::object>>> LoadUser(const AuthServices& s, unsigned shard, std::string id) {
  auto snap = s.catalog.snapshot();
  const schema::Collection* users = snap->Find("users");
  if (!users) co_return core::Fail(ErrorCode::kInternal, "The users collection is missing.");
  std::string lookup = id;
  auto creds = co_await s.users.FindById(shard, std::move(lookup));
  if (!creds) co_return std::unexpected(std::move(creds.error()));
  if (!*creds) co_return std::optional<json::object>();
  const store::Dialect& d = s.database.dialect();
  store::Statement st{"SELECT " + schema::SelectList(users->spec, "t") + " FROM " +
                          Quote(schema::TableName("users")) + " AS \"t\" WHERE \"t\".\"id\" = " + d.Placeholder(1),
                      {id}};
  auto rows = co_await s.database.Query(shard, std::move(st));
  if (!rows) co_return std::unexpected(std::move(rows.error()));
  if (rows->rows.empty()) co_return std::optional<json::object>();
  json::object user = schema::RowToJson(users->spec, rows->rows[0]);
  user["email"] = (*creds)->email;
  json::array roles;
  for (const auto& r : (*creds)->roles) roles.emplace_back(r);
  user["roles"] = std::move(roles);
  co_return std::optional<json::object>(std::move(user));
}

/// {access_token, refresh_token, token_type, expires_in} for a user and a session.
core::Result<json::object> TokenPair(const AuthServices& s, const std::string& user_id,
                                     const std::vector<std::string>& roles, const auth::RefreshToken& refresh) {
  auto access = s.tokens.Issue(user_id, roles, refresh.family_id);
  if (!access) return std::unexpected(std::move(access.error()));
  return json::object{{"access_token", access->token},
                      {"refresh_token", refresh.token},
                      {"token_type", "Bearer"},
                      {"expires_in", access->expires_in}};
}

// ---- register / setup --------------------------------------------------------------------------

/// Shared by register and setup: checks the body, hashes the password, creates the user.
/// `created_id` receives the new user's id on success.
http::Task<http::Response> CreateFromBody(const AuthServices& s, http::Request& req, json::object body,
                                          std::vector<std::string> roles, std::string invite_hash,
                                          bool first_user_only, std::string& created_id) {
  auto email_text = RequiredString(body, "email");
  if (!email_text) co_return detail::Fail(req, email_text.error());
  auto password = RequiredString(body, "password");
  if (!password) co_return detail::Fail(req, password.error());
  auto email = auth::NormalizeEmail(*email_text);
  if (!email) co_return detail::Fail(req, email.error());
  if (auto ok = CheckPasswordPolicy(*password, s.options.password_min_length); !ok)
    co_return detail::Fail(req, ok.error());
  body.erase("email");
  body.erase("password");
  // Mass assignment: credentials, roles and system fields are never taken from the body.
  for (std::string_view forbidden : {"roles", "role", "password_hash", "id", "created_at", "updated_at", "version"}) {
    if (body.contains(forbidden))
      co_return detail::Fail(req, FieldError(ErrorCode::kValidation, "The user is invalid.", std::string(forbidden),
                                             "read_only", "cannot be set"));
  }
  auto snap = s.catalog.snapshot();
  const schema::Collection* users = snap->Find("users");
  if (!users) co_return detail::Fail(req, Err(ErrorCode::kInternal, "The users collection is missing."));
  // Validate the record before paying for a hash.
  if (auto v = schema::ValidateRecord(users->spec, json::value(body), schema::WriteMode::kCreate); !v)
    co_return detail::Fail(req, v.error());
  std::string plain = std::move(*password);
  auto hash = co_await s.passwords.Hash(std::move(plain));
  if (!hash) co_return detail::Fail(req, hash.error());
  NewUser user{std::move(*email), std::move(*hash), std::move(roles), std::move(body), std::move(invite_hash),
               first_user_only};
  json::object created;
  auto done = co_await CreateUser(s.database, req.shard(), *users, std::move(user), created);
  if (!done) co_return detail::Fail(req, done.error());
  created_id = std::string(created.at("id").as_string());
  http::Response res = JsonResponse(201, created);
  res.Set("Location", "/api/v1/collections/users/records/" + created_id);
  co_return res;
}

http::Task<http::Response> Register(const AuthServices& s, http::Request& req) {
  if (s.options.registration == Registration::kClosed)
    co_return detail::Fail(req, Err(ErrorCode::kForbidden, "Registration is closed."));
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  std::string invite_hash;
  if (s.options.registration == Registration::kInvite) {
    auto invite = RequiredString(*body, "invite");
    if (!invite) co_return detail::Fail(req, invite.error());
    invite_hash = core::Sha256Hex(*invite);
  }
  body->erase("invite");
  std::vector<std::string> roles;
  roles.emplace_back("user");
  std::string id;
  http::Response res =
      co_await CreateFromBody(s, req, std::move(*body), std::move(roles), std::move(invite_hash), false, id);
  if (res.status == 201) {
    const std::string target = UserTarget(id);
    co_await Audit(s, req, "auth.registered", target, audit::Outcome::kSuccess, id);
  }
  co_return res;
}

http::Task<http::Response> Setup(const AuthServices& s, http::Request& req) {
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (auto ok = OnlyMembers(*body, {"token", "email", "password"}); !ok) co_return detail::Fail(req, ok.error());
  auto token = RequiredString(*body, "token");
  if (!token) co_return detail::Fail(req, token.error());
  body->erase("token");
  const std::string setup_target = "setup";
  if (!s.setup.Consume(*token)) {
    co_await Audit(s, req, "auth.setup", setup_target, audit::Outcome::kDenied);
    co_return detail::Fail(req, Err(ErrorCode::kForbidden, "The setup token is not valid (or was used already)."));
  }
  std::vector<std::string> roles;
  roles.emplace_back("admin");
  std::string no_invite;
  std::string id;
  http::Response res =
      co_await CreateFromBody(s, req, std::move(*body), std::move(roles), std::move(no_invite), true, id);
  if (res.status == 201) {
    obs::Log(obs::LogLevel::kInfo, "first admin created with the setup token", {{"request_id", req.request_id()}});
    const std::string target = UserTarget(id);
    co_await Audit(s, req, "auth.setup", target, audit::Outcome::kSuccess, id, "roles");
  } else {
    if (res.status != 409) s.setup.Restore(std::move(*token));  // a typo in the password should not burn the token
    co_await Audit(s, req, "auth.setup", setup_target, audit::Outcome::kFailure);
  }
  co_return res;
}

// ---- login / refresh / logout ------------------------------------------------------------------

/// The transaction of a rehash: `stored` says whether the old hash was still there.
store::Task<core::Result<void>> RehashBody(store::Transaction& tx, const store::Dialect& d,
                                           const auth::UserCredentials& creds, const std::string& new_hash,
                                           bool& stored) {
  auto replaced = co_await auth::UserStore::ReplacePasswordHash(tx, d, creds.id, creds.password_hash, new_hash);
  if (!replaced) co_return std::unexpected(std::move(replaced.error()));
  stored = *replaced;
  co_return core::Result<void>{};
}

/// After a successful login with a hash made under weaker argon2 parameters than the current ones:
/// hashes the password again and stores it, unless the hash changed meanwhile. Failures are
/// logged; the login succeeds anyway.
http::Task<void> Rehash(const AuthServices& s, const http::Request& req, const auth::UserCredentials& creds,
                        std::string password) {
  auto fresh = co_await s.passwords.Hash(std::move(password));
  if (!fresh) {
    obs::Log(obs::LogLevel::kWarn, "password rehash failed",
             {{"request_id", req.request_id()}, {"error", fresh.error().message}});
    co_return;
  }
  const store::Dialect& d = s.database.dialect();
  const std::string& new_hash = *fresh;
  bool stored = false;
  auto done = co_await s.database.Transact(
      req.shard(), [&](store::Transaction& tx) { return RehashBody(tx, d, creds, new_hash, stored); });
  if (!done) {
    obs::Log(obs::LogLevel::kWarn, "password rehash failed",
             {{"request_id", req.request_id()}, {"error", done.error().message}, {"cause", done.error().cause}});
    co_return;
  }
  if (!stored) co_return;  // changed meanwhile: the newer hash stays
  obs::Log(obs::LogLevel::kInfo, "password rehashed with the current argon2 parameters",
           {{"request_id", req.request_id()}, {"user_id", creds.id}});
  const std::string target = UserTarget(creds.id);
  co_await Audit(s, req, "auth.password_rehashed", target, audit::Outcome::kSuccess, creds.id, "password_hash");
}

http::Task<http::Response> Login(const AuthServices& s, http::Request& req) {
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (auto ok = OnlyMembers(*body, {"email", "password"}); !ok) co_return detail::Fail(req, ok.error());
  auto email_text = RequiredString(*body, "email");
  if (!email_text) co_return detail::Fail(req, email_text.error());
  auto password = RequiredString(*body, "password");
  if (!password) co_return detail::Fail(req, password.error());
  if (password->size() > auth::kMaxPasswordBytes)
    co_return detail::Fail(req, FieldError(ErrorCode::kValidation, "The request is invalid.", "password", "too_long",
                                           "at most 1024 bytes"));
  // An address that cannot be valid still costs a hash below and answers the same message.
  auto normalized = auth::NormalizeEmail(*email_text);
  const std::string account = normalized ? *normalized : std::string(email_text->substr(0, 254));
  const std::string ip(req.remote_address());

  // Looked up before the throttle so that a refused attempt is recorded against the account.
  std::optional<auth::UserCredentials> creds;
  if (normalized) {
    std::string lookup = *normalized;
    auto found = co_await s.users.FindByEmail(req.shard(), std::move(lookup));
    if (!found) co_return detail::Fail(req, found.error());
    creds = std::move(*found);
  }
  const std::string target = LoginTarget(creds, normalized);
  // A hash made with weaker parameters is replaced after a successful login (the only moment the
  // password is known): keep a copy for it.
  std::string rehash_with;
  const bool rehash = creds && s.passwords.NeedsRehash(creds->password_hash);
  if (rehash) rehash_with = *password;
  if (auto wait = s.throttle.RetryAfter(account, ip)) {
    co_await Audit(s, req, "auth.login", target, audit::Outcome::kDenied);
    co_return TooManyAttempts(req, *wait);
  }
  std::string hash = creds ? creds->password_hash : std::string();  // "": the dummy hash
  std::string plain = std::move(*password);
  auto verified = co_await s.passwords.Verify(std::move(hash), std::move(plain));
  if (!verified) co_return detail::Fail(req, verified.error());
  std::optional<json::object> user;
  if (*verified) {
    std::string uid = creds->id;
    auto loaded = co_await LoadUser(s, req.shard(), std::move(uid));
    if (!loaded) co_return detail::Fail(req, loaded.error());
    user = std::move(*loaded);  // nullopt: the record was deleted; the login fails like any other
  }
  if (!user) {
    obs::Log(obs::LogLevel::kInfo, "login failed", {{"request_id", req.request_id()}, {"ip", ip}});
    // The caller proved nothing: the actor stays anonymous; the target names the account.
    co_await Audit(s, req, "auth.login", target, audit::Outcome::kFailure);
    co_await CountFailure(s, req, account, ip, target);
    co_return detail::Unauthorized(req, std::string(kInvalidLogin));
  }
  s.throttle.Success(account);
  if (auto kept = co_await s.tokens.Maintain(req.shard()); !kept) {
    obs::Log(obs::LogLevel::kWarn, "signing key maintenance failed", {{"error", kept.error().message}, {"cause", kept.error().cause}});
  }
  std::string user_id = creds->id;
  auto session = co_await s.sessions.Start(req.shard(), std::move(user_id));
  if (!session) co_return detail::Fail(req, session.error());
  auto pair = TokenPair(s, creds->id, creds->roles, *session);
  if (!pair) co_return detail::Fail(req, pair.error());
  obs::Log(obs::LogLevel::kInfo, "login", {{"request_id", req.request_id()}, {"user_id", creds->id}, {"ip", ip}});
  co_await Audit(s, req, "auth.login", target, audit::Outcome::kSuccess, creds->id);
  if (rehash) co_await Rehash(s, req, *creds, std::move(rehash_with));
  co_return JsonResponse(200, *pair);
}

http::Task<http::Response> Refresh(const AuthServices& s, http::Request& req) {
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (auto ok = OnlyMembers(*body, {"refresh_token"}); !ok) co_return detail::Fail(req, ok.error());
  auto token = RequiredString(*body, "refresh_token");
  if (!token) co_return detail::Fail(req, token.error());
  std::string presented = std::move(*token);
  auto outcome = co_await s.sessions.Rotate(req.shard(), std::move(presented));
  if (!outcome) co_return detail::Fail(req, outcome.error());
  if (outcome->reused) {
    obs::Log(obs::LogLevel::kWarn, "refresh token reuse: session family revoked",
             {{"request_id", req.request_id()},
              {"user_id", outcome->user_id},
              {"family_id", outcome->family_id},
              {"ip", req.remote_address()}});
    // Whoever presented it (the user or a thief) proved nothing: the actor is the request's.
    const std::string target = UserTarget(outcome->user_id);
    co_await Audit(s, req, "auth.refresh_reuse", target, audit::Outcome::kDenied);
    co_return detail::Unauthorized(req, "The refresh token is not valid.");
  }
  // The user's current roles; a deleted user (record or credentials) refreshes no more.
  std::string id = outcome->user_id;
  auto user = co_await LoadUser(s, req.shard(), std::move(id));
  if (!user) co_return detail::Fail(req, user.error());
  if (!*user) co_return detail::Unauthorized(req, "The refresh token is not valid.");
  std::vector<std::string> roles;
  for (const auto& r : (*user)->at("roles").as_array()) roles.emplace_back(r.as_string());
  auto pair = TokenPair(s, outcome->user_id, roles, outcome->next);
  if (!pair) co_return detail::Fail(req, pair.error());
  co_return JsonResponse(200, *pair);
}

http::Task<http::Response> Logout(const AuthServices& s, http::Request& req) {
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (auto ok = OnlyMembers(*body, {"refresh_token"}); !ok) co_return detail::Fail(req, ok.error());
  auto token = RequiredString(*body, "refresh_token");
  if (!token) co_return detail::Fail(req, token.error());
  std::string presented = std::move(*token);
  auto revoked = co_await s.sessions.RevokeFamilyOf(req.shard(), std::move(presented));
  if (!revoked) co_return detail::Fail(req, revoked.error());
  // A live refresh token of the user is proof enough to name it as the actor.
  const std::string target = UserTarget(*revoked);
  co_await Audit(s, req, "auth.logout", target, audit::Outcome::kSuccess, *revoked);
  co_return http::Response::Empty(204);
}

// ---- me / password -----------------------------------------------------------------------------

/// 401 unless the caller is a user (an access token).
std::optional<http::Response> RequireUser(const http::Request& req) {
  if (req.principal().kind == http::Principal::Kind::kUser && !req.principal().user_id.empty()) return std::nullopt;
  if (req.principal().anonymous()) return detail::Unauthorized(req, "A user access token is required.");
  return http::Problem(Err(ErrorCode::kForbidden, "Only a user's access token can do this."), req.request_id());
}

http::Task<http::Response> Me(const AuthServices& s, http::Request& req) {
  if (auto denied = RequireUser(req)) co_return *denied;
  std::string id = req.principal().user_id;
  auto user = co_await LoadUser(s, req.shard(), std::move(id));
  if (!user) co_return detail::Fail(req, user.error());
  if (!*user) co_return detail::Unauthorized(req, "The user no longer exists.");
  co_return JsonResponse(200, **user);
}

store::Task<core::Result<void>> PasswordBody(store::Transaction& tx, const store::Dialect& d, const std::string& id,
                                             const std::string& hash, const std::string& keep_family) {
  if (auto ok = co_await auth::UserStore::SetPasswordHash(tx, d, id, hash); !ok) co_return ok;
  co_return co_await auth::SessionStore::RevokeUserIn(tx, d, id, keep_family);
}

http::Task<http::Response> ChangePassword(const AuthServices& s, http::Request& req) {
  if (auto denied = RequireUser(req)) co_return *denied;
  auto body = ObjectBody(req);
  if (!body) co_return detail::Fail(req, body.error());
  if (auto ok = OnlyMembers(*body, {"current_password", "new_password"}); !ok) co_return detail::Fail(req, ok.error());
  auto current = RequiredString(*body, "current_password");
  if (!current) co_return detail::Fail(req, current.error());
  auto next = RequiredString(*body, "new_password");
  if (!next) co_return detail::Fail(req, next.error());
  if (auto ok = CheckPasswordPolicy(*next, s.options.password_min_length, "new_password"); !ok)
    co_return detail::Fail(req, ok.error());
  const std::string user_id = req.principal().user_id;
  std::string lookup = user_id;
  auto creds = co_await s.users.FindById(req.shard(), std::move(lookup));
  if (!creds) co_return detail::Fail(req, creds.error());
  if (!*creds) co_return detail::Unauthorized(req, "The user no longer exists.");
  const std::string account = (*creds)->email;
  const std::string ip(req.remote_address());
  const std::string target = UserTarget(user_id);
  if (auto wait = s.throttle.RetryAfter(account, ip)) {
    co_await Audit(s, req, "auth.password_changed", target, audit::Outcome::kDenied, {}, "password");
    co_return TooManyAttempts(req, *wait);
  }
  std::string old_hash = (*creds)->password_hash;
  std::string plain = std::move(*current);
  auto verified = co_await s.passwords.Verify(std::move(old_hash), std::move(plain));
  if (!verified) co_return detail::Fail(req, verified.error());
  if (!*verified) {
    co_await Audit(s, req, "auth.password_changed", target, audit::Outcome::kFailure, {}, "password");
    co_await CountFailure(s, req, account, ip, target);
    co_return detail::Fail(req, FieldError(ErrorCode::kValidation, "The current password is wrong.", "current_password",
                                           "mismatch", "does not match"));
  }
  std::string fresh = std::move(*next);
  auto hash = co_await s.passwords.Hash(std::move(fresh));
  if (!hash) co_return detail::Fail(req, hash.error());
  const store::Dialect& d = s.database.dialect();
  const std::string keep = req.principal().session_id;
  const std::string& new_hash = *hash;
  auto done = co_await s.database.Transact(
      req.shard(), [&](store::Transaction& tx) { return PasswordBody(tx, d, user_id, new_hash, keep); });
  if (!done) co_return detail::Fail(req, done.error());
  obs::Log(obs::LogLevel::kInfo, "password changed; other sessions revoked",
           {{"request_id", req.request_id()}, {"user_id", user_id}});
  co_await Audit(s, req, "auth.password_changed", target, audit::Outcome::kSuccess, {}, "password");
  co_return http::Response::Empty(204);
}

// ---- invites / jwks ----------------------------------------------------------------------------

store::Task<core::Result<void>> InviteBody(store::Transaction& tx, const store::Dialect& d, const std::string& hash,
                                           const std::string& by, std::int64_t now, std::int64_t expires) {
  store::Statement st{"INSERT INTO basalt_auth_invites (token_hash, created_by, created_at, expires_at) VALUES (" +
                          d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4) + ")",
                      {hash, by, now, expires}};
  auto r = co_await tx.Execute(std::move(st));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return core::Result<void>{};
}

http::Task<http::Response> CreateInvite(const AuthServices& s, http::Request& req) {
  if (auto denied = detail::RequirePermission(req, auth::kUsersManage)) co_return *denied;
  std::int64_t ttl = s.options.invite_ttl_s;
  if (!req.body().empty()) {
    auto body = ObjectBody(req);
    if (!body) co_return detail::Fail(req, body.error());
    if (auto ok = OnlyMembers(*body, {"ttl_s"}); !ok) co_return detail::Fail(req, ok.error());
    if (const json::value* v = body->if_contains("ttl_s")) {
      if (!v->is_int64() || v->as_int64() < 60 || v->as_int64() > 90LL * 24 * 3600)
        co_return detail::Fail(req, FieldError(ErrorCode::kValidation, "The request is invalid.", "ttl_s", "out_of_range",
                                               "an integer from 60 to 7776000"));
      ttl = v->as_int64();
    }
  }
  const std::string token = "inv_" + core::RandomToken();
  const std::string hash = core::Sha256Hex(token);
  const std::string by = req.principal().id.empty() ? std::string(req.principal().kind_name()) : req.principal().id;
  const std::int64_t now = NowS();
  const std::int64_t expires = now + ttl;
  const store::Dialect& d = s.database.dialect();
  auto done = co_await s.database.Transact(
      req.shard(), [&](store::Transaction& tx) { return InviteBody(tx, d, hash, by, now, expires); });
  if (!done) co_return detail::Fail(req, done.error());
  // The stored hash, never the token: the same value basalt_auth_invites.token_hash holds.
  const std::string target = "invite:" + hash;
  co_await Audit(s, req, "auth.invite_created", target, audit::Outcome::kSuccess);
  json::object out{{"token", token},
                   {"expires_at", core::FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(expires)))}};
  co_return JsonResponse(201, out);
}

http::Task<http::Response> Jwks(const AuthServices& s, http::Request&) {
  http::Response res = http::Response::Json(200, s.tokens.Jwks());
  res.Set("Content-Type", "application/jwk-set+json");
  res.Set("Cache-Control", "public, max-age=300");
  co_return res;
}

// ---- creating users ----------------------------------------------------------------------------

store::Task<core::Result<void>> CreateUserBody(store::Transaction& tx, const store::Dialect& d,
                                               const NewUser& user,
                                               const std::string& id, const std::string& now,
                                               const schema::Columns& columns) {
  const std::string table = Quote(schema::TableName("users"));
  if (auto ok = co_await auth::UserStore::DeleteOrphan(tx, d, user.email, table); !ok) co_return ok;
  if (user.first_user_only) {
    auto count = co_await auth::UserStore::CountIn(tx);
    if (!count) co_return std::unexpected(std::move(count.error()));
    if (*count > 0) co_return core::Fail(ErrorCode::kConflict, "An admin exists already; the setup token is dead.");
  }
  if (!user.invite_hash.empty()) {
    store::Statement use{"UPDATE basalt_auth_invites SET used_at = " + d.Placeholder(1) + ", used_by = " +
                             d.Placeholder(2) + " WHERE token_hash = " + d.Placeholder(3) +
                             " AND used_at IS NULL AND expires_at > " + d.Placeholder(4),
                         {NowS(), id, user.invite_hash, NowS()}};
    auto used = co_await tx.Execute(std::move(use));
    if (!used) co_return std::unexpected(std::move(used.error()));
    if (used->affected != 1)
      co_return core::Fail(ErrorCode::kForbidden, "The invite is not valid (unknown, used or expired).");
  }
  std::vector<store::Value> params{id, now, now, std::int64_t{1}};
  std::string names = "\"id\", \"created_at\", \"updated_at\", \"version\"";
  std::string values = d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", " + d.Placeholder(4);
  for (const auto& [name, value] : columns) {
    params.push_back(value);
    names += ", " + Quote(name);
    values += ", " + d.Placeholder(static_cast<int>(params.size()));
  }
  store::Statement insert{"INSERT INTO " + table + " (" + names + ") VALUES (" + values + ")", std::move(params)};
  auto inserted = co_await tx.Execute(std::move(insert));
  if (!inserted) co_return std::unexpected(std::move(inserted.error()));
  auth::UserCredentials creds{id, user.email, user.password_hash, user.roles};
  co_return co_await auth::UserStore::Insert(tx, d, creds);
}

}  // namespace

void SetupToken::Arm(std::string token) {
  std::lock_guard lock(mutex_);
  hash_ = core::Sha256Hex(token);
}

bool SetupToken::Consume(std::string_view token) {
  const std::string presented = core::Sha256Hex(token);
  std::lock_guard lock(mutex_);
  if (hash_.empty()) return false;
  // Compare the digests in constant time.
  if (!core::ConstantTimeEquals(hash_, presented)) return false;
  hash_.clear();
  return true;
}

void SetupToken::Restore(std::string token) { Arm(std::move(token)); }

bool SetupToken::armed() const {
  std::lock_guard lock(mutex_);
  return !hash_.empty();
}

core::Result<void> CheckPasswordPolicy(std::string_view password, std::size_t min_length, std::string field) {
  if (password.size() > auth::kMaxPasswordBytes)
    return std::unexpected(FieldError(ErrorCode::kValidation, "The password is not acceptable.", field, "too_long",
                                      "at most 1024 bytes"));
  std::size_t code_points = 0;
  for (std::size_t i = 0; i < password.size();) {
    const auto c = static_cast<unsigned char>(password[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > password.size())
      return std::unexpected(FieldError(ErrorCode::kValidation, "The password is not acceptable.", field, "invalid",
                                        "must be valid UTF-8"));
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(password[i + k]) & 0xC0) != 0x80)
        return std::unexpected(FieldError(ErrorCode::kValidation, "The password is not acceptable.", field, "invalid",
                                          "must be valid UTF-8"));
    }
    i += n;
    ++code_points;
  }
  if (code_points < min_length)
    return std::unexpected(FieldError(ErrorCode::kValidation, "The password is not acceptable.", field, "too_short",
                                      "at least " + std::to_string(min_length) + " characters"));
  return {};
}

std::string UsersCollectionSpec() {
  return R"({"name": "users", "fields": [{"name": "name", "type": "text", "max_length": 200}],
    "rules": {"list": "id = @request.auth.id", "view": "id = @request.auth.id",
              "update": "id = @request.auth.id", "create": null, "delete": null}})";
}

store::Task<core::Result<void>> EnsureUsersCollection(schema::Catalog& catalog, unsigned shard) {
  if (catalog.snapshot()->Find("users")) co_return core::Result<void>{};
  auto spec = schema::ParseCollectionSpec(json::parse(UsersCollectionSpec()));
  if (!spec) co_return std::unexpected(std::move(spec.error()));
  auto created = co_await catalog.Create(shard, std::move(*spec));
  if (created) {
    obs::Log(obs::LogLevel::kInfo, "created the built-in users collection", {});
    co_return core::Result<void>{};
  }
  if (created.error().code != ErrorCode::kConflict) co_return std::unexpected(std::move(created.error()));
  // Another instance created it meanwhile.
  auto refreshed = co_await catalog.Refresh(shard, std::chrono::milliseconds(0));
  if (!refreshed) co_return std::unexpected(std::move(refreshed.error()));
  if (!catalog.snapshot()->Find("users")) co_return std::unexpected(std::move(created.error()));
  co_return core::Result<void>{};
}

store::Task<core::Result<void>> CreateUser(store::Database& database, unsigned shard, const schema::Collection& users,
                                           NewUser user, json::object& out) {
  auto columns = schema::ValidateRecord(users.spec, json::value(user.fields), schema::WriteMode::kCreate);
  if (!columns) co_return std::unexpected(std::move(columns.error()));
  const std::string id = core::FormatUuid(core::NewUuidV7());
  const std::string now = core::FormatRfc3339(std::chrono::system_clock::now());
  const store::Dialect& d = database.dialect();
  const schema::Columns& cols = *columns;
  auto done = co_await database.Transact(
      shard, [&](store::Transaction& tx) { return CreateUserBody(tx, d, user, id, now, cols); });
  if (!done) co_return done;
  std::vector<store::Value> row{id, now, now, std::int64_t{1}};
  for (const auto& [_, v] : cols) row.push_back(v);
  out = schema::RowToJson(users.spec, row);
  out["email"] = user.email;
  json::array roles;
  for (const auto& r : user.roles) roles.emplace_back(r);
  out["roles"] = std::move(roles);
  co_return core::Result<void>{};
}

core::Result<void> RegisterAuth(http::Router& router, const AuthServices& services) {
  const AuthServices* s = &services;
  using M = http::Method;
  struct Route {
    M method;
    const char* path;
    http::Task<http::Response> (*handler)(const AuthServices&, http::Request&);
  };
  const Route routes[] = {
      {M::kPost, "/api/v1/auth/register", Register},   {M::kPost, "/api/v1/auth/login", Login},
      {M::kPost, "/api/v1/auth/refresh", Refresh},     {M::kPost, "/api/v1/auth/logout", Logout},
      {M::kGet, "/api/v1/auth/me", Me},                {M::kPost, "/api/v1/auth/password", ChangePassword},
      {M::kPost, "/api/v1/auth/invites", CreateInvite}, {M::kPost, "/api/v1/auth/setup", Setup},
      {M::kGet, "/.well-known/jwks.json", Jwks},
  };
  for (const Route& r : routes) {
    auto handler = r.handler;
    if (auto added = router.Add(r.method, r.path, [s, handler](http::Request& req) { return handler(*s, req); }); !added)
      return added;
  }
  return {};
}

}  // namespace basalt::api
