#include "http/problem.hpp"

#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace basalt::http {
namespace {

using core::ErrorCode;

const std::vector<std::pair<ErrorCode, int>>& Table() {
  static const std::vector<std::pair<ErrorCode, int>> table = {
      {ErrorCode::kBadRequest, 400},          {ErrorCode::kUnauthorized, 401},
      {ErrorCode::kForbidden, 403},           {ErrorCode::kNotFound, 404},
      {ErrorCode::kMethodNotAllowed, 405},    {ErrorCode::kNotAcceptable, 406},
      {ErrorCode::kRequestTimeout, 408},      {ErrorCode::kConflict, 409},
      {ErrorCode::kPreconditionFailed, 412},  {ErrorCode::kPayloadTooLarge, 413},
      {ErrorCode::kUriTooLong, 414},          {ErrorCode::kUnsupportedMediaType, 415},
      {ErrorCode::kValidation, 422},          {ErrorCode::kPreconditionRequired, 428},
      {ErrorCode::kRateLimited, 429},         {ErrorCode::kHeadersTooLarge, 431},
      {ErrorCode::kInternal, 500},            {ErrorCode::kNotImplemented, 501},
      {ErrorCode::kUnavailable, 503},
  };
  return table;
}

boost::json::object ParseObject(const std::string& body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  EXPECT_TRUE(v.is_object()) << body;
  return v.is_object() ? v.as_object() : boost::json::object{};
}

TEST(Problem, StatusForEveryCode) {
  for (const auto& [code, status] : Table()) {
    EXPECT_EQ(StatusFor(code), status) << core::CodeName(code);
  }
}

TEST(Problem, BodyFieldsForEveryCode) {
  for (const auto& [code, status] : Table()) {
    SCOPED_TRACE(std::string(core::CodeName(code)));
    auto error = core::Error::Make(code, "public message", "PRIVATE cause: SELECT * FROM secrets");
    Response r = Problem(error, "req-42");
    EXPECT_EQ(r.status, status);
    EXPECT_TRUE(r.Get("Content-Type").value_or("").starts_with("application/problem+json"));
    EXPECT_EQ(r.Get("Cache-Control").value_or(""), "no-store");
    auto o = ParseObject(r.body);
    ASSERT_TRUE(o.contains("type") && o["type"].is_string());
    ASSERT_TRUE(o.contains("title") && o["title"].is_string());
    EXPECT_FALSE(o["title"].as_string().empty());
    ASSERT_TRUE(o.contains("status") && o["status"].is_int64());
    EXPECT_EQ(o["status"].as_int64(), status);
    EXPECT_EQ(o["detail"], "public message");
    EXPECT_EQ(o["code"], boost::json::string_view(core::CodeName(code)));
    EXPECT_EQ(o["request_id"], "req-42");
    EXPECT_EQ(r.body.find("PRIVATE"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("secrets"), std::string::npos) << r.body;
  }
}

TEST(Problem, ValidationErrorsListFields) {
  core::Error error = core::Error::Make(ErrorCode::kValidation, "Validation failed", "cause");
  error.fields.push_back({"title", "required", "title is required"});
  error.fields.push_back({"views", "too_small", "must be >= 0"});
  Response r = Problem(error, "rid");
  EXPECT_EQ(r.status, 422);
  auto o = ParseObject(r.body);
  ASSERT_TRUE(o.contains("errors") && o["errors"].is_array()) << r.body;
  const auto& errors = o["errors"].as_array();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].as_object().at("field"), "title");
  EXPECT_EQ(errors[0].as_object().at("code"), "required");
  EXPECT_EQ(errors[0].as_object().at("message"), "title is required");
  EXPECT_EQ(errors[1].as_object().at("field"), "views");
  EXPECT_EQ(o["code"], "validation_failed");
}

TEST(Problem, MessageIsJsonEscaped) {
  auto error = core::Error::Make(ErrorCode::kBadRequest, "bad \"quote\" \\ and\nnewline\x01");
  Response r = Problem(error, "rid");
  auto o = ParseObject(r.body);
  EXPECT_EQ(o["detail"], "bad \"quote\" \\ and\nnewline\x01");
}

}  // namespace
}  // namespace basalt::http
