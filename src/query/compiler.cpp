#include "query/compiler.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "query/diagnostics.hpp"

namespace basalt::query {

SqlSyntax SqlSyntax::Sqlite() {
  SqlSyntax s;
  s.placeholder_prefix = "?";
  s.contains_op = "LIKE";  // ASCII case-insensitive by default in SQLite.
  s.not_contains_op = "NOT LIKE";
  s.like_escape = " ESCAPE '\\'";
  s.bind_bool_as_integer = true;
  s.true_sql = "TRUE";  // SQLite >= 3.23 knows TRUE.
  return s;
}

SqlSyntax SqlSyntax::Postgres() {
  SqlSyntax s;
  s.placeholder_prefix = "$";
  s.contains_op = "ILIKE";
  s.not_contains_op = "NOT ILIKE";
  s.like_escape = " ESCAPE '\\'";  // standard_conforming_strings: '\' is one backslash.
  s.bind_bool_as_integer = false;
  s.true_sql = "TRUE";
  s.cast_integer = "::bigint";
  s.cast_number = "::double precision";
  s.cast_text = "::text";
  s.cast_bool = "::boolean";
  return s;
}

namespace {

using Unexpected = std::unexpected<core::Error>;

// The broad class of a value, for type checks.
enum class Kind { kString, kNumber, kBool, kNull, kAny };

Kind KindOf(const Value& v) {
  switch (v.index()) {
    case 0: return Kind::kNull;
    case 1:
    case 2: return Kind::kNumber;
    case 3: return Kind::kString;
    default: return Kind::kBool;
  }
}

Kind KindOf(FieldType t) {
  switch (t) {
    case FieldType::kText:
    case FieldType::kRelation:
    case FieldType::kDatetime: return Kind::kString;
    case FieldType::kInteger:
    case FieldType::kNumber: return Kind::kNumber;
    case FieldType::kBool: return Kind::kBool;
    case FieldType::kJson: return Kind::kAny;
  }
  return Kind::kAny;
}

std::string_view TypeName(FieldType t) {
  switch (t) {
    case FieldType::kText: return "text";
    case FieldType::kInteger: return "an integer";
    case FieldType::kNumber: return "a number";
    case FieldType::kBool: return "a bool";
    case FieldType::kDatetime: return "a datetime";
    case FieldType::kJson: return "json";
    case FieldType::kRelation: return "a relation";
  }
  return "?";
}

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kString: return "a string";
    case Kind::kNumber: return "a number";
    case Kind::kBool: return "a bool";
    case Kind::kNull: return "null";
    case Kind::kAny: return "json";
  }
  return "?";
}

std::string JoinPath(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& s : path) {
    if (!out.empty()) out += '.';
    out += s;
  }
  return out;
}

