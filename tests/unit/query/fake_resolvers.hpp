#pragma once
// Fake resolvers for query/ tests and the query fuzzer: a small "posts" schema aliased "t".

#include <string>
#include <vector>

#include "query/resolver.hpp"

namespace basalt::query::testing {

/// Fields: title text, views integer, score number, published bool, status text, created datetime,
/// meta json, tags multi-valued text, author relation; author.name (correlated subquery) and
/// author.email (through a JOIN). Anything else: "unknown field '<path>'".
class FakeFieldResolver final : public FieldResolver {
 public:
  core::Result<ResolvedField> Resolve(const std::vector<std::string>& path) const override {
    std::string p;
    for (const auto& s : path) p += (p.empty() ? "" : ".") + s;
    auto col = [](std::string_view name) { return "\"t\".\"" + std::string(name) + "\""; };
    if (p == "title" || p == "status") return ResolvedField{col(p), FieldType::kText};
    if (p == "views") return ResolvedField{col(p), FieldType::kInteger};
    if (p == "score") return ResolvedField{col(p), FieldType::kNumber};
    if (p == "published") return ResolvedField{col(p), FieldType::kBool};
    if (p == "created") return ResolvedField{col(p), FieldType::kDatetime};
    if (p == "meta") return ResolvedField{col(p), FieldType::kJson};
    if (p == "author") return ResolvedField{col(p), FieldType::kRelation};
    if (p == "tags") {
      return ResolvedField{"SELECT \"tg\".\"tag\" FROM \"post_tags\" AS \"tg\" WHERE \"tg\".\"post\" = \"t\".\"id\"",
                           FieldType::kText, true};
    }
    if (p == "author.name") {
      return ResolvedField{
          "(SELECT \"u\".\"name\" FROM \"users\" AS \"u\" WHERE \"u\".\"id\" = \"t\".\"author\")",
          FieldType::kText};
    }
    if (p == "author.email") {
      return ResolvedField{"\"a\".\"email\"", FieldType::kText, false,
                           {"LEFT JOIN \"users\" AS \"a\" ON \"a\".\"id\" = \"t\".\"author\""}};
    }
    return core::Fail(core::ErrorCode::kBadRequest, "unknown field '" + p + "'");
  }
};

/// Variables: @request.auth.id = "u1", @request.auth.role = "editor", @request.auth.verified =
/// true, @request.body.title = "50% off_now", @request.body.views = 5, @now =
/// "2026-01-02T03:04:05Z"; anything else is null.
class FakeVariableResolver final : public VariableResolver {
 public:
  core::Result<Value> Variable(const std::vector<std::string>& path) const override {
    std::string p;
    for (const auto& s : path) p += (p.empty() ? "" : ".") + s;
    if (p == "request.auth.id") return Value{std::string("u1")};
    if (p == "request.auth.role") return Value{std::string("editor")};
    if (p == "request.auth.verified") return Value{true};
    if (p == "request.body.title") return Value{std::string("50% off_now")};
    if (p == "request.body.views") return Value{std::int64_t{5}};
    if (p == "now") return Value{std::string("2026-01-02T03:04:05Z")};
    return Value{};
  }
};

}  // namespace basalt::query::testing
