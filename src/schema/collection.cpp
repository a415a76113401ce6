#include "core/hash.hpp"
#include "schema/collection.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include <boost/json.hpp>

#include "core/time.hpp"

namespace basalt::schema {
namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 11> kKindNames = {"text", "integer", "number", "bool",   "datetime", "json",
                                                         "email", "url",   "select", "relation", "secret"};
constexpr std::size_t kMaxSecretBytes = 16 * 1024;
constexpr std::size_t kMaxSecretNameLength = 59;  // "_bi_" + name fits PostgreSQL's 63 bytes
constexpr std::size_t kMaxFields = 200;
constexpr std::size_t kMaxIndexes = 32;
constexpr std::size_t kMaxIndexFields = 8;
constexpr std::size_t kMaxSelectValues = 100;
constexpr std::size_t kMaxRuleLength = 4096;

struct Errors {
  std::vector<core::FieldError> list;
  void Add(std::string field, std::string code, std::string message) {
    list.push_back({std::move(field), std::move(code), std::move(message)});
  }
};

bool IsTextLike(FieldKind k) {
  return k == FieldKind::kText || k == FieldKind::kEmail || k == FieldKind::kUrl || k == FieldKind::kSecret;
}

// Code points in valid UTF-8 (Boost.JSON has already validated strings).
std::int64_t CodePoints(std::string_view s) {
  std::int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<double> AsNumber(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return std::nullopt;
}

bool ValidEmail(std::string_view s) {
  if (s.size() > 254) return false;
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos) return false;
  const std::string_view domain = s.substr(at + 1);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' || domain.find('.') == std::string_view::npos ||
      domain.find("..") != std::string_view::npos)
    return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7F || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' || c == ':' ||
        c == '\\' || c == '"' || c == '[' || c == ']')
      return false;
  }
  return true;
}

bool ValidUrl(std::string_view s) {
  if (s.size() > 2048) return false;
  std::string_view rest;
  if (s.starts_with("https://")) rest = s.substr(8);
  else if (s.starts_with("http://")) rest = s.substr(7);
  else return false;
  const std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.front() == ':' || host.front() == '@') return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7F || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
        c == '{' || c == '|' || c == '}')
      return false;
  }
  return true;
}

const RE2* CompiledPattern(const std::string& pattern) {
  // Patterns come from validated specs; compile per call (records are validated per request).
  // A small thread-local cache keeps the cost down on hot paths.
  thread_local std::vector<std::pair<std::string, std::unique_ptr<RE2>>> cache;
  for (auto& [p, re] : cache) {
    if (p == pattern) return re.get();
  }
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(1 << 20);
  auto re = std::make_unique<RE2>(pattern, options);
  if (cache.size() >= 64) cache.erase(cache.begin());
  cache.emplace_back(pattern, std::move(re));
  return cache.back().second.get();
}

std::string NumberText(double n) {
  if (std::isfinite(n) && std::floor(n) == n && std::fabs(n) < 9.0e15) return std::to_string(static_cast<std::int64_t>(n));
  return json::serialize(json::value(n));
}

json::value NumberJson(double n) {
  if (std::isfinite(n) && std::floor(n) == n && std::fabs(n) < 9.0e15) return json::value(static_cast<std::int64_t>(n));
  return json::value(n);
}

bool ParseDigits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string_view KindName(FieldKind kind) { return kKindNames[static_cast<std::size_t>(kind)]; }

std::string_view OnDeleteName(OnDelete on_delete) {
  switch (on_delete) {
    case OnDelete::kCascade: return "cascade";
    case OnDelete::kSetNull: return "set_null";
    case OnDelete::kRestrict: break;
  }
  return "restrict";
}