// Escapes LIKE metacharacters with backslash and wraps the value in %...%.
std::string ContainsPattern(std::string_view v) {
  std::string out = "%";
  for (char c : v) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

// One side of a comparison after resolution, before any SQL is emitted.
struct Term {
  std::size_t position = 0;
  bool is_field = false;
  bool is_variable = false;
  ResolvedField field;          // is_field
  std::string name;             // field path, for messages
  Value value;                  // literal or variable value
  std::vector<Value> list;      // list literal
  std::vector<std::size_t> list_positions;
  bool is_list = false;
  Kind kind() const { return is_field ? KindOf(field.type) : KindOf(value); }
};

class Compiler {
 public:
  Compiler(const FieldResolver& fields, const VariableResolver& variables, const SqlSyntax& syntax)
      : fields_(fields), variables_(variables), syntax_(syntax) {}

  core::Result<CompiledFilter> Run(const Expr& expr) {
    if (expr.IsEmpty()) {
      out_.sql = syntax_.true_sql;
      return std::move(out_);
    }
    std::string sql;
    if (auto r = Emit(expr, sql, /*parent_or=*/false); !r) return std::unexpected(r.error());
    out_.sql = std::move(sql);
    return std::move(out_);
  }

 private:
  core::Result<void> Emit(const Expr& e, std::string& sql, bool parent_or) {
    if (const auto* c = std::get_if<Comparison>(&e.node)) return EmitComparison(*c, sql);
    if (const auto* n = std::get_if<Not>(&e.node)) {
      sql += "NOT (";
      // NOT's own parentheses already enclose an OR below it.
      if (auto r = Emit(*n->operand, sql, /*parent_or=*/true); !r) return r;
      sql += ')';
      return {};
    }
    if (const auto* l = std::get_if<Logical>(&e.node)) {
      // AND binds tighter than OR, so only an OR below something other than OR needs parentheses;
      // a top-level OR is parenthesized too so the caller can AND the result with its own terms.
      bool is_or = l->op == LogicOp::kOr;
      bool parens = is_or && !parent_or;
      if (parens) sql += '(';
      if (auto r = Emit(*l->lhs, sql, is_or); !r) return r;
      sql += is_or ? " OR " : " AND ";
      if (auto r = Emit(*l->rhs, sql, is_or); !r) return r;
      if (parens) sql += ')';
      return {};
    }
    sql += syntax_.true_sql;  // Empty below the root cannot come from Parse.
    return {};
  }

  core::Result<Term> Resolve(const Operand& o) {
    Term t;
    t.position = o.position;
    if (const auto* f = std::get_if<FieldPath>(&o.value)) {
      auto r = fields_.Resolve(f->path);
      if (!r) return Wrap(r.error(), o.position, "field");
      t.is_field = true;
      t.field = std::move(*r);
      t.name = JoinPath(f->path);
      return t;
    }
    if (const auto* v = std::get_if<Variable>(&o.value)) {
      auto r = variables_.Variable(v->path);
      if (!r) return Wrap(r.error(), o.position, "variable");
      t.is_variable = true;
      t.value = std::move(*r);
      return t;
    }
    if (const auto* l = std::get_if<Literal>(&o.value)) {
      t.value = l->value;
      return t;
    }
    const auto& list = std::get<ListLiteral>(o.value);
    t.is_list = true;
    t.list = list.items;
    t.list_positions = list.positions;
    return t;
  }

  Unexpected Wrap(const core::Error& inner, std::size_t pos, std::string_view code) {
    if (inner.code == core::ErrorCode::kInternal) return std::unexpected(inner);
    auto e = detail::PositionedError(pos, code, inner.message);
    e.error().cause = inner.cause;
    return e;
  }

  Unexpected TypeError(std::size_t pos, std::string what) {
    return detail::PositionedError(pos, "type", what);
  }

  // Checks that `a` and `b` (neither a list) may be compared with `op`.
  std::optional<Unexpected> CheckPair(const Term& a, const Term& b, const Comparison& c) {
    const Term* field = a.is_field ? &a : (b.is_field ? &b : nullptr);
    const Term* other = field == &a ? &b : &a;
    if (field != nullptr && field->field.multi_valued &&
        (c.op != CompareOp::kEq && c.op != CompareOp::kNe)) {
      return TypeError(c.op_position, field->name + " has many values; only = and != apply");
    }
    if (field != nullptr && other->is_field && other->field.multi_valued) {
      return TypeError(other->position, other->name + " has many values; compare it with a value");
    }
    if (field != nullptr && field->field.multi_valued && other->kind() == Kind::kNull) {
      return TypeError(other->position, field->name + " has many values; cannot compare with null");
    }
    bool ordering = c.op == CompareOp::kGt || c.op == CompareOp::kGe || c.op == CompareOp::kLt ||
                    c.op == CompareOp::kLe;
    if (ordering && (a.kind() == Kind::kNull || b.kind() == Kind::kNull)) {
      const Term& n = a.kind() == Kind::kNull ? a : b;
      if (!n.is_variable) {
        return TypeError(n.position, "cannot use '" + std::string(OpText(c.op)) +
                                         "' with null; use = null or != null");
      }
    }
    if (ordering && (a.kind() == Kind::kBool || b.kind() == Kind::kBool)) {
      if (field != nullptr && field->field.type == FieldType::kBool) {
        return TypeError(c.op_position, field->name + " is a bool; cannot use '" +
                                            std::string(OpText(c.op)) + "'");
      }
      if (!a.is_variable && !b.is_variable) {
        return TypeError(c.op_position,
                         "cannot use '" + std::string(OpText(c.op)) + "' with a bool");
      }
    }
    // Variables carry request data; their types are not checked here.
    if (a.is_variable || b.is_variable) return std::nullopt;
    Kind ka = a.kind();
    Kind kb = b.kind();
    if (ka == Kind::kNull || kb == Kind::kNull || ka == Kind::kAny || kb == Kind::kAny) {
      return std::nullopt;
    }
    if (ka == kb) return std::nullopt;
    if (field != nullptr) {
      std::string what = field->name + " is " + std::string(TypeName(field->field.type)) +
                         "; cannot compare with ";
      if (other->is_field) {
        what += other->name + " (" + std::string(TypeName(other->field.type)) + ")";
      } else {
        what += KindName(other->kind());
      }
      return TypeError(other->position, what);
    }
    return TypeError(b.position, "cannot compare " + std::string(KindName(ka)) + " with " +
                                     std::string(KindName(kb)));
  }

  // Binds `v` and returns its placeholder; `cast` adds the dialect's type cast.
  std::string Bind(Value v, bool cast) {
    std::string suffix;
    if (cast) {
      switch (KindOf(v)) {
        case Kind::kString:
        case Kind::kNull:
        case Kind::kAny: suffix = syntax_.cast_text; break;
        case Kind::kBool: suffix = syntax_.cast_bool; break;
        case Kind::kNumber:
          suffix = std::holds_alternative<double>(v) ? syntax_.cast_number : syntax_.cast_integer;
          break;
      }
    }
    if (const auto* b = std::get_if<bool>(&v); b != nullptr && syntax_.bind_bool_as_integer) {
      v = static_cast<std::int64_t>(*b ? 1 : 0);
    }
    out_.params.push_back(std::move(v));
    int index = syntax_.first_param_index + static_cast<int>(out_.params.size()) - 1;
    return syntax_.placeholder_prefix + std::to_string(index) + suffix;
  }

  // SQL for a non-list term: the field's expression or a placeholder.
  std::string TermSql(const Term& t, bool cast) {
    if (t.is_field) {
      for (const auto& j : t.field.joins) {
        if (std::find(out_.joins.begin(), out_.joins.end(), j) == out_.joins.end()) {
          out_.joins.push_back(j);
        }
      }
      return t.field.sql;
    }
    return Bind(t.value, cast);
  }

  core::Result<void> EmitComparison(const Comparison& c, std::string& sql) {
    auto lhs = Resolve(c.lhs);
    if (!lhs) return std::unexpected(lhs.error());
    auto rhs = Resolve(c.rhs);
    if (!rhs) return std::unexpected(rhs.error());
    Term& a = *lhs;
    Term& b = *rhs;
    bool cast = !a.is_field && !b.is_field;  // no column to infer placeholder types from
    if (a.is_field && a.field.equality_keys) return EmitSecret(c, a, b, sql);
    if (b.is_field && b.field.equality_keys) return EmitSecret(c, b, a, sql);

    if (c.op == CompareOp::kIn || c.op == CompareOp::kNotIn) return EmitIn(c, a, b, sql, cast);
    if (c.op == CompareOp::kContains || c.op == CompareOp::kNotContains) {
      return EmitContains(c, a, b, sql, cast);
    }
    if (auto e = CheckPair(a, b, c)) return *e;

    // Multi-valued field: any value equals (=) / no value equals (!=).
    const Term* multi = a.is_field && a.field.multi_valued   ? &a
                        : b.is_field && b.field.multi_valued ? &b
                                                             : nullptr;
    if (multi != nullptr) {
      const Term& other = multi == &a ? b : a;
      std::string o = TermSql(other, cast);
      std::string m = TermSql(*multi, false);
      sql += o + (c.op == CompareOp::kEq ? " IN (" : " NOT IN (") + m + ")";
      return {};
    }

    // `x = null` / `x != null` (literal null only; a null variable binds as a parameter).
    bool a_null = !a.is_field && !a.is_variable && a.kind() == Kind::kNull;
    bool b_null = !b.is_field && !b.is_variable && b.kind() == Kind::kNull;
    if ((a_null || b_null) && (c.op == CompareOp::kEq || c.op == CompareOp::kNe)) {
      const Term& other = b_null ? a : b;
      sql += TermSql(other, cast);
      sql += c.op == CompareOp::kEq ? " IS NULL" : " IS NOT NULL";
      return {};
    }

    std::string left = TermSql(a, cast);
    std::string right = TermSql(b, cast);
    sql += left + " " + std::string(c.op == CompareOp::kNe ? "<>" : OpText(c.op)) + " " + right;
    return {};
  }

  // A secret field: equality with a string only, compiled to its blind index column compared with
  // the value's blind indexes (one per configured key). Ciphertexts are randomised, so nothing
  // else can be evaluated in SQL.
  core::Result<void> EmitSecret(const Comparison& c, const Term& secret, const Term& other, std::string& sql) {
    if (c.op != CompareOp::kEq && c.op != CompareOp::kNe) {
      return TypeError(c.op_position, secret.name + " is a secret field; only = and != apply (against a string "
                                                    "or a @request variable), not '" + std::string(OpText(c.op)) + "'");
    }
    if (other.is_field) {
      return TypeError(other.position, secret.name + " is a secret field; compare it with a string or a @request "
                                                     "variable, not with the field " + other.name);
    }
    const std::string column = TermSql(secret, false);
    if (!other.is_variable && other.kind() == Kind::kNull) {
      sql += column + (c.op == CompareOp::kEq ? " IS NULL" : " IS NOT NULL");
      return {};
    }
    if (!other.is_variable && other.kind() != Kind::kString) {
      return TypeError(other.position, secret.name + " is a secret field; cannot compare with " +
                                           std::string(KindName(other.kind())));
    }
    const auto* text = std::get_if<std::string>(&other.value);
    if (text == nullptr) {  // a variable that is null or not a string never matches
      sql += column + (c.op == CompareOp::kEq ? " = " : " <> ") + Bind(std::monostate{}, false);
      return {};
    }
    const std::vector<std::string> keys = secret.field.equality_keys(*text);
    if (keys.empty()) {
      sql += c.op == CompareOp::kEq ? "1 = 0" : column + " IS NOT NULL";
      return {};
    }
    if (keys.size() == 1) {
      sql += column + (c.op == CompareOp::kEq ? " = " : " <> ") + Bind(keys.front(), false);
      return {};
    }
    sql += column + (c.op == CompareOp::kEq ? " IN (" : " NOT IN (");
    for (std::size_t i = 0; i < keys.size(); ++i) sql += (i ? ", " : "") + Bind(keys[i], false);
    sql += ')';
    return {};
  }

  core::Result<void> EmitIn(const Comparison& c, const Term& a, const Term& b, std::string& sql,
                            bool cast) {
    if (a.is_field && a.field.multi_valued) {
      return TypeError(c.op_position, a.name + " has many values; only = and != apply");
    }
    if (!a.is_variable && a.kind() == Kind::kNull) {
      return TypeError(a.position, "cannot use IN with null");
    }
    Kind ka = a.kind();
    if (!a.is_variable && ka != Kind::kAny) {
      for (std::size_t i = 0; i < b.list.size(); ++i) {
        Kind ki = KindOf(b.list[i]);
        if (ki == ka) continue;
        std::string what = a.is_field ? a.name + " is " + std::string(TypeName(a.field.type))
                                      : "the left side is " + std::string(KindName(ka));
        return TypeError(b.list_positions[i], what + "; the list holds " +
                                                  std::string(KindName(ki)));
      }
    }
    sql += TermSql(a, cast);
    sql += c.op == CompareOp::kIn ? " IN (" : " NOT IN (";
    for (std::size_t i = 0; i < b.list.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += Bind(b.list[i], cast);
    }
    sql += ')';
    return {};
  }

  core::Result<void> EmitContains(const Comparison& c, const Term& a, const Term& b,
                                  std::string& sql, bool cast) {
    std::string op(OpText(c.op));
    if (a.is_field) {
      if (a.field.multi_valued) {
        return TypeError(c.op_position, a.name + " has many values; only = and != apply");
      }
      if (a.field.type != FieldType::kText && a.field.type != FieldType::kRelation) {
        return TypeError(c.op_position, a.name + " is " + std::string(TypeName(a.field.type)) +
                                            "; '" + op + "' needs text");
      }
    } else if (a.kind() != Kind::kString && !(a.is_variable && a.kind() == Kind::kNull)) {
      return TypeError(a.position, "'" + op + "' needs text on the left; found " +
                                       std::string(KindName(a.kind())));
    }
    Value pattern;
    if (b.is_field || (b.kind() != Kind::kString && !(b.is_variable && b.kind() == Kind::kNull))) {
      std::string found = b.is_field ? "field " + b.name : std::string(KindName(b.kind()));
      return TypeError(b.position, "'" + op + "' needs a string on the right; found " + found);
    }
    if (const auto* s = std::get_if<std::string>(&b.value)) pattern = ContainsPattern(*s);
    sql += TermSql(a, cast);
    sql += ' ';
    sql += c.op == CompareOp::kContains ? syntax_.contains_op : syntax_.not_contains_op;
    sql += ' ';
    sql += Bind(std::move(pattern), cast);
    sql += syntax_.like_escape;
    return {};
  }

  const FieldResolver& fields_;
  const VariableResolver& variables_;
  const SqlSyntax& syntax_;
  CompiledFilter out_;
};

}  // namespace

core::Result<CompiledFilter> Compile(const Expr& expr, const FieldResolver& fields,
                                     const VariableResolver& variables, const SqlSyntax& syntax) {
  return Compiler(fields, variables, syntax).Run(expr);
}

}  // namespace basalt::query
