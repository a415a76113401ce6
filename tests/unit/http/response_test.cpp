#include "http/response.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace basalt::http {
namespace {

std::size_t CountNamed(const Response& r, std::string_view name) {
  return static_cast<std::size_t>(std::count_if(r.headers.begin(), r.headers.end(),
                                                [&](const auto& h) { return HeaderNameEquals(h.first, name); }));
}

TEST(Response, SetReplacesCaseInsensitively) {
  Response r;
  r.Set("Content-Type", "text/plain");
  r.Set("content-type", "application/json");
  EXPECT_EQ(CountNamed(r, "Content-Type"), 1u);
  EXPECT_EQ(r.Get("CONTENT-TYPE").value_or(""), "application/json");
}

TEST(Response, SetReplacesEveryDuplicate) {
  Response r;
  r.Add("Vary", "Origin");
  r.Add("vary", "Accept");
  r.Set("VARY", "*");
  EXPECT_EQ(CountNamed(r, "Vary"), 1u);
  EXPECT_EQ(r.Get("vary").value_or(""), "*");
}

TEST(Response, AddKeepsDuplicatesAndGetReturnsFirst) {
  Response r;
  r.Add("Link", "<a>; rel=\"next\"");
  r.Add("link", "<b>; rel=\"prev\"");
  EXPECT_EQ(CountNamed(r, "LINK"), 2u);
  EXPECT_EQ(r.Get("Link").value_or(""), "<a>; rel=\"next\"");
}

TEST(Response, GetMissing) {
  Response r;
  EXPECT_FALSE(r.Get("X-Nope").has_value());
}

TEST(Response, RemoveRemovesAllCaseInsensitively) {
  Response r;
  r.Add("X-A", "1");
  r.Add("x-a", "2");
  r.Add("X-B", "3");
  r.Remove("X-a");
  EXPECT_EQ(CountNamed(r, "X-A"), 0u);
  EXPECT_EQ(r.Get("x-b").value_or(""), "3");
  r.Remove("not-there");
  EXPECT_EQ(r.headers.size(), 1u);
}

TEST(Response, Factories) {
  auto json = Response::Json(201, R"({"a":1})");
  EXPECT_EQ(json.status, 201);
  EXPECT_EQ(json.body, R"({"a":1})");
  EXPECT_TRUE(json.Get("Content-Type").value_or("").starts_with("application/json"));

  auto text = Response::Text(200, "hi");
  EXPECT_EQ(text.Get("Content-Type").value_or(""), "text/plain; charset=utf-8");
  EXPECT_EQ(text.body, "hi");
  auto prom = Response::Text(200, "m 1\n", "text/plain; version=0.0.4");
  EXPECT_EQ(prom.Get("content-type").value_or(""), "text/plain; version=0.0.4");

  auto empty = Response::Empty(204);
  EXPECT_EQ(empty.status, 204);
  EXPECT_TRUE(empty.body.empty());
}

TEST(Response, HeaderNameEquals) {
  EXPECT_TRUE(HeaderNameEquals("Content-Length", "content-length"));
  EXPECT_TRUE(HeaderNameEquals("", ""));
  EXPECT_FALSE(HeaderNameEquals("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(HeaderNameEquals("X-A", "X-B"));
}

}  // namespace
}  // namespace basalt::http
