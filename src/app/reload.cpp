#include "app/reload.hpp"

#include <map>
#include <sstream>

#include "app/database.hpp"
#include "audit/audit.hpp"
#include "core/strings.hpp"
#include "http/rate_limit.hpp"
#include "obs/log.hpp"

namespace basalt::app {

namespace {

// `config show` as key -> printed value ("server.port" -> "8090").
std::map<std::string, std::string> Flatten(const config::Settings& settings) {
  std::map<std::string, std::string> out;
  std::istringstream in(config::Show(settings));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
  }
  return out;
}


}  // namespace

// The rate-limit stage's settings: the default, then the built-in auth routes, then the configured
// routes (a later entry for the same route replaces an earlier one). config::Load validated them.
http::RateLimitOptions ToRateLimitOptions(const config::RateLimitSettings& s) {
  auto quota = [](const config::RateSpec& r) {
    return http::Quota{.count = r.count, .period = std::chrono::seconds(r.period_s), .burst = r.burst};
  };
  http::RateLimitOptions o;
  if (auto d = config::ParseRate(s.default_rate)) o.default_quota = quota(*d);
  auto add = [&](const std::string& text) {
    auto parsed = config::ParseRouteRate(text);
    if (!parsed) return;
    for (auto& [route, q] : o.routes) {
      if (route == parsed->first) {
        q = quota(parsed->second);
        return;
      }
    }
    o.routes.emplace_back(parsed->first, quota(parsed->second));
  };
  for (const auto& r : config::BuiltinRouteRates()) add(r);
  for (const auto& r : s.routes) add(r);
  return o;
}

std::vector<std::string> ChangedSettings(const config::Settings& before, const config::Settings& after) {
  const auto a = Flatten(before);
  const auto b = Flatten(after);
  std::vector<std::string> changed;
  for (const auto& info : config::SettingsTable()) {
    const auto x = a.find(info.key);
    const auto y = b.find(info.key);
    const bool differs = (x == a.end()) != (y == b.end()) || (x != a.end() && x->second != y->second);
    if (differs) changed.push_back(info.key);
  }
  return changed;
}

ReloadReport ApplySettings(config::Settings& current, const config::Settings& next, LiveSettings& live) {
  ReloadReport report;
  bool rate_limit_changed = false;
  for (const std::string& key : ChangedSettings(current, next)) {
    if (key == "log.level") {
      obs::LogLevel level = obs::LogLevel::kInfo;
      obs::ParseLogLevel(next.log.level, level);  // validated by config::Load
      obs::SetLogLevel(level);
      current.log.level = next.log.level;
    } else if (key == "log.access") {
      live.access_log.store(next.log.access, std::memory_order_relaxed);
      current.log.access = next.log.access;
    } else if ((key == "rate_limit.default" || key == "rate_limit.routes") && live.rate_limit) {
      if (key == "rate_limit.default") current.rate_limit.default_rate = next.rate_limit.default_rate;
      if (key == "rate_limit.routes") current.rate_limit.routes = next.rate_limit.routes;
      rate_limit_changed = true;
    } else {
      report.needs_restart.push_back(key);
      continue;
    }
    report.applied.push_back(key);
  }
  if (rate_limit_changed) live.rate_limit->Replace(ToRateLimitOptions(current.rate_limit));
  return report;
}

void Reload(config::Settings& current, const SettingsLoader& load, LiveSettings& live, audit::AuditLog& audit,
            unsigned shard) {
  audit::Entry entry;
  entry.actor_kind = audit::ActorKind::kSystem;
  entry.action = "config.reloaded";
  entry.target = "configuration";
  auto next = load();
  if (!next) {
    obs::Log(obs::LogLevel::kError, "configuration reload refused; the running configuration is unchanged",
             {{"problems", next.error()}});
    entry.outcome = audit::Outcome::kFailure;
  } else {
    const ReloadReport report = ApplySettings(current, *next, live);
    obs::Log(report.needs_restart.empty() ? obs::LogLevel::kInfo : obs::LogLevel::kWarn, "configuration reloaded",
             {{"applied", core::Join(report.applied, ", ")}, {"restart_required", core::Join(report.needs_restart, ", ")}});
    entry.changes = report.applied;
    for (const auto& key : report.needs_restart) entry.changes.push_back("restart_required:" + key);
  }
  if (auto appended = RunBlocking(audit.Append(shard, std::move(entry))); !appended) {
    obs::Log(obs::LogLevel::kError, "audit log: cannot record a configuration reload",
             {{"error", appended.error().message}, {"cause", appended.error().cause}});
  }
}

}  // namespace basalt::app
