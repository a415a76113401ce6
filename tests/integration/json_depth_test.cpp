// server.max_json_depth reaches the record handlers: bodies nested deeper are a 400 problem and
// store nothing; bodies within the limit are accepted.

#include <gtest/gtest.h>

#include "harness.hpp"

namespace basalt::testing {
namespace {

constexpr char kToken[] = "json-depth-test-admin-token-0123456789";

std::string Nested(int objects) {  // `objects` nested objects around a number
  std::string s;
  for (int i = 0; i < objects; ++i) s += R"({"a":)";
  s += "1";
  for (int i = 0; i < objects; ++i) s += "}";
  return s;
}

TEST(JsonDepth, ConfiguredLimitAppliesToRecordBodies) {
  SetBinaryPath(BASALT_BINARY);
  BasaltProcess p({}, {{"BASALT_AUTH__ADMIN_TOKEN", kToken}, {"BASALT_SERVER__MAX_JSON_DEPTH", "4"}});
  ASSERT_TRUE(p.started()) << p.start_error();
  const std::vector<std::pair<std::string, std::string>> admin = {
      {"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}};
  const auto made = Request(p.port(), "POST", "/api/v1/collections", admin,
                            R"({"name":"docs","fields":[{"name":"meta","type":"json"}],)"
                            R"("rules":{"list":"","view":"","create":"","update":"","delete":""}})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::vector<std::pair<std::string, std::string>> json = {{"Content-Type", "application/json"}};
  // The record object itself is level 1, so meta may hold 3 more levels (4 in all).
  const auto ok = Request(p.port(), "POST", "/api/v1/collections/docs/records", json, R"({"meta":)" + Nested(3) + "}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  const auto deep =
      Request(p.port(), "POST", "/api/v1/collections/docs/records", json, R"({"meta":)" + Nested(4) + "}");
  EXPECT_EQ(deep.status, 400) << deep.body;
  EXPECT_NE(deep.body.find("\"code\":\"bad_request\""), std::string::npos) << deep.body;
  const auto list = Get(p.port(), "/api/v1/collections/docs/records?count=true");
  EXPECT_NE(list.body.find("\"total\":1"), std::string::npos) << list.body;
}

}  // namespace
}  // namespace basalt::testing
