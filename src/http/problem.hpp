#pragma once
/// RFC 9457 problem details: the one mapping from error codes to HTTP status and body.

#include <string_view>

#include "core/error.hpp"
#include "http/response.hpp"

namespace basalt::http {

/// The HTTP status for an error code. The only place this mapping lives.
int StatusFor(core::ErrorCode code);

/// An `application/problem+json` response: type, title, status, detail, code, request_id and,
/// for validation errors, `errors`. The error's private cause is never included.
/// Adds `Cache-Control: no-store`.
Response Problem(const core::Error& error, std::string_view request_id);

}  // namespace basalt::http