const FieldSpec* CollectionSpec::Find(std::string_view field) const {
  for (const auto& f : fields) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

std::string TableName(std::string_view collection) { return "c_" + std::string(collection); }

std::string BlindIndexColumn(std::string_view field) { return "_bi_" + std::string(field); }

std::string SecretContext(std::string_view collection, std::string_view field) {
  return std::string(collection) + "." + std::string(field);
}

std::string SecretAad(std::string_view collection, std::string_view field, std::string_view record_id) {
  return "basalt.secret.v1/" + std::string(collection) + "." + std::string(field) + "/" + std::string(record_id);
}

bool HasSecrets(const CollectionSpec& spec) {
  return std::any_of(spec.fields.begin(), spec.fields.end(), [](const FieldSpec& f) { return f.kind == FieldKind::kSecret; });
}

bool IsSystemField(std::string_view name) {
  return name == "id" || name == "created_at" || name == "updated_at" || name == "version";
}

bool IsValidName(std::string_view name, std::size_t max_len) {
  if (name.empty() || name.size() > max_len) return false;
  if (name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

std::string IndexName(std::string_view collection, const std::vector<std::string>& fields, bool unique) {
  std::string key(collection);
  for (const auto& f : fields) key += "|" + f;
  key += unique ? "|u" : "|i";
  const std::string hash = core::Hex64(core::Fnv1a64(key));
  std::string prefix = std::string(unique ? "ux_" : "ix_") + std::string(collection);
  if (prefix.size() > 42) prefix.resize(42);
  return prefix + "_" + hash;
}

std::optional<std::string> NormalizeDatetime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)
  int year, month, day, hour, minute, second;
  if (s.size() < 20) return std::nullopt;
  if (!ParseDigits(s, 0, 4, year) || s[4] != '-' || !ParseDigits(s, 5, 2, month) || s[7] != '-' ||
      !ParseDigits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') || !ParseDigits(s, 11, 2, hour) ||
      s[13] != ':' || !ParseDigits(s, 14, 2, minute) || s[16] != ':' || !ParseDigits(s, 17, 2, second))
    return std::nullopt;
  std::size_t pos = 19;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0 || digits > 9) return std::nullopt;
    for (std::size_t d = digits; d < 3; ++d) millis *= 10;
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!ParseDigits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !ParseDigits(s, pos + 4, 2, om) ||
        oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                           std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  if (second == 60) second = 59;  // leap second: clamp, keeps ordering sane
  sys_time<milliseconds> tp = sys_days(ymd) + hours(hour) + minutes(minute) + seconds(second) + milliseconds(millis) -
                              minutes(offset_minutes);
  if (tp < sys_days(std::chrono::year(1) / 1 / 1) || tp >= sys_days(std::chrono::year(10000) / 1 / 1))
    return std::nullopt;
  return core::FormatRfc3339Millis(tp.time_since_epoch().count());
}

std::optional<core::FieldError> CheckValue(const FieldSpec& f, const json::value& v) {
  auto err = [&](std::string code, std::string message) {
    return std::optional<core::FieldError>(core::FieldError{f.name, std::move(code), std::move(message)});
  };
  auto check_length = [&](std::int64_t n, const char* unit) -> std::optional<core::FieldError> {
    if (f.min_length && n < *f.min_length)
      return err("min_length", "must have at least " + std::to_string(*f.min_length) + " " + unit);
    if (f.max_length && n > *f.max_length)
      return err("max_length", "must have at most " + std::to_string(*f.max_length) + " " + unit);
    return std::nullopt;
  };
  auto check_pattern = [&](std::string_view s) -> std::optional<core::FieldError> {
    if (!f.pattern) return std::nullopt;
    const RE2* re = CompiledPattern(*f.pattern);
    if (!re->ok() || !RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *re))
      return err("pattern", "does not match the pattern");
    return std::nullopt;
  };
  switch (f.kind) {
    case FieldKind::kText:
    case FieldKind::kEmail:
    case FieldKind::kUrl:
    case FieldKind::kSecret: {
      if (!v.is_string()) return err("type", "must be a string");
      const std::string_view s = v.as_string();
      if (s.find('\0') != std::string_view::npos) return err("type", "must not contain NUL characters");
      if (f.kind == FieldKind::kSecret && s.size() > kMaxSecretBytes)
        return err("max_length", "a secret holds at most " + std::to_string(kMaxSecretBytes) + " bytes");
      if (f.kind == FieldKind::kEmail && !s.empty() && !ValidEmail(s)) return err("email", "must be an email address");
      if (f.kind == FieldKind::kUrl && !s.empty() && !ValidUrl(s)) return err("url", "must be an absolute http(s) URL");
      if (auto e = check_length(CodePoints(s), "characters")) return e;
      return check_pattern(s);
    }
    case FieldKind::kInteger:
    case FieldKind::kNumber: {
      std::optional<double> n;
      if (f.kind == FieldKind::kInteger) {
        if (v.is_int64()) n = static_cast<double>(v.as_int64());
        else if (v.is_uint64()) return err("type", "must be a 64-bit integer");
        else return err("type", "must be an integer");
      } else {
        n = AsNumber(v);
        if (!n || !std::isfinite(*n)) return err("type", "must be a number");
      }
      if (f.min && *n < *f.min) return err("min", "must be at least " + NumberText(*f.min));
      if (f.max && *n > *f.max) return err("max", "must be at most " + NumberText(*f.max));
      return std::nullopt;
    }
    case FieldKind::kBool:
      if (!v.is_bool()) return err("type", "must be true or false");
      return std::nullopt;
    case FieldKind::kDatetime:
      if (!v.is_string()) return err("type", "must be an RFC 3339 date-time string");
      if (!NormalizeDatetime(v.as_string())) return err("datetime", "must be an RFC 3339 date-time, e.g. 2026-01-02T03:04:05Z");
      return std::nullopt;
    case FieldKind::kJson:
      if (v.is_null()) return err("type", "must not be null");
      return std::nullopt;
    case FieldKind::kSelect: {
      auto allowed = [&](const json::value& item) {
        return item.is_string() && std::find(f.values.begin(), f.values.end(), std::string_view(item.as_string())) !=
                                       f.values.end();
      };
      if (!f.multi) {
        if (!v.is_string()) return err("type", "must be a string");
        if (!allowed(v)) return err("select", "must be one of the field's values");
        return std::nullopt;
      }
      if (!v.is_array()) return err("type", "must be an array of strings");
      std::set<std::string_view> seen;
      for (const auto& item : v.as_array()) {
        if (!item.is_string()) return err("type", "must be an array of strings");
        if (!allowed(item)) return err("select", "every item must be one of the field's values");
        if (!seen.insert(item.as_string()).second) return err("select", "items must be unique");
      }
      return check_length(static_cast<std::int64_t>(v.as_array().size()), "items");
    }
    case FieldKind::kRelation: {
      if (!v.is_string()) return err("type", "must be a record id string");
      const std::string_view s = v.as_string();
      if (s.empty() || s.size() > 64 || !std::all_of(s.begin(), s.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
          }))
        return err("relation", "must be a record id");
      return std::nullopt;
    }
  }
  return std::nullopt;
}

