#include "query/parser.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "query/diagnostics.hpp"

namespace basalt::query {

std::string_view OpText(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return "=";
    case CompareOp::kNe: return "!=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kContains: return "~";
    case CompareOp::kNotContains: return "!~";
    case CompareOp::kIn: return "IN";
    case CompareOp::kNotIn: return "NOT IN";
  }
  return "?";
}

std::optional<std::size_t> ErrorPosition(const core::Error& error) {
  std::string_view m = error.message;
  if (!m.starts_with("at ")) return std::nullopt;
  m.remove_prefix(3);
  std::size_t pos = 0;
  auto [end, ec] = std::from_chars(m.data(), m.data() + m.size(), pos);
  if (ec != std::errc() || end == m.data() || end == m.data() + m.size() || *end != ':') {
    return std::nullopt;
  }
  return pos;
}

namespace {

enum class Tok {
  kEnd, kError, kLParen, kRParen, kLBracket, kRBracket, kComma, kAnd, kOr, kBang,
  kEq, kNe, kGt, kGe, kLt, kLe, kTilde, kNotTilde, kIn, kNotKw,
  kString, kNumber, kTrue, kFalse, kNull, kField, kVariable,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::size_t begin = 0;  // byte offsets into the text
  std::size_t end = 0;
  Value value;                     // literals
  std::vector<std::string> path;   // fields and variables
  std::string error;               // kError: what went wrong, at `begin`
};

bool IsIdentStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Returns the byte offset of the first invalid UTF-8 sequence, or npos.
std::size_t FindInvalidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) { ++i; continue; }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1F; }
    else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0F; }
    else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07; }
    else return i;
    if (i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Splits the text into tokens. A lexical error becomes a final kError token so that the parser
// reports errors in text order (a syntax error before a bad string wins).
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      Token t = Next();
      Tok kind = t.kind;
      out.push_back(std::move(t));
      if (kind == Tok::kEnd || kind == Tok::kError) break;
    }
    return out;
  }

 private:
  Token Make(Tok kind, std::size_t begin, std::size_t end) {
    Token t;
    t.kind = kind;
    t.begin = begin;
    t.end = end;
    i_ = end;
    return t;
  }
  Token Error(std::size_t at, std::string what) {
    Token t;
    t.kind = Tok::kError;
    t.begin = at;
    t.end = at;
    t.error = std::move(what);
    return t;
  }
  char At(std::size_t k) const { return k < text_.size() ? text_[k] : '\0'; }

  Token Next() {
    while (i_ < text_.size() &&
           (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) {
      ++i_;
    }
    std::size_t b = i_;
    if (b >= text_.size()) return Make(Tok::kEnd, b, b);
    char c = text_[b];
    char n = At(b + 1);
    switch (c) {
      case '(': return Make(Tok::kLParen, b, b + 1);
      case ')': return Make(Tok::kRParen, b, b + 1);
      case '[': return Make(Tok::kLBracket, b, b + 1);
      case ']': return Make(Tok::kRBracket, b, b + 1);
      case ',': return Make(Tok::kComma, b, b + 1);
      case '=': return Make(Tok::kEq, b, b + 1);
      case '~': return Make(Tok::kTilde, b, b + 1);
      case '>': return n == '=' ? Make(Tok::kGe, b, b + 2) : Make(Tok::kGt, b, b + 1);
      case '<': return n == '=' ? Make(Tok::kLe, b, b + 2) : Make(Tok::kLt, b, b + 1);
      case '!':
        if (n == '=') return Make(Tok::kNe, b, b + 2);
        if (n == '~') return Make(Tok::kNotTilde, b, b + 2);
        return Make(Tok::kBang, b, b + 1);
      case '&':
        if (n == '&') return Make(Tok::kAnd, b, b + 2);
        return Error(b, "expected '&&'");
      case '|':
        if (n == '|') return Make(Tok::kOr, b, b + 2);
        return Error(b, "expected '||'");
      case '"':
      case '\'':
        return String(b);
      case '@':
        return VariableToken(b);
      default:
        break;
    }
    if (IsDigit(c) || (c == '-' && IsDigit(n))) return Number(b);
    if (c == '-') return Error(b, "expected a digit after '-'");
    if (IsIdentStart(c)) return Path(b);
    if (c == '\0') return Error(b, "NUL byte is not allowed");
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return Error(b, std::string("unexpected character '") + c + "'");
    return Error(b, "unexpected character");
  }

  Token String(std::size_t b) {
    char quote = text_[b];
    std::string value;
    std::size_t k = b + 1;
    while (true) {
      if (k >= text_.size()) return Error(b, "unterminated string");
      char c = text_[k];
      if (c == quote) break;
      if (static_cast<unsigned char>(c) < 0x20) {
        if (c == '\0') return Error(k, "NUL byte is not allowed");
        return Error(k, "control character in string; use an escape such as \\n");
      }
      if (c != '\\') {
        value += c;
        ++k;
        continue;
      }
      char e = At(k + 1);
      switch (e) {
        case '"': value += '"'; k += 2; continue;
        case '\'': value += '\''; k += 2; continue;
        case '\\': value += '\\'; k += 2; continue;
        case 'n': value += '\n'; k += 2; continue;
        case 't': value += '\t'; k += 2; continue;
        case 'u': break;
        default:
          if (k + 1 >= text_.size()) return Error(b, "unterminated string");
          return Error(k, "invalid escape; expected \\\" \\' \\\\ \\n \\t or \\uXXXX");
      }
      auto hex4 = [&](std::size_t at, std::uint32_t& out) {
        if (at + 4 > text_.size()) return false;
        auto [p, ec] = std::from_chars(text_.data() + at, text_.data() + at + 4, out, 16);
        return ec == std::errc() && p == text_.data() + at + 4;
      };
      std::uint32_t cp = 0;
      if (!hex4(k + 2, cp)) return Error(k, "expected 4 hex digits after \\u");
      std::size_t next = k + 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        std::uint32_t lo = 0;
        if (At(next) != '\\' || At(next + 1) != 'u' || !hex4(next + 2, lo) || lo < 0xDC00 ||
            lo > 0xDFFF) {
          return Error(k, "unpaired surrogate in \\u escape");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        next += 6;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return Error(k, "unpaired surrogate in \\u escape");
      }
      if (cp == 0) return Error(k, "NUL character is not allowed");
      AppendUtf8(value, cp);
      k = next;
    }
    Token t = Make(Tok::kString, b, k + 1);
    t.value = std::move(value);
    return t;
  }

  Token Number(std::size_t b) {
    std::size_t k = b;
    if (text_[k] == '-') ++k;
    while (IsDigit(At(k))) ++k;
    bool decimal = false;
    if (At(k) == '.') {
      if (!IsDigit(At(k + 1))) return Error(k + 1, "expected a digit after '.'");
      decimal = true;
      ++k;
      while (IsDigit(At(k))) ++k;
    }
    if (IsIdentChar(At(k)) || At(k) == '.') return Error(k, "expected a number");
    const char* first = text_.data() + b;
    const char* last = text_.data() + k;
    Token t = Make(Tok::kNumber, b, k);
    if (!decimal) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(first, last, v);
      if (ec != std::errc() || p != last) return Error(b, "integer out of range");
      t.value = v;
    } else {
      double v = 0;
      auto [p, ec] = std::from_chars(first, last, v);
      if (ec != std::errc() || p != last || !std::isfinite(v)) {
        return Error(b, "number out of range");
      }
      t.value = v;
    }
    return t;
  }

  // Reads `ident(.ident)*` from k; returns the end offset, or an error token via `err`.
  bool Segments(std::size_t& k, std::vector<std::string>& path, Token& err) {
    while (true) {
      std::size_t s = k;
      if (!IsIdentStart(At(k))) {
        err = Error(k, "expected a name after '.'");
        return false;
      }
      while (IsIdentChar(At(k))) ++k;
      path.emplace_back(text_.substr(s, k - s));
      if (At(k) != '.') return true;
      ++k;
    }
  }

  Token Path(std::size_t b) {
    std::size_t k = b;
    std::vector<std::string> path;
    Token err;
    if (!Segments(k, path, err)) return err;
    if (path.size() == 1) {
      const std::string& w = path[0];
      if (w == "true" || w == "false") {
        Token t = Make(w == "true" ? Tok::kTrue : Tok::kFalse, b, k);
        t.value = (w == "true");
        return t;
      }
      if (w == "null") return Make(Tok::kNull, b, k);
      if (w == "IN") return Make(Tok::kIn, b, k);
      if (w == "NOT") return Make(Tok::kNotKw, b, k);
    }
    Token t = Make(Tok::kField, b, k);
    t.path = std::move(path);
    return t;
  }

  Token VariableToken(std::size_t b) {
    std::size_t k = b + 1;
    std::vector<std::string> path;
    Token err;
    if (!IsIdentStart(At(k))) return Error(b, "expected @request.auth.*, @request.body.* or @now");
    if (!Segments(k, path, err)) return err;
    bool ok = (path.size() == 1 && path[0] == "now") ||
              (path.size() >= 3 && path[0] == "request" &&
               (path[1] == "auth" || path[1] == "body"));
    if (!ok) {
      return Error(b, "unknown variable '@" + std::string(text_.substr(b + 1, k - b - 1)) +
                          "'; expected @request.auth.<field>, @request.body.<field> or @now");
    }
    Token t = Make(Tok::kVariable, b, k);
    t.path = std::move(path);
    return t;
  }

  std::string_view text_;
  std::size_t i_ = 0;
};

