#include "auth/scopes.hpp"

#include <algorithm>

#include "core/strings.hpp"

namespace basalt::auth {
namespace {

bool IsCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  const char first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z') || first == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// queue::ValidQueueName, repeated here (auth/ does not depend on queue/).
bool IsQueueName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

/// The scopes that take a suffix: `:<collection>` or, for the queue ones, `:<queue>`.
struct Suffixed {
  std::string_view base;
  bool queue;
};
constexpr Suffixed kSuffixed[] = {{kRecordsRead, false},   {kRecordsWrite, false}, {kQueuesProduce, true},
                                  {kQueuesConsume, true},  {kQueuesAdmin, true}};

/// Splits `scope` into a base that takes a suffix and the suffix; false when it has none.
bool SplitSuffixed(std::string_view scope, std::string_view& base, std::string_view& suffix, bool& queue) {
  for (const Suffixed& s : kSuffixed) {
    if (scope.size() > s.base.size() + 1 && scope.starts_with(s.base) && scope[s.base.size()] == ':') {
      base = s.base;
      suffix = scope.substr(s.base.size() + 1);
      queue = s.queue;
      return true;
    }
  }
  return false;
}

}  // namespace

const std::vector<std::string>& KnownScopes() {
  static const std::vector<std::string> kAll{
      std::string(kAdmin),          std::string(kRecordsRead),   std::string(kRecordsWrite),
      std::string(kCollectionsManage), std::string(kQueuesProduce), std::string(kQueuesConsume),
      std::string(kApiKeysManage),  std::string(kClientsManage), std::string(kRolesManage),
      std::string(kUsersManage),    std::string(kAuditRead),     std::string(kQueuesAdmin),
      std::string(kWebhooksManage)};
  return kAll;
}

bool IsValidScope(std::string_view scope) {
  const auto& known = KnownScopes();
  if (std::find(known.begin(), known.end(), scope) != known.end()) return true;
  std::string_view base, suffix;
  bool queue = false;
  if (!SplitSuffixed(scope, base, suffix, queue)) return false;
  return queue ? IsQueueName(suffix) : IsCollectionName(suffix);
}

bool Covers(const std::vector<std::string>& granted, std::string_view required, std::string_view collection) {
  for (const auto& g : granted) {
    if (g == kAdmin || g == required) return true;
    if (!collection.empty() && g.size() == required.size() + 1 + collection.size() && g.starts_with(required) &&
        g[required.size()] == ':' && std::string_view(g).substr(required.size() + 1) == collection) {
      return true;
    }
  }
  return false;
}

bool CoversAll(const std::vector<std::string>& granted, const std::vector<std::string>& wanted) {
  for (const auto& w : wanted) {
    std::string_view base = w, collection;
    bool queue = false;
    if (!SplitSuffixed(w, base, collection, queue)) {
      base = w;
      collection = {};
    }
    if (!Covers(granted, base, collection) && std::find(granted.begin(), granted.end(), w) == granted.end()) return false;
  }
  return true;
}

std::vector<std::string> SplitScopes(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find(' ', pos), text.size());
    if (end > pos) {
      std::string s(text.substr(pos, end - pos));
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
    }
    pos = end + 1;
  }
  return out;
}

std::string JoinScopes(const std::vector<std::string>& scopes) { return core::Join(scopes, " "); }

bool IsBuiltinRole(std::string_view role) { return role == "admin" || role == "user"; }

std::vector<std::string> BuiltinRolePermissions(std::string_view role) {
  if (role == "admin") return {std::string(kAdmin)};
  if (role == "user") return {std::string(kRecordsRead), std::string(kRecordsWrite)};
  return {};
}

bool IsValidRoleName(std::string_view name) {
  if (name.empty() || name.size() > 63 || !(name.front() >= 'a' && name.front() <= 'z')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace basalt::auth
