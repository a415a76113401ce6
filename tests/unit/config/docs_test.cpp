#include "config/settings.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace basalt::config {
namespace {

/// One row of the settings table in docs/configuration.md.
struct DocRow {
  std::string type;
  std::string default_value;
  std::string env;
};

std::string Trim(std::string text) {
  const auto begin = text.find_first_not_of(' ');
  const auto end = text.find_last_not_of(' ');
  return begin == std::string::npos ? std::string() : text.substr(begin, end - begin + 1);
}

/// "`x`" -> "x"; anything else is returned as is (and will then fail to match).
std::string Unquote(const std::string& cell) {
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') return cell.substr(1, cell.size() - 2);
  return cell;
}

/// Reads the rows of the `| Key | Type | Default | Env | Description |` table, keyed by key.
std::map<std::string, DocRow> ReadDocTable(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.is_open()) << path;
  std::map<std::string, DocRow> rows;
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.starts_with("| Key | Type | Default | Env | Description |")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (!line.starts_with("|")) break;  // End of the table.
    if (line.starts_with("|--") || line.starts_with("| --") || line.starts_with("|:")) continue;
    std::vector<std::string> cells;
    std::stringstream stream(line.substr(1));
    std::string cell;
    while (std::getline(stream, cell, '|')) cells.push_back(Trim(cell));
    EXPECT_GE(cells.size(), 5u) << line;
    if (cells.size() < 5) continue;
    const std::string key = Unquote(cells[0]);
    EXPECT_FALSE(rows.contains(key)) << "listed twice: " << key;
    rows[key] = DocRow{cells[1], Unquote(cells[2]), Unquote(cells[3])};
  }
  return rows;
}

std::string EnvName(const std::string& key) {
  std::string out = "BASALT_";
  for (const char c : key) {
    if (c == '.') {
      out += "__";
    } else {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

TEST(ConfigurationDoc, ListsExactlyTheSettingsTable) {
  const auto documented = ReadDocTable(std::string(BASALT_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_FALSE(documented.empty()) << "no settings table found in docs/configuration.md";
  for (const auto& info : SettingsTable()) {
    SCOPED_TRACE(info.key);
    const auto it = documented.find(info.key);
    if (it == documented.end()) {
      ADD_FAILURE() << "missing from docs/configuration.md; add:\n| `" << info.key << "` | " << info.type
                    << " | `" << info.default_value << "` | `" << EnvName(info.key) << "` | "
                    << info.description << " |";
      continue;
    }
    EXPECT_EQ(it->second.default_value, info.default_value);
    EXPECT_EQ(it->second.type, info.type);
    EXPECT_EQ(it->second.env, EnvName(info.key));
  }
  for (const auto& [key, row] : documented) {
    const auto& table = SettingsTable();
    const bool known = std::any_of(table.begin(), table.end(),
                                   [&](const SettingInfo& info) { return info.key == key; });
    EXPECT_TRUE(known) << "documented but not a setting: " << key;
  }
}

}  // namespace
}  // namespace basalt::config