core::Result<CollectionSpec> ParseCollectionSpec(const json::value& input) {
  Errors errors;
  CollectionSpec spec;
  if (!input.is_object()) {
    return std::unexpected(core::Error{core::ErrorCode::kValidation, "The collection must be a JSON object.",
                                       {{"", "type", "must be a JSON object"}}, {}});
  }
  const json::object& obj = input.as_object();
  for (const auto& [key, _] : obj) {
    if (key != "name" && key != "fields" && key != "indexes" && key != "rules")
      errors.Add(std::string(key), "unknown_field", "is not a collection property");
  }
  if (const json::value* name = obj.if_contains("name"); !name || !name->is_string()) {
    errors.Add("name", name ? "type" : "required", "must be a string");
  } else {
    spec.name = std::string(name->as_string());
    if (!IsValidName(spec.name, 61))
      errors.Add("name", "format", "must match ^[a-z][a-z0-9_]{0,60}$");
    else if (spec.name.starts_with("basalt_"))
      errors.Add("name", "reserved", "names starting with basalt_ are reserved");
  }

  std::set<std::string> names;
  if (const json::value* fields = obj.if_contains("fields"); fields && !fields->is_array()) {
    errors.Add("fields", "type", "must be an array");
  } else if (fields) {
    if (fields->as_array().size() > kMaxFields)
      errors.Add("fields", "max_length", "at most " + std::to_string(kMaxFields) + " fields");
    std::size_t i = 0;
    for (const auto& fv : fields->as_array()) {
      const std::string at = "fields[" + std::to_string(i++) + "]";
      if (!fv.is_object()) {
        errors.Add(at, "type", "must be an object");
        continue;
      }
      const json::object& fo = fv.as_object();
      FieldSpec f;
      bool kind_ok = false;
      if (const json::value* n = fo.if_contains("name"); !n || !n->is_string()) {
        errors.Add(at + ".name", n ? "type" : "required", "must be a string");
      } else {
        f.name = std::string(n->as_string());
        if (!IsValidName(f.name)) errors.Add(at + ".name", "format", "must match ^[a-z][a-z0-9_]{0,62}$");
        else if (IsSystemField(f.name)) errors.Add(at + ".name", "reserved", "is a system field");
        else if (!names.insert(f.name).second) errors.Add(at + ".name", "duplicate", "is declared twice");
      }
      if (const json::value* t = fo.if_contains("type"); !t || !t->is_string()) {
        errors.Add(at + ".type", t ? "type" : "required", "must be a string");
      } else {
        const auto it = std::find(kKindNames.begin(), kKindNames.end(), std::string_view(t->as_string()));
        if (it == kKindNames.end()) {
          errors.Add(at + ".type", "enum", "must be one of text, integer, number, bool, datetime, json, email, url, select, relation, secret");
        } else {
          f.kind = static_cast<FieldKind>(it - kKindNames.begin());
          kind_ok = true;
        }
      }
      auto option_allowed = [&](std::string_view key) {
        if (key == "name" || key == "type" || key == "required" || key == "unique" || key == "default" ||
            key == "previous_name")
          return true;
        if (!kind_ok) return true;  // reported by type already
        if (key == "min" || key == "max") return f.kind == FieldKind::kInteger || f.kind == FieldKind::kNumber;
        if (key == "min_length" || key == "max_length")
          return IsTextLike(f.kind) || (f.kind == FieldKind::kSelect);
        if (key == "pattern") return IsTextLike(f.kind);
        if (key == "values" || key == "multi") return f.kind == FieldKind::kSelect;
        if (key == "collection" || key == "on_delete") return f.kind == FieldKind::kRelation;
        return false;
      };
      for (const auto& [key, _] : fo) {
        if (!option_allowed(key))
          errors.Add(at + "." + std::string(key), "unknown_field", "is not an option of this field type");
      }
      auto get_bool = [&](const char* key, bool& out) {
        if (const json::value* b = fo.if_contains(key)) {
          if (!b->is_bool()) errors.Add(at + "." + key, "type", "must be true or false");
          else out = b->as_bool();
        }
      };
      get_bool("required", f.required);
      get_bool("unique", f.unique);
      get_bool("multi", f.multi);
      if (kind_ok && f.unique && (f.kind == FieldKind::kJson || (f.kind == FieldKind::kSelect && f.multi)))
        errors.Add(at + ".unique", "unsupported", "json and multi-select fields cannot be unique");
      if (kind_ok && f.kind == FieldKind::kSecret) {
        if (f.unique) errors.Add(at + ".unique", "unsupported", "secret fields cannot be unique");
        if (const json::value* d = fo.if_contains("default"); d && !d->is_null())
          errors.Add(at + ".default", "unsupported", "secret fields cannot have a default (it would be stored in clear)");
        if (f.name.size() > kMaxSecretNameLength)
          errors.Add(at + ".name", "format", "a secret field's name has at most 59 characters");
      }
      if (const json::value* pn = fo.if_contains("previous_name")) {
        if (!pn->is_string() || !IsValidName(pn->as_string()))
          errors.Add(at + ".previous_name", "format", "must be a field name");
        else f.previous_name = std::string(pn->as_string());
      }
      for (const char* key : {"min", "max"}) {
        if (const json::value* m = fo.if_contains(key)) {
          auto n = AsNumber(*m);
          if (!n || !std::isfinite(*n)) errors.Add(at + "." + key, "type", "must be a number");
          else (std::string_view(key) == "min" ? f.min : f.max) = *n;
        }
      }
      if (f.min && f.max && *f.min > *f.max) errors.Add(at + ".min", "range", "must not be greater than max");
      for (const char* key : {"min_length", "max_length"}) {
        if (const json::value* m = fo.if_contains(key)) {
          if (!m->is_int64() || m->as_int64() < 0) errors.Add(at + "." + key, "type", "must be a non-negative integer");
          else (std::string_view(key) == "min_length" ? f.min_length : f.max_length) = m->as_int64();
        }
      }
      if (f.min_length && f.max_length && *f.min_length > *f.max_length)
        errors.Add(at + ".min_length", "range", "must not be greater than max_length");
      if (const json::value* p = fo.if_contains("pattern")) {
        if (!p->is_string() || p->as_string().size() > 1024) {
          errors.Add(at + ".pattern", "type", "must be a string of at most 1024 bytes");
        } else {
          RE2::Options options;
          options.set_log_errors(false);
          options.set_max_mem(1 << 20);
          RE2 re(std::string(p->as_string()), options);
          if (!re.ok()) errors.Add(at + ".pattern", "pattern", "is not a valid RE2 expression: " + re.error());
          else f.pattern = std::string(p->as_string());
        }
      }
      if (kind_ok && f.kind == FieldKind::kSelect) {
        const json::value* vals = fo.if_contains("values");
        if (!vals) {
          errors.Add(at + ".values", "required", "select fields need values");
        } else if (!vals->is_array() || vals->as_array().empty() || vals->as_array().size() > kMaxSelectValues) {
          errors.Add(at + ".values", "type", "must be an array of 1 to 100 strings");
        } else {
          std::set<std::string> seen;
          for (const auto& item : vals->as_array()) {
            if (!item.is_string() || item.as_string().empty() || item.as_string().size() > 200 ||
                std::string_view(item.as_string()).find('\0') != std::string_view::npos) {
              errors.Add(at + ".values", "type", "must be non-empty strings of at most 200 bytes");
              break;
            }
            if (!seen.insert(std::string(item.as_string())).second) {
              errors.Add(at + ".values", "duplicate", "values must be unique");
              break;
            }
            f.values.emplace_back(item.as_string());
          }
        }
      }
      if (kind_ok && f.kind == FieldKind::kRelation) {
        const json::value* c = fo.if_contains("collection");
        if (!c || !c->is_string()) errors.Add(at + ".collection", c ? "type" : "required", "must be a collection name");
        else if (!IsValidName(c->as_string(), 61)) errors.Add(at + ".collection", "format", "must be a collection name");
        else f.collection = std::string(c->as_string());
        if (const json::value* od = fo.if_contains("on_delete")) {
          const std::string_view s = od->is_string() ? std::string_view(od->as_string()) : std::string_view();
          if (s == "cascade") f.on_delete = OnDelete::kCascade;
          else if (s == "set_null") f.on_delete = OnDelete::kSetNull;
          else if (s == "restrict") f.on_delete = OnDelete::kRestrict;
          else errors.Add(at + ".on_delete", "enum", "must be cascade, set_null or restrict");
        }
        if (f.on_delete == OnDelete::kSetNull && f.required)
          errors.Add(at + ".on_delete", "conflict", "a required relation cannot be set_null");
      }
      if (const json::value* d = fo.if_contains("default"); d && kind_ok) {
        if (d->is_null()) {
          // same as no default
        } else if (f.kind == FieldKind::kRelation) {
          errors.Add(at + ".default", "unsupported", "relation fields cannot have a default");
        } else if (f.kind == FieldKind::kSecret) {
          // reported above
        } else if (auto e = CheckValue(f, *d)) {
          errors.Add(at + ".default", e->code, e->message);
        } else {
          f.default_value = *d;
        }
      }
      spec.fields.push_back(std::move(f));
    }
  }

  if (const json::value* indexes = obj.if_contains("indexes"); indexes && !indexes->is_array()) {
    errors.Add("indexes", "type", "must be an array");
  } else if (indexes) {
    if (indexes->as_array().size() > kMaxIndexes) errors.Add("indexes", "max_length", "at most 32 indexes");
    std::size_t i = 0;
    std::set<std::string> index_names;
    for (const auto& iv : indexes->as_array()) {
      const std::string at = "indexes[" + std::to_string(i++) + "]";
      if (!iv.is_object()) {
        errors.Add(at, "type", "must be an object");
        continue;
      }
      IndexSpec index;
      const json::object& io = iv.as_object();
      for (const auto& [key, _] : io) {
        if (key != "fields" && key != "unique" && key != "name")
          errors.Add(at + "." + std::string(key), "unknown_field", "is not an index property");
      }
      const json::value* fs = io.if_contains("fields");
      if (!fs || !fs->is_array() || fs->as_array().empty() || fs->as_array().size() > kMaxIndexFields) {
        errors.Add(at + ".fields", fs ? "type" : "required", "must be an array of 1 to 8 field names");
      } else {
        std::set<std::string> seen;
        std::size_t j = 0;
        for (const auto& fn : fs->as_array()) {
          const std::string fat = at + ".fields[" + std::to_string(j++) + "]";
          if (!fn.is_string()) {
            errors.Add(fat, "type", "must be a field name");
            continue;
          }
          const std::string name(fn.as_string());
          const FieldSpec* f = spec.Find(name);
          if (!f && !IsSystemField(name)) errors.Add(fat, "unknown_field", "is not a field of this collection");
          else if (f && (f->kind == FieldKind::kJson || (f->kind == FieldKind::kSelect && f->multi)))
            errors.Add(fat, "unsupported", "json and multi-select fields cannot be indexed");
          else if (f && f->kind == FieldKind::kSecret)
            errors.Add(fat, "unsupported", "secret fields cannot be indexed (their blind index is indexed already)");
          else if (!seen.insert(name).second) errors.Add(fat, "duplicate", "is listed twice");
          index.fields.push_back(name);
        }
      }
      if (const json::value* u = io.if_contains("unique")) {
        if (!u->is_bool()) errors.Add(at + ".unique", "type", "must be true or false");
        else index.unique = u->as_bool();
      }
      if (const json::value* n = io.if_contains("name")) {
        if (!n->is_string() || !IsValidName(n->as_string())) errors.Add(at + ".name", "format", "must be an index name");
        else index.name = std::string(n->as_string());
      }
      if (index.name.empty() && !spec.name.empty()) index.name = IndexName(spec.name, index.fields, index.unique);
      if (!index.name.empty() && !index_names.insert(index.name).second)
        errors.Add(at, "duplicate", "the same index is declared twice");
      spec.indexes.push_back(std::move(index));
    }
  }

  if (const json::value* rules = obj.if_contains("rules"); rules && !rules->is_object()) {
    errors.Add("rules", "type", "must be an object");
  } else if (rules) {
    for (const auto& [key, value] : rules->as_object()) {
      std::optional<std::string>* slot = nullptr;
      if (key == "list") slot = &spec.rules.list;
      else if (key == "view") slot = &spec.rules.view;
      else if (key == "create") slot = &spec.rules.create;
      else if (key == "update") slot = &spec.rules.update;
      else if (key == "delete") slot = &spec.rules.del;
      if (!slot) {
        errors.Add("rules." + std::string(key), "unknown_field", "must be list, view, create, update or delete");
      } else if (value.is_null()) {
        slot->reset();
      } else if (!value.is_string() || value.as_string().size() > kMaxRuleLength) {
        errors.Add("rules." + std::string(key), "type", "must be null or a string of at most 4096 bytes");
      } else {
        *slot = std::string(value.as_string());
      }
    }
  }

  if (!errors.list.empty()) {
    core::Error error = core::Error::Make(core::ErrorCode::kValidation, "The collection definition is invalid.");
    error.fields = std::move(errors.list);
    return std::unexpected(std::move(error));
  }
  return spec;
}

