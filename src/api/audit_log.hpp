#pragma once
/// The audit log over HTTP: `GET /api/v1/audit-log` (permission `audit:read`), the helper that turns a request
/// into an audit::Entry (actor, ip, user agent, request id), and the stage that records every
/// state-changing use of `auth.admin_token`.

#include <string>

#include "audit/audit.hpp"
#include "core/error.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"

namespace basalt::api {

/// An entry for `action` on `target` by the request's principal, with its client address,
/// User-Agent (at most 256 bytes) and request id. Handlers add `changes` before appending.
audit::Entry AuditEntry(const http::Request& req, std::string action, std::string target,
                        audit::Outcome outcome = audit::Outcome::kSuccess);

/// The actor kind of an http::Principal kind.
audit::ActorKind ActorKindOf(const http::Principal& principal);

/// GET /api/v1/audit-log: 401 anonymous, 403 without the permission `audit:read`. Query parameters (all
/// optional, ANDed): `action` (exact, or a prefix as "auth.*"), `actor_kind`, `actor_id`,
/// `target`, `outcome`, `since` / `until` (RFC 3339, `since` inclusive, `until` exclusive),
/// `limit` (1..500, default 50), `cursor` (the previous page's `next_cursor`). Unknown or
/// malformed parameters are 400. Newest first; `{"items": [...], "next_cursor": ...}` and a
/// `Link: <...>; rel="next"` header when there is more.
core::Result<void> RegisterAuditLog(http::Router& router, audit::AuditLog& log);

/// "admin_audit": for requests authenticated by `auth.admin_token` with a method other than
/// GET, HEAD or OPTIONS, appends `admin_token.used`; for record writes (records routes, batch) by
/// any other superuser (an admin user, an admin's key with the `admin` scope, a service with it),
/// whose writes bypass the collections' rules, `admin.data_write` (target "<METHOD> <path>", outcome from the
/// status: < 400 success, 401/403/429 denied, else failure) after the response is produced. GETs
/// cost one branch. An append that fails is logged; the response is not changed (the action has
/// already happened). Install after the authentication stage.
http::Middleware AdminTokenAuditStage(audit::AuditLog& log);

}  // namespace basalt::api
