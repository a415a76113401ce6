// Collection specs: the canonical example parses; every validation problem is reported with its
// field path, all at once.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "schema/collection.hpp"

namespace basalt::schema {
namespace {

namespace json = boost::json;

constexpr const char* kCanonical = R"({
  "name": "posts",
  "fields": [
    {"name": "title",  "type": "text", "required": true, "max_length": 200},
    {"name": "body",   "type": "text"},
    {"name": "views",  "type": "integer", "min": 0, "default": 0},
    {"name": "status", "type": "select", "values": ["draft", "live"]},
    {"name": "author", "type": "relation", "collection": "users", "on_delete": "cascade"}
  ],
  "indexes": [{"fields": ["views"]}, {"fields": ["author", "created_at"]}, {"fields": ["title"], "unique": true}],
  "rules": {"list": "", "view": "", "create": "@request.auth.id != null",
            "update": "author = @request.auth.id", "delete": null}
})";

TEST(CollectionSpec, ParsesTheCanonicalExample) {
  auto spec = ParseCollectionSpec(json::parse(kCanonical));
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->name, "posts");
  ASSERT_EQ(spec->fields.size(), 5u);
  EXPECT_EQ(spec->fields[0].kind, FieldKind::kText);
  EXPECT_TRUE(spec->fields[0].required);
  EXPECT_EQ(spec->fields[0].max_length, 200);
  EXPECT_EQ(spec->fields[2].min, 0.0);
  EXPECT_EQ(spec->fields[2].default_value, json::value(0));
  EXPECT_EQ(spec->fields[3].values, (std::vector<std::string>{"draft", "live"}));
  EXPECT_EQ(spec->fields[4].collection, "users");
  EXPECT_EQ(spec->fields[4].on_delete, OnDelete::kCascade);
  ASSERT_EQ(spec->indexes.size(), 3u);
  EXPECT_TRUE(spec->indexes[2].unique);
  EXPECT_FALSE(spec->indexes[0].name.empty());
  EXPECT_EQ(spec->rules.list, "");
  EXPECT_EQ(spec->rules.create, "@request.auth.id != null");
  EXPECT_FALSE(spec->rules.del.has_value());
}

TEST(CollectionSpec, RoundTripsThroughJson) {
  auto spec = ParseCollectionSpec(json::parse(kCanonical));
  ASSERT_TRUE(spec);
  auto again = ParseCollectionSpec(ToJson(*spec));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(json::serialize(ToJson(*again)), json::serialize(ToJson(*spec)));
}

struct BadSpec {
  const char* name;
  const char* json;
  const char* field;
  const char* code;
};

void PrintTo(const BadSpec& c, std::ostream* os) { *os << c.name; }

class CollectionSpecErrors : public ::testing::TestWithParam<BadSpec> {};

TEST_P(CollectionSpecErrors, ReportsTheFieldAndCode) {
  const BadSpec& c = GetParam();
  auto spec = ParseCollectionSpec(json::parse(c.json));
  ASSERT_FALSE(spec) << c.json;
  EXPECT_EQ(spec.error().code, core::ErrorCode::kValidation);
  bool found = false;
  std::string seen;
  for (const auto& f : spec.error().fields) {
    seen += f.field + ":" + f.code + " ";
    if (f.field == c.field && f.code == c.code) found = true;
  }
  EXPECT_TRUE(found) << "expected " << c.field << ":" << c.code << ", got " << seen;
}

