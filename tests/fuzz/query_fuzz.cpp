// Fuzzes the filter language: arbitrary bytes through Parse and Compile (both dialects) with the
// fake resolvers of the unit tests. Invariants: never crash or trip a sanitizer; errors are
// kBadRequest with a position; compiled SQL holds exactly params.size() placeholders, numbered
// from first_param_index, and nothing but resolver text, keywords, operators and placeholders
// (so no byte of a literal can have been spliced into it).

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "fake_resolvers.hpp"
#include "query/compiler.hpp"
#include "query/parser.hpp"

namespace {

using namespace basalt;
using namespace basalt::query;

void Check(bool ok) {
  if (!ok) std::abort();
}

// Removes every occurrence of `part` from `s`.
void Erase(std::string& s, std::string_view part) {
  for (auto p = s.find(part); p != std::string::npos; p = s.find(part)) s.erase(p, part.size());
}

void CheckSql(const CompiledFilter& out, const SqlSyntax& syntax) {
  std::string rest = out.sql;
  // Resolver-provided text is trusted; strip it (longest first) along with the escape clause.
  for (const char* t : {"SELECT \"tg\".\"tag\" FROM \"post_tags\" AS \"tg\" WHERE \"tg\".\"post\" = \"t\".\"id\"",
                        "(SELECT \"u\".\"name\" FROM \"users\" AS \"u\" WHERE \"u\".\"id\" = \"t\".\"author\")",
                        "\"a\".\"email\"", "\"t\".\"title\"", "\"t\".\"status\"", "\"t\".\"views\"",
                        "\"t\".\"score\"", "\"t\".\"published\"", "\"t\".\"created\"", "\"t\".\"meta\"",
                        "\"t\".\"author\""}) {
    Erase(rest, t);
  }
  Erase(rest, syntax.like_escape);
  Erase(rest, "::double precision");
  static const std::set<std::string> kWords = {
      "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "TRUE",
      "=", "<>", ">", ">=", "<", "<="};
  std::size_t placeholders = 0;
  std::size_t expected_index = static_cast<std::size_t>(syntax.first_param_index);
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (word.starts_with(syntax.placeholder_prefix)) {
      std::string_view w = word;
      w.remove_prefix(syntax.placeholder_prefix.size());
      std::size_t digits = 0;
      while (digits < w.size() && w[digits] >= '0' && w[digits] <= '9') ++digits;
      Check(digits > 0);
      Check(std::stoul(std::string(w.substr(0, digits))) == expected_index++);
      w.remove_prefix(digits);
      Check(w.empty() || w == syntax.cast_integer || w == syntax.cast_text || w == syntax.cast_bool);
      ++placeholders;
    } else {
      Check(kWords.contains(word));
    }
    word.clear();
  };
  for (char c : rest) {
    if (c == ' ' || c == '(' || c == ')' || c == ',') {
      flush();
    } else {
      word += c;
    }
  }
  flush();
  Check(placeholders == out.params.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const testing::FakeFieldResolver kFields;
  static const testing::FakeVariableResolver kVariables;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto expr = Parse(text, Limits{.max_length = 1024});
  if (!expr) {
    Check(expr.error().code == core::ErrorCode::kBadRequest);
    Check(ErrorPosition(expr.error()).has_value());
    return 0;
  }
  SqlSyntax pg = SqlSyntax::Postgres();
  pg.first_param_index = 3;
  for (const SqlSyntax& syntax : {SqlSyntax::Sqlite(), pg}) {
    auto out = Compile(*expr, kFields, kVariables, syntax);
    if (!out) {
      Check(out.error().code == core::ErrorCode::kBadRequest);
      Check(ErrorPosition(out.error()).has_value());
      continue;
    }
    CheckSql(*out, syntax);
  }
  return 0;
}