json::object ToJson(const CollectionSpec& spec) {
  json::object out;
  out["name"] = spec.name;
  json::array fields;
  for (const auto& f : spec.fields) {
    json::object fo;
    fo["name"] = f.name;
    fo["type"] = KindName(f.kind);
    if (f.required) fo["required"] = true;
    if (f.unique) fo["unique"] = true;
    if (f.default_value) fo["default"] = *f.default_value;
    if (f.min) fo["min"] = NumberJson(*f.min);
    if (f.max) fo["max"] = NumberJson(*f.max);
    if (f.min_length) fo["min_length"] = *f.min_length;
    if (f.max_length) fo["max_length"] = *f.max_length;
    if (f.pattern) fo["pattern"] = *f.pattern;
    if (f.kind == FieldKind::kSelect) {
      json::array values;
      for (const auto& v : f.values) values.emplace_back(v);
      fo["values"] = std::move(values);
      if (f.multi) fo["multi"] = true;
    }
    if (f.kind == FieldKind::kRelation) {
      fo["collection"] = f.collection;
      fo["on_delete"] = OnDeleteName(f.on_delete);
    }
    fields.emplace_back(std::move(fo));
  }
  out["fields"] = std::move(fields);
  json::array indexes;
  for (const auto& index : spec.indexes) {
    json::array fs;
    for (const auto& f : index.fields) fs.emplace_back(f);
    indexes.emplace_back(json::object{{"fields", std::move(fs)}, {"unique", index.unique}, {"name", index.name}});
  }
  out["indexes"] = std::move(indexes);
  json::object rules;
  auto put = [&](const char* key, const std::optional<std::string>& rule) {
    rules[key] = rule ? json::value(*rule) : json::value(nullptr);
  };
  put("list", spec.rules.list);
  put("view", spec.rules.view);
  put("create", spec.rules.create);
  put("update", spec.rules.update);
  put("delete", spec.rules.del);
  out["rules"] = std::move(rules);
  return out;
}

}  // namespace basalt::schema