const BadSpec kBadSpecs[] = {
    {"NotObject", R"([1])", "", "type"},
    {"MissingName", R"({"fields": []})", "name", "required"},
    {"NameType", R"({"name": 5})", "name", "type"},
    {"NameUpper", R"({"name": "Posts"})", "name", "format"},
    {"NameQuote", R"({"name": "po\"sts"})", "name", "format"},
    {"NameTooLong", R"({"name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})", "name", "format"},
    {"NameReserved", R"({"name": "basalt_x"})", "name", "reserved"},
    {"UnknownTop", R"({"name": "p", "extra": 1})", "extra", "unknown_field"},
    {"FieldsType", R"({"name": "p", "fields": {}})", "fields", "type"},
    {"FieldNotObject", R"({"name": "p", "fields": [1]})", "fields[0]", "type"},
    {"FieldNameMissing", R"({"name": "p", "fields": [{"type": "text"}]})", "fields[0].name", "required"},
    {"FieldNameFormat", R"({"name": "p", "fields": [{"name": "a b", "type": "text"}]})", "fields[0].name", "format"},
    {"FieldNameSql", R"({"name": "p", "fields": [{"name": "x\"; DROP TABLE y; --", "type": "text"}]})", "fields[0].name", "format"},
    {"FieldReserved", R"({"name": "p", "fields": [{"name": "id", "type": "text"}]})", "fields[0].name", "reserved"},
    {"FieldReservedVersion", R"({"name": "p", "fields": [{"name": "version", "type": "integer"}]})", "fields[0].name", "reserved"},
    {"FieldDuplicate", R"({"name": "p", "fields": [{"name": "a", "type": "text"}, {"name": "a", "type": "bool"}]})", "fields[1].name", "duplicate"},
    {"TypeMissing", R"({"name": "p", "fields": [{"name": "a"}]})", "fields[0].type", "required"},
    {"TypeUnknown", R"({"name": "p", "fields": [{"name": "a", "type": "blob"}]})", "fields[0].type", "enum"},
    {"OptionWrongKind", R"({"name": "p", "fields": [{"name": "a", "type": "bool", "max_length": 3}]})", "fields[0].max_length", "unknown_field"},
    {"RequiredType", R"({"name": "p", "fields": [{"name": "a", "type": "text", "required": 1}]})", "fields[0].required", "type"},
    {"MinType", R"({"name": "p", "fields": [{"name": "a", "type": "integer", "min": "0"}]})", "fields[0].min", "type"},
    {"MinOverMax", R"({"name": "p", "fields": [{"name": "a", "type": "number", "min": 5, "max": 1}]})", "fields[0].min", "range"},
    {"LengthNegative", R"({"name": "p", "fields": [{"name": "a", "type": "text", "min_length": -1}]})", "fields[0].min_length", "type"},
    {"LengthRange", R"({"name": "p", "fields": [{"name": "a", "type": "text", "min_length": 5, "max_length": 1}]})", "fields[0].min_length", "range"},
    {"PatternBad", R"({"name": "p", "fields": [{"name": "a", "type": "text", "pattern": "(("}]})", "fields[0].pattern", "pattern"},
    {"PatternBackref", R"({"name": "p", "fields": [{"name": "a", "type": "text", "pattern": "(a)\\1"}]})", "fields[0].pattern", "pattern"},
    {"SelectNoValues", R"({"name": "p", "fields": [{"name": "a", "type": "select"}]})", "fields[0].values", "required"},
    {"SelectEmptyValues", R"({"name": "p", "fields": [{"name": "a", "type": "select", "values": []}]})", "fields[0].values", "type"},
    {"SelectDupValues", R"({"name": "p", "fields": [{"name": "a", "type": "select", "values": ["x", "x"]}]})", "fields[0].values", "duplicate"},
    {"RelationNoTarget", R"({"name": "p", "fields": [{"name": "a", "type": "relation"}]})", "fields[0].collection", "required"},
    {"RelationOnDelete", R"({"name": "p", "fields": [{"name": "a", "type": "relation", "collection": "u", "on_delete": "boom"}]})", "fields[0].on_delete", "enum"},
    {"RelationRequiredSetNull", R"({"name": "p", "fields": [{"name": "a", "type": "relation", "collection": "u", "required": true, "on_delete": "set_null"}]})", "fields[0].on_delete", "conflict"},
    {"DefaultWrongType", R"({"name": "p", "fields": [{"name": "a", "type": "integer", "default": "x"}]})", "fields[0].default", "type"},
    {"DefaultBelowMin", R"({"name": "p", "fields": [{"name": "a", "type": "integer", "min": 1, "default": 0}]})", "fields[0].default", "min"},
    {"DefaultNotInSelect", R"({"name": "p", "fields": [{"name": "a", "type": "select", "values": ["x"], "default": "y"}]})", "fields[0].default", "select"},
    {"UniqueJson", R"({"name": "p", "fields": [{"name": "a", "type": "json", "unique": true}]})", "fields[0].unique", "unsupported"},
    {"IndexesType", R"({"name": "p", "indexes": 1})", "indexes", "type"},
    {"IndexNoFields", R"({"name": "p", "indexes": [{}]})", "indexes[0].fields", "required"},
    {"IndexUnknownField", R"({"name": "p", "indexes": [{"fields": ["nope"]}]})", "indexes[0].fields[0]", "unknown_field"},
    {"IndexJson", R"({"name": "p", "fields": [{"name": "j", "type": "json"}], "indexes": [{"fields": ["j"]}]})", "indexes[0].fields[0]", "unsupported"},
    {"IndexDupField", R"({"name": "p", "indexes": [{"fields": ["id", "id"]}]})", "indexes[0].fields[1]", "duplicate"},
    {"IndexUnknownKey", R"({"name": "p", "indexes": [{"fields": ["id"], "where": "x"}]})", "indexes[0].where", "unknown_field"},
    {"RulesType", R"({"name": "p", "rules": []})", "rules", "type"},
    {"RuleUnknown", R"({"name": "p", "rules": {"read": ""}})", "rules.read", "unknown_field"},
    {"RuleType", R"({"name": "p", "rules": {"list": 1}})", "rules.list", "type"},
};

INSTANTIATE_TEST_SUITE_P(All, CollectionSpecErrors, ::testing::ValuesIn(kBadSpecs),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CollectionSpec, ReportsEveryProblemAtOnce) {
  auto spec = ParseCollectionSpec(json::parse(
      R"({"name": "Bad", "fields": [{"name": "id", "type": "text"}, {"name": "x", "type": "nope"}], "rules": {"zap": ""}})"));
  ASSERT_FALSE(spec);
  EXPECT_GE(spec.error().fields.size(), 4u);
}

TEST(Datetime, Normalizes) {
  EXPECT_EQ(NormalizeDatetime("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05.000Z");
  EXPECT_EQ(NormalizeDatetime("2026-01-02T03:04:05.5+02:00"), "2026-01-02T01:04:05.500Z");
  EXPECT_EQ(NormalizeDatetime("2026-01-02t03:04:05.123456z"), "2026-01-02T03:04:05.123Z");
  EXPECT_EQ(NormalizeDatetime("2026-01-01T00:30:00-01:00"), "2026-01-01T01:30:00.000Z");
  // Beyond what a nanosecond system_clock holds (2262), and before 1970 with a fraction.
  EXPECT_EQ(NormalizeDatetime("9999-12-31T23:59:59.999Z"), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(NormalizeDatetime("2300-06-01T00:00:00Z"), "2300-06-01T00:00:00.000Z");
  EXPECT_EQ(NormalizeDatetime("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(NormalizeDatetime("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00.000Z");
  for (const char* bad : {"", "2026-01-02", "2026-13-02T03:04:05Z", "2026-02-30T03:04:05Z", "2026-01-02T03:04:05",
                          "2026-01-02 03:04:05Z", "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05Zjunk",
                          "2026-01-02T24:00:00Z"}) {
    EXPECT_FALSE(NormalizeDatetime(bad)) << bad;
  }
}

}  // namespace
}  // namespace basalt::schema
