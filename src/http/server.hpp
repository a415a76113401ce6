#pragma once
/// The HTTP/1.1 server: Beast over Asio, one io_context and one SO_REUSEPORT acceptor per thread. All Beast code of the project
/// lives behind this header.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"

namespace basalt::http {

/// Readiness shared between the server (which clears it when draining) and the /readyz handler.
class Readiness {
 public:
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void set(bool ready) { ready_.store(ready, std::memory_order_release); }

 private:
  std::atomic<bool> ready_{false};
};

/// Server limits and behaviour (built by app/ from the validated settings).
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 1;
  unsigned max_connections = 16384;
  std::uint32_t max_header_bytes = 16 * 1024;
  std::uint32_t max_request_line_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 1024 * 1024;
  unsigned max_json_depth = 64;  ///< Handed to handlers through Request::max_json_depth().
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  std::chrono::milliseconds drain_delay{0};  ///< Keep serving (readyz 503) this long before closing.
  std::string tls_cert_file;  ///< TLS when both files are set.
  std::string tls_key_file;
};

/// Serves requests through a pipeline. Start() binds and starts the threads; Shutdown() drains.
class Server {
 public:
  struct Impl;

  /// `router` and `pipeline` must outlive the server. `readiness` is cleared on Shutdown().
  Server(ServerOptions options, const Router& router, const Pipeline& pipeline, Readiness& readiness);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds (port 0 picks one free port shared by every acceptor), loads TLS material and starts
  /// the I/O threads. Errors: address in use, bad TLS files.
  core::Result<void> Start();

  /// The bound port (after Start).
  std::uint16_t port() const;

  /// Number of I/O threads (= metric shards).
  unsigned threads() const;

  /// Begins a graceful shutdown: readiness off, after drain_delay stop accepting, close idle
  /// connections, let in-flight requests finish (their responses say `Connection: close`), and
  /// force-close what remains at shutdown_timeout. Thread-safe; returns at once.
  void Shutdown();

  /// Blocks until every I/O thread has finished.
  void Wait();

 private:
  std::unique_ptr<Impl> impl_;
};

/// Runs one connection's worth of bytes through the real request path (parser, limits, router,
/// pipeline, serializer) over an in-memory stream and returns what the server wrote. For the
/// fuzzer and for tests; timeouts do not apply.
std::string ServeBytesForTesting(std::string_view input, ServerOptions options, const Router& router,
                                 const Pipeline& pipeline);

}  // namespace basalt::http