class Parser {
 public:
  Parser(std::string_view text, const Limits& limits, std::vector<Token> tokens)
      : text_(text), limits_(limits), tokens_(std::move(tokens)) {
    // Byte offset -> character offset, for messages and AST positions.
    chars_.resize(text.size() + 1);
    std::size_t n = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      chars_[i] = n;
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++n;
    }
    chars_[text.size()] = n;
  }

  core::Result<Expr> Run() {
    if (Peek().kind == Tok::kEnd) return Expr{};
    auto e = ParseOr(0);
    if (!e) return e;
    const Token& t = Peek();
    if (t.kind == Tok::kError) return Fail(t);
    if (t.kind != Tok::kEnd) {
      if (t.kind == Tok::kRParen) return Err(t.begin, "unexpected ')' without a matching '('");
      return Err(t.begin, "expected '&&', '||' or the end of the filter after " +
                              Quote(Prev()));
    }
    return e;
  }

 private:
  using Unexpected = std::unexpected<core::Error>;

  const Token& Peek() const { return tokens_[next_]; }
  const Token& Prev() const { return tokens_[next_ == 0 ? 0 : next_ - 1]; }
  const Token& Take() {
    const Token& t = tokens_[next_];
    if (t.kind != Tok::kEnd && t.kind != Tok::kError) ++next_;
    return t;
  }
  std::size_t Pos(std::size_t byte) const { return chars_[byte]; }
  Unexpected Err(std::size_t byte, std::string_view what, std::string_view code = "syntax") const {
    return detail::PositionedError(Pos(byte), code, what);
  }
  Unexpected Fail(const Token& t) const { return Err(t.begin, t.error); }
  std::string Quote(const Token& t) const {
    std::string_view s = text_.substr(t.begin, t.end - t.begin);
    if (s.size() > 40) return "'" + std::string(s.substr(0, 37)) + "...'";
    return "'" + std::string(s) + "'";
  }
  std::optional<Unexpected> CountNode(std::size_t byte) {
    if (++nodes_ > limits_.max_nodes) {
      return Err(byte, "filter has more than " + std::to_string(limits_.max_nodes) + " nodes",
                 "limit");
    }
    return std::nullopt;
  }
  std::optional<Unexpected> CheckDepth(std::size_t depth, std::size_t byte) const {
    if (depth > limits_.max_depth) {
      return Err(byte, "filter nests deeper than " + std::to_string(limits_.max_depth) + " levels",
                 "limit");
    }
    return std::nullopt;
  }

  core::Result<Expr> ParseOr(std::size_t depth) {
    auto lhs = ParseAnd(depth);
    if (!lhs) return lhs;
    while (Peek().kind == Tok::kOr) {
      const Token& op = Take();
      auto rhs = ParseAnd(depth, &op);
      if (!rhs) return rhs;
      if (auto e = CountNode(op.begin)) return *e;
      lhs = Join(LogicOp::kOr, std::move(*lhs), std::move(*rhs));
    }
    return lhs;
  }

  core::Result<Expr> ParseAnd(std::size_t depth, const Token* after = nullptr) {
    auto lhs = ParseUnary(depth, after);
    if (!lhs) return lhs;
    while (Peek().kind == Tok::kAnd) {
      const Token& op = Take();
      auto rhs = ParseUnary(depth, &op);
      if (!rhs) return rhs;
      if (auto e = CountNode(op.begin)) return *e;
      lhs = Join(LogicOp::kAnd, std::move(*lhs), std::move(*rhs));
    }
    return lhs;
  }

  static Expr Join(LogicOp op, Expr lhs, Expr rhs) {
    std::size_t pos = lhs.position;
    Logical l;
    l.op = op;
    l.lhs = std::make_unique<Expr>(std::move(lhs));
    l.rhs = std::make_unique<Expr>(std::move(rhs));
    return Expr{std::move(l), pos};
  }

  // `after`: the token before this expression, for "expected an expression after '&&'".
  core::Result<Expr> ParseUnary(std::size_t depth, const Token* after = nullptr) {
    const Token& t = Peek();
    if (t.kind == Tok::kError) return Fail(t);
    if (t.kind == Tok::kBang) {
      Take();
      if (auto e = CheckDepth(depth + 1, t.begin)) return *e;
      if (auto e = CountNode(t.begin)) return *e;
      auto inner = ParseUnary(depth + 1, &t);
      if (!inner) return inner;
      return Expr{Not{std::make_unique<Expr>(std::move(*inner))}, Pos(t.begin)};
    }
    if (t.kind == Tok::kLParen) {
      Take();
      if (auto e = CheckDepth(depth + 1, t.begin)) return *e;
      auto inner = ParseOr(depth + 1);
      if (!inner) return inner;
      const Token& close = Peek();
      if (close.kind == Tok::kError) return Fail(close);
      if (close.kind != Tok::kRParen) {
        return Err(close.begin, "expected ')' to close '(' at " + std::to_string(Pos(t.begin)));
      }
      Take();
      return inner;
    }
    if (!StartsOperand(t.kind)) {
      if (after != nullptr) return Err(t.begin, "expected an expression after " + Quote(*after));
      if (t.kind == Tok::kEnd) return Err(t.begin, "expected an expression");
      return Err(t.begin, "expected a field, a value, '(' or '!' instead of " + Quote(t));
    }
    return ParseComparison();
  }

  static bool StartsOperand(Tok k) {
    return k == Tok::kField || k == Tok::kVariable || k == Tok::kString || k == Tok::kNumber ||
           k == Tok::kTrue || k == Tok::kFalse || k == Tok::kNull || k == Tok::kLBracket;
  }

  core::Result<Expr> ParseComparison() {
    std::size_t start = Peek().begin;
    auto lhs = ParseOperand(nullptr);
    if (!lhs) return std::unexpected(std::move(lhs.error()));
    if (std::holds_alternative<ListLiteral>(lhs->value)) {
      return Err(start, "a list is only allowed after IN");
    }
    const Token& op = Peek();
    if (op.kind == Tok::kError) return Fail(op);
    Comparison c;
    c.op_position = Pos(op.begin);
    switch (op.kind) {
      case Tok::kEq: c.op = CompareOp::kEq; break;
      case Tok::kNe: c.op = CompareOp::kNe; break;
      case Tok::kGt: c.op = CompareOp::kGt; break;
      case Tok::kGe: c.op = CompareOp::kGe; break;
      case Tok::kLt: c.op = CompareOp::kLt; break;
      case Tok::kLe: c.op = CompareOp::kLe; break;
      case Tok::kTilde: c.op = CompareOp::kContains; break;
      case Tok::kNotTilde: c.op = CompareOp::kNotContains; break;
      case Tok::kIn: c.op = CompareOp::kIn; break;
      case Tok::kNotKw: c.op = CompareOp::kNotIn; break;
      default:
        return Err(op.begin, "expected an operator (= != > >= < <= ~ !~ IN) after " + Quote(Prev()));
    }
    Take();
    const Token* op_tok = &op;
    if (c.op == CompareOp::kNotIn) {
      const Token& in = Peek();
      if (in.kind == Tok::kError) return Fail(in);
      if (in.kind != Tok::kIn) return Err(in.begin, "expected IN after 'NOT'");
      Take();
      op_tok = &in;
    }
    if (auto e = CountNode(op.begin)) return *e;
    auto rhs = ParseOperand(op_tok);
    if (!rhs) return std::unexpected(std::move(rhs.error()));
    bool is_list = std::holds_alternative<ListLiteral>(rhs->value);
    bool wants_list = c.op == CompareOp::kIn || c.op == CompareOp::kNotIn;
    if (is_list && !wants_list) return Err(op_tok->end, "a list is only allowed after IN");
    if (!is_list && wants_list) {
      return Err(rhs_begin_, "expected a list [..] after " + Quote(*op_tok));
    }
    c.lhs = std::move(*lhs);
    c.rhs = std::move(*rhs);
    std::size_t pos = c.lhs.position;
    return Expr{std::move(c), pos};
  }

  core::Result<Operand> ParseOperand(const Token* after) {
    const Token& t = Peek();
    rhs_begin_ = t.begin;
    if (t.kind == Tok::kError) return Fail(t);
    if (auto e = CountNode(t.begin)) return *e;
    Operand o;
    o.position = Pos(t.begin);
    switch (t.kind) {
      case Tok::kField: o.value = FieldPath{t.path}; break;
      case Tok::kVariable: o.value = Variable{t.path}; break;
      case Tok::kString:
      case Tok::kNumber:
      case Tok::kTrue:
      case Tok::kFalse:
      case Tok::kNull: o.value = Literal{t.value}; break;
      case Tok::kLBracket: {
        auto list = ParseList();
        if (!list) return std::unexpected(std::move(list.error()));
        o.value = std::move(*list);
        return o;
      }
      default:
        if (after != nullptr) return Err(t.begin, "expected a value after " + Quote(*after));
        return Err(t.begin, "expected a field or a value");
    }
    Take();
    return o;
  }

  core::Result<ListLiteral> ParseList() {
    const Token& open = Take();
    ListLiteral list;
    if (Peek().kind == Tok::kRBracket) return Err(Peek().begin, "a list needs at least one value");
    while (true) {
      const Token& t = Peek();
      if (t.kind == Tok::kError) return Fail(t);
      if (t.kind == Tok::kNull) return Err(t.begin, "null is not allowed in a list");
      if (t.kind != Tok::kString && t.kind != Tok::kNumber && t.kind != Tok::kTrue &&
          t.kind != Tok::kFalse) {
        return Err(t.begin, "expected a string, number, true or false in the list");
      }
      if (list.items.size() == limits_.max_list_items) {
        return Err(t.begin, "a list holds at most " + std::to_string(limits_.max_list_items) +
                                " values", "limit");
      }
      list.items.push_back(t.value);
      list.positions.push_back(Pos(t.begin));
      Take();
      const Token& sep = Peek();
      if (sep.kind == Tok::kError) return Fail(sep);
      if (sep.kind == Tok::kComma) {
        Take();
        continue;
      }
      if (sep.kind == Tok::kRBracket) {
        Take();
        return list;
      }
      return Err(sep.begin, "expected ',' or ']' to close '[' at " + std::to_string(Pos(open.begin)));
    }
  }

  std::string_view text_;
  const Limits& limits_;
  std::vector<Token> tokens_;
  std::vector<std::size_t> chars_;
  std::size_t next_ = 0;
  std::size_t nodes_ = 0;
  std::size_t rhs_begin_ = 0;
};

}  // namespace

core::Result<Expr> Parse(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_length) {
    std::size_t pos = 0;  // the character that starts at byte max_length
    for (std::size_t i = 0; i < limits.max_length; ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++pos;
    }
    return detail::PositionedError(pos, "limit",
                                   "filter is longer than " + std::to_string(limits.max_length) +
                                       " bytes");
  }
  if (std::size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    std::size_t pos = 0;
    for (std::size_t i = 0; i < bad; ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++pos;
    }
    return detail::PositionedError(pos, "syntax", "invalid UTF-8");
  }
  Parser parser(text, limits, Lexer(text).Run());
  return parser.Run();
}

}  // namespace basalt::query
