#pragma once
/// The project's one outbound HTTP client (webhook deliveries): Beast over Asio, http and https
/// (OpenSSL, peer and host name verified), a connect timeout and a total timeout, never follows
/// redirects (a 3xx is returned like any other status), and refuses private destinations (SSRF)
/// at connect time, after its own DNS resolution, so a name that re-resolves elsewhere
/// (DNS rebinding) is still checked. Beast lives in client.cpp only.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "http/task.hpp"

namespace basalt::http {

/// One outbound request.
struct ClientRequest {
  std::string method = "POST";
  std::string url;  ///< http:// or https:// absolute URL.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{5000};  ///< Resolve + TCP connect + TLS handshake.
  std::chrono::milliseconds total_timeout{10000};   ///< The whole exchange.
  bool allow_private = false;  ///< Allow loopback/private/link-local/... destinations.
  std::size_t max_response_bytes = 64 * 1024;  ///< The body is cut here (the status still counts).
};

/// What came back.
struct ClientResponse {
  int status = 0;
  std::string body;
};

/// Sends `request` on the caller's executor. Errors: kValidation for a malformed URL or a refused
/// (private) destination; kUnavailable for resolution, connect, TLS, timeout or protocol failures
/// (the message says which).
Task<core::Result<ClientResponse>> Fetch(ClientRequest request);

/// Checks the URL's syntax: http or https, a host, no user info, no fragment. kValidation otherwise.
core::Result<void> CheckUrlSyntax(std::string_view url);

/// Resolves the URL's host and refuses it when any address is not public (unless
/// `allow_private`). kValidation when refused or unresolvable.
Task<core::Result<void>> CheckDestination(std::string url, bool allow_private);

/// True for addresses a webhook must not reach without `allow_private`: unspecified, loopback,
/// private (RFC 1918, CGNAT), link-local, unique-local, multicast, reserved/broadcast, and the
/// IPv4-mapped / NAT64 forms of those. `address` is a textual IPv4 or IPv6 address; anything
/// unparsable counts as forbidden.
bool IsForbiddenAddress(std::string_view address);

}  // namespace basalt::http
