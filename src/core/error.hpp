#pragma once
/// Errors as values: every expected failure in domain code is a `Result<T>`.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace basalt::core {

/// What went wrong, in terms a client can act on. `http/problem` maps each to one HTTP status.
enum class ErrorCode {
  kBadRequest,          ///< Malformed input (syntax): 400.
  kUnauthorized,        ///< Missing or invalid credentials: 401.
  kForbidden,           ///< Authenticated but not allowed: 403.
  kNotFound,            ///< No such resource: 404.
  kMethodNotAllowed,    ///< Path exists, method does not: 405.
  kNotAcceptable,       ///< No representation matches Accept: 406.
  kRequestTimeout,      ///< Client too slow to send its request: 408.
  kConflict,            ///< State conflict, e.g. unique violation: 409.
  kPreconditionFailed,  ///< If-Match did not match: 412.
  kPayloadTooLarge,     ///< Body over its limit: 413.
  kUriTooLong,          ///< Request line over its limit: 414.
  kUnsupportedMediaType,///< Content-Type not accepted: 415.
  kValidation,          ///< Well-formed but invalid content: 422.
  kPreconditionRequired,///< A conditional header is required: 428.
  kRateLimited,         ///< Too many requests: 429.
  kHeadersTooLarge,     ///< Header block over its limit: 431.
  kInternal,            ///< A bug or an unexpected failure: 500.
  kNotImplemented,      ///< Unrecognised method: 501.
  kUnavailable,         ///< Not ready, draining or overloaded: 503.
};

/// The stable machine-readable code of an ErrorCode, e.g. "validation_failed".
std::string_view CodeName(ErrorCode code);

/// One problem with one field of an input document.
struct FieldError {
  std::string field;    ///< Dotted path of the field, e.g. "title" or "server.port".
  std::string code;     ///< Stable code, e.g. "required", "too_long".
  std::string message;  ///< Human-readable explanation.
};

/// A failure: a public part that may be shown to a client and a private cause that is only logged.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;               ///< Public: safe to send to the client.
  std::vector<FieldError> fields;    ///< Public: per-field problems (validation).
  std::string cause;                 ///< Private: logged with the request id, never sent.

  /// Builds an error with a public message and an optional private cause.
  static Error Make(ErrorCode code, std::string message, std::string cause = {}) {
    return Error{code, std::move(message), {}, std::move(cause)};
  }
};

/// The result of an operation that may fail in an expected way.
template <class T>
using Result = std::expected<T, Error>;

/// Shorthand for `std::unexpected(Error::Make(...))`.
inline std::unexpected<Error> Fail(ErrorCode code, std::string message, std::string cause = {}) {
  return std::unexpected(Error::Make(code, std::move(message), std::move(cause)));
}

}  // namespace basalt::core
