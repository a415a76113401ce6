#include "http/problem.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace basalt::http {

using core::ErrorCode;

int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest: return 400;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kForbidden: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kNotAcceptable: return 406;
    case ErrorCode::kRequestTimeout: return 408;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kPreconditionFailed: return 412;
    case ErrorCode::kPayloadTooLarge: return 413;
    case ErrorCode::kUriTooLong: return 414;
    case ErrorCode::kUnsupportedMediaType: return 415;
    case ErrorCode::kValidation: return 422;
    case ErrorCode::kPreconditionRequired: return 428;
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kHeadersTooLarge: return 431;
    case ErrorCode::kInternal: return 500;
    case ErrorCode::kNotImplemented: return 501;
    case ErrorCode::kUnavailable: return 503;
  }
  return 500;
}

namespace {

std::string_view TitleFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadRequest: return "Bad Request";
    case ErrorCode::kUnauthorized: return "Unauthorized";
    case ErrorCode::kForbidden: return "Forbidden";
    case ErrorCode::kNotFound: return "Not Found";
    case ErrorCode::kMethodNotAllowed: return "Method Not Allowed";
    case ErrorCode::kNotAcceptable: return "Not Acceptable";
    case ErrorCode::kRequestTimeout: return "Request Timeout";
    case ErrorCode::kConflict: return "Conflict";
    case ErrorCode::kPreconditionFailed: return "Precondition Failed";
    case ErrorCode::kPayloadTooLarge: return "Content Too Large";
    case ErrorCode::kUriTooLong: return "URI Too Long";
    case ErrorCode::kUnsupportedMediaType: return "Unsupported Media Type";
    case ErrorCode::kValidation: return "Validation failed";
    case ErrorCode::kPreconditionRequired: return "Precondition Required";
    case ErrorCode::kRateLimited: return "Too Many Requests";
    case ErrorCode::kHeadersTooLarge: return "Request Header Fields Too Large";
    case ErrorCode::kInternal: return "Internal Server Error";
    case ErrorCode::kNotImplemented: return "Not Implemented";
    case ErrorCode::kUnavailable: return "Service Unavailable";
  }
  return "Internal Server Error";
}

}  // namespace

Response Problem(const core::Error& error, std::string_view request_id) {
  const std::string_view code = core::CodeName(error.code);
  const int status = StatusFor(error.code);
  boost::json::object body;
  body["type"] = "urn:basalt:problem:" + std::string(code);
  body["title"] = TitleFor(error.code);
  body["status"] = status;
  body["detail"] = error.message.empty() ? std::string(TitleFor(error.code)) : error.message;
  body["code"] = code;
  body["request_id"] = request_id;
  if (!error.fields.empty()) {
    boost::json::array errors;
    for (const auto& f : error.fields) {
      errors.push_back(boost::json::object{{"field", f.field}, {"code", f.code}, {"message", f.message}});
    }
    body["errors"] = std::move(errors);
  }
  Response r = Response::Text(status, boost::json::serialize(body), "application/problem+json");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace basalt::http
