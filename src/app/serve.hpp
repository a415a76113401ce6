#pragma once
/// `basalt serve`: builds every component from validated settings and runs until SIGTERM/SIGINT.

#include "config/settings.hpp"

namespace basalt::app {

/// Runs the server. Returns the process exit code: 0 after a graceful shutdown, 1 when a
/// component cannot start (port in use, bad TLS files, unwritable data directory).
int Serve(const config::Settings& settings);

}  // namespace basalt::app
