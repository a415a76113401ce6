#pragma once
/// Configuration reload (SIGHUP): the settings are loaded again from the same sources (file,
/// environment, flags) and validated in full; a valid configuration is applied where a running
/// server can apply it, an invalid one changes nothing. Either way the audit log records it.
///
/// Applied at once: `log.level`, `log.access`, and with rate limiting on, `rate_limit.default`
/// and `rate_limit.routes`. Every other change (listen address, database, secrets...) is logged
/// and audited as needing a restart.

#include <atomic>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"

namespace basalt::audit {
class AuditLog;
}
namespace basalt::http {
class RateLimitPolicy;
struct RateLimitOptions;
}

namespace basalt::app {

/// Loads the settings again; the error is the formatted list of problems.
using SettingsLoader = std::function<std::expected<config::Settings, std::string>()>;

/// What a running server can change without a restart.
struct LiveSettings {
  std::atomic<bool> access_log{true};
  std::shared_ptr<http::RateLimitPolicy> rate_limit;  ///< Null when rate limiting is off.
};

/// The rate-limit stage's options from the settings (validated by config::Load).
http::RateLimitOptions ToRateLimitOptions(const config::RateLimitSettings& settings);

/// The keys ("log.level") whose effective value differs, in settings-table order. Secrets are
/// compared as `config show` prints them (set or not), so a changed secret value is not seen.
std::vector<std::string> ChangedSettings(const config::Settings& before, const config::Settings& after);

/// What a reload did.
struct ReloadReport {
  std::vector<std::string> applied;        ///< Keys now in effect.
  std::vector<std::string> needs_restart;  ///< Keys changed in the sources, not in effect.
};

/// Applies what can be applied from `next` to `live` and to `current` (which stays the effective
/// configuration: keys needing a restart keep their running value there).
ReloadReport ApplySettings(config::Settings& current, const config::Settings& next, LiveSettings& live);

/// The whole reload: load, apply, log, and append a `config.reloaded` entry to `audit` on `shard`
/// (outcome failure, nothing applied, when the new configuration is invalid). Runs on the
/// signal-handling thread.
void Reload(config::Settings& current, const SettingsLoader& load, LiveSettings& live, audit::AuditLog& audit,
            unsigned shard);

}  // namespace basalt::app
