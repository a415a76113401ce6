#include "core/error.hpp"

namespace basalt::core {

std::string_view CodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kUnauthorized: return "unauthorized";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kMethodNotAllowed: return "method_not_allowed";
    case ErrorCode::kNotAcceptable: return "not_acceptable";
    case ErrorCode::kRequestTimeout: return "request_timeout";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kPreconditionFailed: return "precondition_failed";
    case ErrorCode::kPayloadTooLarge: return "payload_too_large";
    case ErrorCode::kUriTooLong: return "uri_too_long";
    case ErrorCode::kUnsupportedMediaType: return "unsupported_media_type";
    case ErrorCode::kValidation: return "validation_failed";
    case ErrorCode::kPreconditionRequired: return "precondition_required";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kHeadersTooLarge: return "headers_too_large";
    case ErrorCode::kInternal: return "internal_error";
    case ErrorCode::kNotImplemented: return "not_implemented";
    case ErrorCode::kUnavailable: return "service_unavailable";
  }
  return "internal_error";
}

}  // namespace basalt::core
