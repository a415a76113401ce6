#include "schema/record.hpp"

#include <boost/json.hpp>

#include "schema/ddl.hpp"

namespace basalt::schema {
namespace json = boost::json;

namespace {

bool IsBlank(const FieldSpec& f, const json::value& v) {
  if (v.is_null()) return true;
  if (v.is_string() && v.as_string().empty() &&
      (f.kind == FieldKind::kText || f.kind == FieldKind::kSecret || f.kind == FieldKind::kEmail || f.kind == FieldKind::kUrl ||
       f.kind == FieldKind::kSelect || f.kind == FieldKind::kRelation || f.kind == FieldKind::kDatetime))
    return true;
  if (v.is_array() && v.as_array().empty() && f.kind == FieldKind::kSelect) return true;
  return false;
}

store::Value ToStore(const FieldSpec& f, const json::value& v) {
  if (v.is_null()) return store::Null{};
  switch (f.kind) {
    case FieldKind::kInteger: return v.as_int64();
    case FieldKind::kNumber:
      if (v.is_int64()) return static_cast<double>(v.as_int64());
      if (v.is_uint64()) return static_cast<double>(v.as_uint64());
      return v.as_double();
    case FieldKind::kBool: return v.as_bool();
    case FieldKind::kDatetime: return NormalizeDatetime(v.as_string()).value_or(std::string(v.as_string()));
    case FieldKind::kJson: return json::serialize(v);
    case FieldKind::kSelect:
      if (f.multi) return json::serialize(v);
      return std::string(v.as_string());
    default:
      // An empty string for a non-required relation or datetime means "none".
      if ((f.kind == FieldKind::kRelation || f.kind == FieldKind::kDatetime) && v.as_string().empty())
        return store::Null{};
      return std::string(v.as_string());
  }
}

}  // namespace

json::value MergePatch(json::value target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = json::object();
  json::object& t = target.as_object();
  for (const auto& [key, value] : patch.as_object()) {
    if (value.is_null()) {
      t.erase(key);
    } else {
      json::value current = t.contains(key) ? t.at(key) : json::value(nullptr);
      t[key] = MergePatch(std::move(current), value);
    }
  }
  return target;
}

core::Result<Columns> ValidateRecord(const CollectionSpec& spec, const json::value& body, WriteMode mode,
                                     const json::object* current) {
  std::vector<core::FieldError> errors;
  if (!body.is_object()) {
    core::Error error = core::Error::Make(core::ErrorCode::kValidation, "The record must be a JSON object.");
    error.fields.push_back({"", "type", "must be a JSON object"});
    return std::unexpected(std::move(error));
  }
  for (const auto& [key, _] : body.as_object()) {
    if (IsSystemField(key)) errors.push_back({std::string(key), "read_only", "is set by the server"});
    else if (!spec.Find(key)) errors.push_back({std::string(key), "unknown_field", "is not a field of this collection"});
  }
  json::object effective;
  if (mode == WriteMode::kMerge) {
    json::object base;
    if (current) {
      for (const auto& f : spec.fields) {
        if (const json::value* v = current->if_contains(f.name); v && !v->is_null()) base[f.name] = *v;
      }
    }
    json::object patch;
    for (const auto& [key, value] : body.as_object()) {
      if (spec.Find(key)) patch[key] = value;
    }
    json::value merged = MergePatch(json::value(std::move(base)), json::value(std::move(patch)));
    effective = std::move(merged.as_object());
  } else {
    effective = body.as_object();
  }
  Columns columns;
  columns.reserve(spec.fields.size());
  for (const auto& f : spec.fields) {
    // PATCH without the secret: it keeps its stored value (SealSecrets copies it), which the
    // current record (RowToJson) does not show.
    if (f.kind == FieldKind::kSecret && mode == WriteMode::kMerge && !body.as_object().contains(f.name)) {
      columns.emplace_back(f.name, store::Null{});
      continue;
    }
    const json::value* v = effective.if_contains(f.name);
    json::value value = (v && !v->is_null()) ? *v : json::value(nullptr);
    if (value.is_null() && f.default_value) value = *f.default_value;
    if (IsBlank(f, value)) {
      if (f.required) {
        errors.push_back({f.name, "required", "is required"});
        continue;
      }
      if (value.is_null()) {
        columns.emplace_back(f.name, store::Null{});
        continue;
      }
      if (f.kind == FieldKind::kSelect && f.multi) {
        columns.emplace_back(f.name, std::string("[]"));
        continue;
      }
      if (f.kind == FieldKind::kSelect || f.kind == FieldKind::kRelation || f.kind == FieldKind::kDatetime) {
        columns.emplace_back(f.name, store::Null{});  // "" means none
        continue;
      }
    }
    if (auto e = CheckValue(f, value)) {
      errors.push_back(std::move(*e));
      continue;
    }
    columns.emplace_back(f.name, ToStore(f, value));
  }
  if (!errors.empty()) {
    core::Error error = core::Error::Make(core::ErrorCode::kValidation, "The record is invalid.");
    error.fields = std::move(errors);
    return std::unexpected(std::move(error));
  }
  return columns;
}

core::Result<void> SealSecrets(const CollectionSpec& spec, std::string_view id, const core::KeyRing* keys,
                               WriteMode mode, const json::value& body, const std::vector<store::Value>* current_row,
                               Columns& columns) {
  if (!HasSecrets(spec)) return {};
  const std::size_t n = spec.fields.size();
  std::size_t secret_index = 0;
  Columns blind;
  for (std::size_t k = 0; k < n && k < columns.size(); ++k) {
    const FieldSpec& f = spec.fields[k];
    if (f.kind != FieldKind::kSecret) continue;
    const std::size_t j = secret_index++;
    const bool keep = mode == WriteMode::kMerge && body.is_object() && !body.as_object().contains(f.name);
    if (keep) {
      if (current_row && current_row->size() > 4 + n + j) {
        columns[k].second = (*current_row)[4 + k];
        blind.emplace_back(BlindIndexColumn(f.name), (*current_row)[4 + n + j]);
      } else {
        return core::Fail(core::ErrorCode::kInternal, "The record cannot be updated.", "merge without the current row");
      }
      continue;
    }
    const auto* plain = std::get_if<std::string>(&columns[k].second);
    if (!plain) {
      blind.emplace_back(BlindIndexColumn(f.name), store::Null{});
      continue;
    }
    if (!keys || keys->empty())
      return core::Fail(core::ErrorCode::kUnavailable,
                        "Secret fields cannot be written: no encryption key is configured (secrets.keys).");
    auto sealed = keys->Seal(*plain, SecretAad(spec.name, f.name, id));
    if (!sealed) return std::unexpected(std::move(sealed.error()));
    std::string index = keys->BlindIndex(SecretContext(spec.name, f.name), *plain);
    columns[k].second = std::move(*sealed);
    blind.emplace_back(BlindIndexColumn(f.name), std::move(index));
  }
  for (auto& c : blind) columns.push_back(std::move(c));
  return {};
}

std::string SelectList(const CollectionSpec& spec, std::string_view alias) {
  const std::string prefix = alias.empty() ? std::string() : Quote(alias) + ".";
  std::string out = prefix + "\"id\", " + prefix + "\"created_at\", " + prefix + "\"updated_at\", " + prefix + "\"version\"";
  for (const auto& f : spec.fields) out += ", " + prefix + Quote(f.name);
  for (const auto& f : spec.fields) {
    if (f.kind == FieldKind::kSecret) out += ", " + prefix + Quote(BlindIndexColumn(f.name));
  }
  return out;
}

json::object RowToJson(const CollectionSpec& spec, const std::vector<store::Value>& row) {
  json::object out;
  auto text = [](const store::Value& v) -> json::value {
    if (const auto* s = std::get_if<std::string>(&v)) return json::value(*s);
    return json::value(nullptr);
  };
  if (row.size() < 4 + spec.fields.size()) return out;
  out["id"] = text(row[0]);
  out["created_at"] = text(row[1]);
  out["updated_at"] = text(row[2]);
  if (const auto* i = std::get_if<std::int64_t>(&row[3])) out["version"] = *i;
  for (std::size_t k = 0; k < spec.fields.size(); ++k) {
    const FieldSpec& f = spec.fields[k];
    if (f.kind == FieldKind::kSecret) continue;  // never returned
    const store::Value& v = row[4 + k];
    json::value jv = nullptr;
    if (std::holds_alternative<store::Null>(v)) {
      jv = (f.kind == FieldKind::kSelect && f.multi) ? json::value(json::array()) : json::value(nullptr);
    } else {
      switch (f.kind) {
        case FieldKind::kInteger:
          if (const auto* i = std::get_if<std::int64_t>(&v)) jv = *i;
          else if (const auto* d = std::get_if<double>(&v)) jv = static_cast<std::int64_t>(*d);
          break;
        case FieldKind::kNumber:
          if (const auto* d = std::get_if<double>(&v)) jv = *d;
          else if (const auto* i = std::get_if<std::int64_t>(&v)) jv = static_cast<double>(*i);
          break;
        case FieldKind::kBool:
          if (auto b = store::AsBool(v)) jv = *b;
          break;
        case FieldKind::kJson:
        case FieldKind::kSelect:
          if (const auto* s = std::get_if<std::string>(&v)) {
            if (f.kind == FieldKind::kSelect && !f.multi) {
              jv = json::value(*s);
            } else {
              boost::system::error_code ec;
              jv = json::parse(*s, ec);
              if (ec) jv = json::value(*s);
            }
          }
          break;
        default:
          jv = text(v);
      }
    }
    out[f.name] = std::move(jv);
  }
  return out;
}

}  // namespace basalt::schema
