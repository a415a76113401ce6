#pragma once
/// The one vocabulary of permissions and scopes. A role grants permissions; an API key or an OAuth2
/// service token carries scopes, and acts only within them. Both are drawn from this list:
///
///   admin                 everything (the built-in `admin` role)
///   records:read          list and view records (still under each collection's rules)
///   records:write         create, replace, update and delete records (still under the rules)
///   records:read:<c>      records:read for collection <c> only (likewise records:write:<c>)
///   collections:manage    create, change and drop collections
///   queues:produce        publish messages
///   queues:consume        claim, ack, nack and extend messages
///   queues:admin          create and configure queues, stats, dead letters, replay
///   queues:<action>:<q>   the same for queue <q> only (e.g. queues:produce:orders)
///   webhooks:manage       webhooks
///   api_keys:manage       API keys of any user
///   clients:manage        OAuth2 clients
///   roles:manage          roles and role assignments
///   users:manage          users
///   audit:read            the audit log

#include <string>
#include <string_view>
#include <vector>

namespace basalt::auth {

inline constexpr std::string_view kAdmin = "admin";
inline constexpr std::string_view kRecordsRead = "records:read";
inline constexpr std::string_view kRecordsWrite = "records:write";
inline constexpr std::string_view kCollectionsManage = "collections:manage";
inline constexpr std::string_view kQueuesProduce = "queues:produce";
inline constexpr std::string_view kQueuesConsume = "queues:consume";
inline constexpr std::string_view kQueuesAdmin = "queues:admin";
inline constexpr std::string_view kWebhooksManage = "webhooks:manage";
inline constexpr std::string_view kApiKeysManage = "api_keys:manage";
inline constexpr std::string_view kClientsManage = "clients:manage";
inline constexpr std::string_view kRolesManage = "roles:manage";
inline constexpr std::string_view kUsersManage = "users:manage";
inline constexpr std::string_view kAuditRead = "audit:read";

/// Every scope without a collection suffix, in documentation order.
const std::vector<std::string>& KnownScopes();

/// True for a known scope, or `records:read:<c>` / `records:write:<c>` with a valid collection name
/// (letters, digits, underscore; starts with a letter or underscore; at most 63 characters), or
/// `queues:produce:<q>` / `queues:consume:<q>` / `queues:admin:<q>` with a valid queue name (1 to
/// 128 of letters, digits, `_ . -`, starting with a letter or digit).
bool IsValidScope(std::string_view scope);

/// True when `granted` covers `required` (one of the constants above) for `collection` ("" when the
/// action is not about one collection or queue): `admin` covers everything; `records:read` covers
/// every collection; `records:read:<c>` covers only <c> (likewise `queues:produce:<q>` for queue <q>).
bool Covers(const std::vector<std::string>& granted, std::string_view required, std::string_view collection = {});

/// True when every scope in `wanted` is covered by `granted` (a subset check that understands
/// `admin` and the per-collection forms). Used to stop anyone handing out more than they hold.
bool CoversAll(const std::vector<std::string>& granted, const std::vector<std::string>& wanted);

/// Splits a space-separated OAuth2 `scope` parameter (RFC 6749 §3.3); empty parts are dropped.
std::vector<std::string> SplitScopes(std::string_view text);
/// Joins scopes with single spaces.
std::string JoinScopes(const std::vector<std::string>& scopes);

/// True for the built-in roles `admin` and `user`.
bool IsBuiltinRole(std::string_view role);
/// Permissions of a built-in role: admin -> {admin}; user -> {records:read, records:write}. Empty
/// for any other name.
std::vector<std::string> BuiltinRolePermissions(std::string_view role);

/// True for a role name: 1 to 63 of [a-z0-9_-], starting with a letter.
bool IsValidRoleName(std::string_view name);

}  // namespace basalt::auth
