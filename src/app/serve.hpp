#pragma once
/// `basalt serve`: builds every component from validated settings and runs until SIGTERM/SIGINT;
/// SIGHUP reloads the configuration.

#include <csignal>

#include "app/reload.hpp"
#include "config/settings.hpp"

namespace basalt::app {

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every thread it starts
/// later); returns that set. Call before starting any thread; Serve takes them with sigwait.
sigset_t BlockShutdownSignals();

/// Runs the server. Returns the process exit code: 0 after a graceful shutdown, 1 when a
/// component cannot start (port in use, bad TLS files, unwritable data directory). SIGHUP
/// reloads the configuration through `reload` (see app/reload.hpp); without one it is ignored.
int Serve(const config::Settings& settings, const SettingsLoader& reload = nullptr);

}  // namespace basalt::app
