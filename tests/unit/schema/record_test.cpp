// Record validation, table-driven: body in, column values or field errors out; rows back to JSON.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "schema/record.hpp"

namespace basalt::schema {
namespace {

namespace json = boost::json;

const CollectionSpec& Things() {
  static const CollectionSpec spec = *ParseCollectionSpec(json::parse(R"({"name": "things", "fields": [
    {"name": "title", "type": "text", "required": true, "min_length": 2, "max_length": 5},
    {"name": "code", "type": "text", "pattern": "[A-Z]{3}"},
    {"name": "n", "type": "integer", "min": 0, "max": 10, "default": 1},
    {"name": "x", "type": "number", "min": -1.5},
    {"name": "ok", "type": "bool"},
    {"name": "at", "type": "datetime"},
    {"name": "meta", "type": "json"},
    {"name": "mail", "type": "email"},
    {"name": "site", "type": "url"},
    {"name": "kind", "type": "select", "values": ["a", "b"]},
    {"name": "tags", "type": "select", "values": ["a", "b", "c"], "multi": true, "max_length": 2},
    {"name": "owner", "type": "relation", "collection": "users"}]})"));
  return spec;
}

struct Case {
  const char* name;
  const char* body;
  const char* field;  ///< Expected error field, or nullptr for success.
  const char* code;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class RecordValidation : public ::testing::TestWithParam<Case> {};

TEST_P(RecordValidation, Create) {
  const Case& c = GetParam();
  auto r = ValidateRecord(Things(), json::parse(c.body), WriteMode::kCreate);
  if (!c.field) {
    ASSERT_TRUE(r) << c.body << ": " << (r ? "" : r.error().fields.empty() ? r.error().message : r.error().fields[0].code);
    return;
  }
  ASSERT_FALSE(r) << c.body;
  EXPECT_EQ(r.error().code, core::ErrorCode::kValidation);
  std::string seen;
  bool found = false;
  for (const auto& f : r.error().fields) {
    seen += f.field + ":" + f.code + " ";
    found = found || (f.field == c.field && f.code == c.code);
  }
  EXPECT_TRUE(found) << "want " << c.field << ":" << c.code << " got " << seen;
}

const Case kCases[] = {
    {"Minimal", R"({"title": "abc"})", nullptr, nullptr},
    {"Everything", R"({"title": "abc", "code": "XYZ", "n": 10, "x": -1.5, "ok": false, "at": "2026-01-02T03:04:05+01:00",
       "meta": {"a": [1, 2]}, "mail": "a@b.co", "site": "https://example.com/x?y", "kind": "a", "tags": ["a", "c"],
       "owner": "0192aaaa-bbbb"})", nullptr, nullptr},
    {"NotObject", R"([1])", "", "type"},
    {"Unknown", R"({"title": "abc", "nope": 1})", "nope", "unknown_field"},
    {"ReadOnlyId", R"({"title": "abc", "id": "x"})", "id", "read_only"},
    {"ReadOnlyVersion", R"({"title": "abc", "version": 3})", "version", "read_only"},
    {"ReadOnlyCreated", R"({"title": "abc", "created_at": "x"})", "created_at", "read_only"},
    {"Required", R"({})", "title", "required"},
    {"RequiredNull", R"({"title": null})", "title", "required"},
    {"RequiredEmpty", R"({"title": ""})", "title", "required"},
    {"TextType", R"({"title": 5})", "title", "type"},
    {"TooShort", R"({"title": "a"})", "title", "min_length"},
    {"TooLong", R"({"title": "abcdef"})", "title", "max_length"},
    {"LengthCountsCodePoints", R"({"title": "ééééé"})", nullptr, nullptr},
    {"Pattern", R"({"title": "abc", "code": "XYZW"})", "code", "pattern"},
    {"IntegerType", R"({"title": "abc", "n": 1.5})", "n", "type"},
    {"IntegerString", R"({"title": "abc", "n": "1"})", "n", "type"},
    {"IntegerHuge", R"({"title": "abc", "n": 18446744073709551615})", "n", "type"},
    {"Min", R"({"title": "abc", "n": -1})", "n", "min"},
    {"Max", R"({"title": "abc", "n": 11})", "n", "max"},
    {"NumberMin", R"({"title": "abc", "x": -2})", "x", "min"},
    {"NumberType", R"({"title": "abc", "x": "1"})", "x", "type"},
    {"BoolType", R"({"title": "abc", "ok": 1})", "ok", "type"},
    {"DatetimeType", R"({"title": "abc", "at": 5})", "at", "type"},
    {"DatetimeFormat", R"({"title": "abc", "at": "yesterday"})", "at", "datetime"},
    {"Email", R"({"title": "abc", "mail": "not-an-email"})", "mail", "email"},
    {"EmailSpaces", R"({"title": "abc", "mail": "a b@c.de"})", "mail", "email"},
    {"Url", R"({"title": "abc", "site": "javascript:alert-1"})", "site", "url"},
    {"UrlNoHost", R"({"title": "abc", "site": "https:///x"})", "site", "url"},
    {"Select", R"({"title": "abc", "kind": "z"})", "kind", "select"},
    {"SelectType", R"({"title": "abc", "kind": ["a"]})", "kind", "type"},
    {"MultiType", R"({"title": "abc", "tags": "a"})", "tags", "type"},
    {"MultiValue", R"({"title": "abc", "tags": ["a", "z"]})", "tags", "select"},
    {"MultiDuplicate", R"({"title": "abc", "tags": ["a", "a"]})", "tags", "select"},
    {"MultiTooMany", R"({"title": "abc", "tags": ["a", "b", "c"]})", "tags", "max_length"},
    {"Relation", R"({"title": "abc", "owner": "x' OR 1=1 --"})", "owner", "relation"},
    {"RelationType", R"({"title": "abc", "owner": 5})", "owner", "type"},
    {"NulInText", "{\"title\": \"a\\u0000b\"}", "title", "type"},
};

INSTANTIATE_TEST_SUITE_P(All, RecordValidation, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Record, ColumnsAreTyped) {
  auto r = ValidateRecord(Things(), json::parse(R"({"title": "abc", "ok": true, "x": 2, "at": "2026-01-02T03:04:05Z",
      "meta": {"k": 1}, "tags": ["b"]})"), WriteMode::kCreate);
  ASSERT_TRUE(r);
  auto get = [&](const char* name) {
    for (const auto& [n, v] : *r) {
      if (n == name) return v;
    }
    return store::Value(store::Null{});
  };
  EXPECT_EQ(get("title"), store::Value(std::string("abc")));
  EXPECT_EQ(get("n"), store::Value(std::int64_t{1}));  // default
  EXPECT_EQ(get("x"), store::Value(2.0));
  EXPECT_EQ(get("ok"), store::Value(true));
  EXPECT_EQ(get("at"), store::Value(std::string("2026-01-02T03:04:05.000Z")));
  EXPECT_EQ(get("meta"), store::Value(std::string(R"({"k":1})")));
  EXPECT_EQ(get("tags"), store::Value(std::string(R"(["b"])")));
  EXPECT_EQ(get("owner"), store::Value(store::Null{}));
}

TEST(Record, MergePatchKeepsRemovesAndMergesJson) {
  json::object current = json::parse(R"({"id": "r1", "version": 2, "title": "abc", "n": 5,
      "meta": {"a": 1, "b": {"c": 2}}, "kind": "a"})").as_object();
  auto r = ValidateRecord(Things(), json::parse(R"({"n": null, "meta": {"b": {"c": null, "d": 3}}, "kind": null})"),
                          WriteMode::kMerge, &current);
  ASSERT_TRUE(r) << r.error().message;
  std::map<std::string, store::Value> m(r->begin(), r->end());
  EXPECT_EQ(m["title"], store::Value(std::string("abc")));
  EXPECT_EQ(m["n"], store::Value(std::int64_t{1}));  // null removes: back to the default
  EXPECT_EQ(m["meta"], store::Value(std::string(R"({"a":1,"b":{"d":3}})")));
  EXPECT_EQ(m["kind"], store::Value(store::Null{}));
  // Merge cannot clear a required field.
  auto bad = ValidateRecord(Things(), json::parse(R"({"title": null})"), WriteMode::kMerge, &current);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().fields.at(0).code, "required");
}

TEST(Record, RowToJsonTypes) {
  const std::vector<store::Value> row{std::string("id1"), std::string("c"), std::string("u"), std::int64_t{3},
                                      std::string("t"), store::Null{}, std::int64_t{4}, 2.5, std::int64_t{1},
                                      std::string("2026-01-02T03:04:05.000Z"), std::string(R"({"k":[1]})"),
                                      store::Null{}, store::Null{}, std::string("b"), std::string(R"(["a","c"])"),
                                      store::Null{}};
  const json::object o = RowToJson(Things(), row);
  EXPECT_EQ(json::serialize(o),
            R"({"id":"id1","created_at":"c","updated_at":"u","version":3,"title":"t","code":null,"n":4,"x":2.5E0,)"
            R"("ok":true,"at":"2026-01-02T03:04:05.000Z","meta":{"k":[1]},"mail":null,"site":null,"kind":"b",)"
            R"("tags":["a","c"],"owner":null})");
}

}  // namespace
}  // namespace basalt::schema
