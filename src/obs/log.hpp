#pragma once
/// Structured logging: one JSON object per line (or a human-readable line), over spdlog.
/// Callers never include spdlog; they pass typed fields.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace basalt::obs {

/// Severity, in increasing order.
enum class LogLevel {
  kTrace,  ///< Very verbose diagnostics.
  kDebug,  ///< Diagnostics for developers.
  kInfo,   ///< Normal operation: start, stop, access log.
  kWarn,   ///< Something unexpected that Basalt handled.
  kError,  ///< A failure that needs attention.
  kOff,    ///< Nothing is logged.
};

/// Parses "trace".."off"; nullopt-like false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel& out);

/// One structured field of a log line.
struct LogField {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, double, bool> value;
};

/// Log configuration.
struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  bool json = true;          ///< false: human-readable text lines.
  std::string file;          ///< Empty: standard output.
};

/// Sets up the process-wide logger. Safe to call again (replaces the previous logger).
void InitLogging(const LogOptions& options);

/// Changes the level of every later line (a configuration reload).
void SetLogLevel(LogLevel level);

/// True when a line at `level` would be written (check before building expensive fields).
bool LogEnabled(LogLevel level);

/// Writes one line: {"ts":"...","level":"info","msg":"...", <fields...>}. Thread-safe.
void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

/// Flushes buffered lines (called on shutdown).
void FlushLogs();

}  // namespace basalt::obs
