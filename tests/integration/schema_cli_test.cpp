// `basalt schema export` / `basalt schema import` through the real binary: export -> import
// --dry-run -> import -> export between two data directories, with exit codes.

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "harness.hpp"

BASALT_USE_BINARY_FROM_DEFINITION();

namespace {

using basalt::testing::ReadFile;
using basalt::testing::RunBasalt;
using basalt::testing::TempDir;

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

constexpr const char* kSchema = R"({"basalt_schema": 1, "collections": [
  {"name": "posts", "fields": [{"name": "title", "type": "text", "required": true},
    {"name": "author", "type": "relation", "collection": "users"}], "rules": {"list": "author.name = 'x'"}},
  {"name": "users", "fields": [{"name": "name", "type": "text", "unique": true}]}]})";

TEST(SchemaCli, ExportDryRunImportExport) {
  TempDir tmp;
  const std::string source = tmp.path() + "/source", target = tmp.path() + "/target";
  const std::string input = tmp.path() + "/input.json", exported = tmp.path() + "/exported.json",
                    again = tmp.path() + "/again.json";
  Write(input, kSchema);

  auto seeded = RunBasalt({"schema", "import", input, "--data-dir", source});
  ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  auto exp = RunBasalt({"schema", "export", "--data-dir", source, "--output", exported});
  ASSERT_EQ(exp.exit_code, 0) << exp.output;
  const std::string text = ReadFile(exported);
  EXPECT_LT(text.find("\"users\""), text.find("\"posts\"")) << "relation target first:\n" << text;

  auto dry = RunBasalt({"schema", "import", exported, "--dry-run", "--data-dir", target});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("  create     users"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("CREATE TABLE \"c_posts\""), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("dry run: nothing was changed"), std::string::npos) << dry.output;
  auto empty = RunBasalt({"schema", "export", "--data-dir", target});
  ASSERT_EQ(empty.exit_code, 0) << empty.output;
  EXPECT_NE(empty.output.find("\"collections\": []"), std::string::npos) << empty.output;

  auto imported = RunBasalt({"schema", "import", exported, "--data-dir", target});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto exp2 = RunBasalt({"schema", "export", "--data-dir", target, "--output", again});
  ASSERT_EQ(exp2.exit_code, 0) << exp2.output;
  EXPECT_EQ(ReadFile(again), text);

  auto noop = RunBasalt({"schema", "import", exported, "--data-dir", target});
  ASSERT_EQ(noop.exit_code, 0) << noop.output;
  EXPECT_NE(noop.output.find("nothing to do"), std::string::npos) << noop.output;
}

TEST(SchemaCli, ExitCodes) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data", input = tmp.path() + "/input.json",
                    bad = tmp.path() + "/bad.json", unsafe = tmp.path() + "/unsafe.json";
  Write(input, kSchema);
  ASSERT_EQ(RunBasalt({"schema", "import", input, "--data-dir", data}).exit_code, 0);

  Write(bad, R"({"basalt_schema": 9, "collections": [{"name": "x", "fields": [{"name": "a", "type": "nope"}]}]})");
  auto invalid = RunBasalt({"schema", "import", bad, "--data-dir", data});
  EXPECT_EQ(invalid.exit_code, 2) << invalid.output;
  EXPECT_NE(invalid.output.find("basalt_schema"), std::string::npos) << invalid.output;
  EXPECT_NE(invalid.output.find("collections[0].fields[0].type"), std::string::npos) << invalid.output;
  EXPECT_EQ(RunBasalt({"schema", "import", tmp.path() + "/missing.json", "--data-dir", data}).exit_code, 2);
  EXPECT_EQ(RunBasalt({"schema", "import", "--data-dir", data}).exit_code, 2);  // FILE is required

  Write(unsafe, R"({"basalt_schema": 1, "collections": [{"name": "users", "fields": [{"name": "name", "type": "integer"}]}]})");
  auto refused = RunBasalt({"schema", "import", unsafe, "--dry-run", "--data-dir", data});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("REFUSED"), std::string::npos) << refused.output;
  EXPECT_EQ(RunBasalt({"schema", "import", unsafe, "--data-dir", data}).exit_code, 1);
}

}  // namespace
