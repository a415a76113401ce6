// Golden files: expression in, SQL and parameters out, for SQLite and PostgreSQL.
//
// Format of golden/*.txt: cases separated by blank lines; `#` lines are comments kept with the
// next case. Each case has
//   expr: <text to end of line>            or   expr_escaped: <text with \n \t \r \0 \xNN \\>
//   limits: max_length=N max_depth=N max_nodes=N max_list_items=N   (optional, any subset)
// followed by the expected output, either
//   sqlite: <sql>
//   sqlite_params: [<param>, ...]         (JSON-like: 10, 1.5, "s", true, null)
//   postgres: <sql>
//   postgres_params: [...]
//   joins: ["<join>", ...]                (only when non-empty; same for both dialects)
// or
//   error: <message>                      (same for both dialects)
// Run with UPDATE_GOLDEN=1 to rewrite the expected lines from the current output; review the diff.

#include <gtest/gtest.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fake_resolvers.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"

namespace basalt::query {
namespace {

struct Case {
  std::vector<std::string> comments;
  std::string expr_line;    // as written, including the key
  std::string limits_line;  // as written, or empty
  std::string expr;         // decoded
  Limits limits;
  std::vector<std::string> expected;  // output lines as written
  int line = 0;
};

std::string Unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    char e = s[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case 'x': {
        unsigned v = 0;
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
        out += static_cast<char>(v);
        i += 2;
        break;
      }
      default: out += '\\'; out += e;
    }
  }
  return out;
}

Limits ParseLimits(std::string_view s) {
  Limits l;
  std::istringstream in{std::string(s)};
  std::string kv;
  while (in >> kv) {
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq);
    std::size_t v = std::stoul(kv.substr(eq + 1));
    if (k == "max_length") l.max_length = v;
    else if (k == "max_depth") l.max_depth = v;
    else if (k == "max_nodes") l.max_nodes = v;
    else if (k == "max_list_items") l.max_list_items = v;
    else ADD_FAILURE() << "unknown limit " << k;
  }
  return l;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else out += c;
  }
  return out + "\"";
}

std::string FormatParam(const Param& p) {
  if (std::holds_alternative<std::monostate>(p)) return "null";
  if (const auto* i = std::get_if<std::int64_t>(&p)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&p)) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
    std::string s(buf, end);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  }
  if (const auto* b = std::get_if<bool>(&p)) return *b ? "true" : "false";
  return Quote(std::get<std::string>(p));
}

template <class T, class F>
std::string FormatList(const std::vector<T>& v, F f) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + f(v[i]);
  return out + "]";
}

// What the current code produces for a case, as golden lines.
std::vector<std::string> Actual(const Case& c) {
  testing::FakeFieldResolver fields;
  testing::FakeVariableResolver vars;
  auto expr = Parse(c.expr, c.limits);
  if (!expr) return {"error: " + expr.error().message};
  std::vector<std::string> lines;
  std::string joins;
  for (auto [name, syntax] : {std::pair{"sqlite", SqlSyntax::Sqlite()},
                              std::pair{"postgres", SqlSyntax::Postgres()}}) {
    auto out = Compile(*expr, fields, vars, syntax);
    if (!out) return {"error: " + out.error().message};
    lines.push_back(std::string(name) + ": " + out->sql);
    lines.push_back(std::string(name) + "_params: " + FormatList(out->params, FormatParam));
    joins = FormatList(out->joins, [](const std::string& s) { return Quote(s); });
  }
  if (joins != "[]") lines.push_back("joins: " + joins);
  return lines;
}

std::vector<Case> Load(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<Case> cases;
  Case cur;
  std::string line;
  int n = 0;
  bool open = false;
  auto flush = [&] {
    if (open) cases.push_back(std::move(cur));
    cur = Case{};
    open = false;
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.starts_with("#")) {
      if (open) flush();
      cur.comments.push_back(line);
      continue;
    }
    if (line.starts_with("expr: ")) {
      if (open) flush();
      open = true;
      cur.line = n;
      cur.expr_line = line;
      cur.expr = line.substr(6);
    } else if (line.starts_with("expr_escaped: ")) {
      if (open) flush();
      open = true;
      cur.line = n;
      cur.expr_line = line;
      cur.expr = Unescape(line.substr(14));
    } else if (line.starts_with("limits: ")) {
      cur.limits_line = line;
      cur.limits = ParseLimits(line.substr(8));
    } else {
      cur.expected.push_back(line);
    }
  }
  flush();
  return cases;
}

std::vector<std::filesystem::path> GoldenFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(BASALT_QUERY_GOLDEN_DIR)) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(QueryGolden, AllCasesMatch) {
  const bool update = std::getenv("UPDATE_GOLDEN") != nullptr;
  std::size_t total = 0;
  std::size_t errors = 0;
  for (const auto& file : GoldenFiles()) {
    auto cases = Load(file);
    std::string rewritten;
    for (const auto& c : cases) {
      ++total;
      auto actual = Actual(c);
      if (!actual.empty() && actual[0].starts_with("error: ")) ++errors;
      if (!update) {
        EXPECT_EQ(c.expected, actual) << file.filename().string() << ":" << c.line << ": "
                                      << c.expr_line;
      }
      if (!rewritten.empty()) rewritten += '\n';
      for (const auto& l : c.comments) rewritten += l + '\n';
      rewritten += c.expr_line + '\n';
      if (!c.limits_line.empty()) rewritten += c.limits_line + '\n';
      for (const auto& l : actual) rewritten += l + '\n';
    }
    if (update) std::ofstream(file, std::ios::trunc) << rewritten;
  }
  EXPECT_GE(total, 40u);
  EXPECT_GE(errors, 15u);
}

}  // namespace
}  // namespace basalt::query
