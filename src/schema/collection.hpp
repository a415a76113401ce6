#pragma once
/// Collections: the typed tables a team defines. A CollectionSpec is parsed and validated from the
/// canonical JSON of `POST /api/v1/collections` (see DESIGN.md) and stored as that JSON in the
/// catalog table `basalt_collections`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/error.hpp"

namespace basalt::schema {

/// The type of a user field, as written in the spec's `"type"`.
enum class FieldKind {
  kText,      ///< "text": UTF-8 text.
  kInteger,   ///< "integer": 64-bit signed integer.
  kNumber,    ///< "number": IEEE double.
  kBool,      ///< "bool": true / false.
  kDatetime,  ///< "datetime": RFC 3339, stored normalised to UTC with milliseconds ("...T..:..:..mmmZ").
  kJson,      ///< "json": any JSON document except null, stored as JSON text.
  kEmail,     ///< "email": an address (text).
  kUrl,       ///< "url": an absolute http(s) URL (text).
  kSelect,    ///< "select": one of `values`, or with `multi` a JSON text array of them.
  kRelation,  ///< "relation": the id of a record of `collection` (a real FOREIGN KEY).
  /// "secret": text encrypted at rest (AES-256-GCM under the configured key ring), never returned
  /// by the API, searchable by equality only through a keyed blind index column
  /// (BlindIndexColumn). Not unique, no default, not indexable, never renamed; name <= 59 chars.
  kSecret,
};

/// What happens to a relation field when the referenced record is deleted.
enum class OnDelete {
  kRestrict,  ///< "restrict" (default): the delete fails (409) while referenced.
  kCascade,   ///< "cascade": referencing records are deleted too.
  kSetNull,   ///< "set_null": the field becomes null.
};

/// "text", "integer", ...
std::string_view KindName(FieldKind kind);
/// "restrict", "cascade", "set_null".
std::string_view OnDeleteName(OnDelete on_delete);

/// One user field.
struct FieldSpec {
  std::string name;                          ///< ^[a-z][a-z0-9_]{0,62}$, not a system field.
  FieldKind kind = FieldKind::kText;         ///< The type.
  bool required = false;                     ///< Null, missing or "" (text-like) is refused.
  bool unique = false;                       ///< Backed by a UNIQUE index.
  std::optional<boost::json::value> default_value;  ///< Valid for the field; used when missing.
  std::optional<double> min;                 ///< integer / number: smallest allowed value.
  std::optional<double> max;                 ///< integer / number: largest allowed value.
  std::optional<std::int64_t> min_length;    ///< text-like: fewest code points (select multi: items).
  std::optional<std::int64_t> max_length;    ///< text-like: most code points (select multi: items).
  std::optional<std::string> pattern;        ///< text / email / url: RE2, must match the whole value.
  std::vector<std::string> values;           ///< select: the allowed values (1..100, unique).
  bool multi = false;                        ///< select: many values (a JSON array).
  std::string collection;                    ///< relation: the target collection.
  OnDelete on_delete = OnDelete::kRestrict;  ///< relation: see OnDelete.
  /// Only in a collection change: the field's current name when it is being renamed.
  std::string previous_name;
};

/// A declared index.
struct IndexSpec {
  std::vector<std::string> fields;  ///< 1..8 user or system fields (not json, not multi).
  bool unique = false;              ///< A UNIQUE index.
  /// Database name of the index; generated at creation ("ix_<collection>_<hash>") and kept
  /// across renames, so the index can be dropped later.
  std::string name;
};

/// Access rules by action; nullopt = admins only, "" = public, else a filter expression.
struct Rules {
  std::optional<std::string> list;    ///< GET list.
  std::optional<std::string> view;    ///< GET one.
  std::optional<std::string> create;  ///< POST.
  std::optional<std::string> update;  ///< PATCH / PUT.
  std::optional<std::string> del;     ///< DELETE (JSON key "delete").
};

/// A collection definition.
struct CollectionSpec {
  std::string name;                ///< ^[a-z][a-z0-9_]{0,60}$ (the table is "c_" + name).
  std::vector<FieldSpec> fields;   ///< User fields in declaration order.
  std::vector<IndexSpec> indexes;  ///< Declared indexes.
  Rules rules;                     ///< Access rules.

  /// The user field with this name, or null.
  const FieldSpec* Find(std::string_view field) const;
};

/// The table of a collection: "c_" + name.
std::string TableName(std::string_view collection);

/// The column holding the blind index (keyed HMAC) of secret field `field`: "_bi_" + field. User
/// field names start with a letter, so it never collides with one.
std::string BlindIndexColumn(std::string_view field);

/// The blind index context of a secret field ("collection.field"): equal values index equally only
/// within one field.
std::string SecretContext(std::string_view collection, std::string_view field);

/// The associated data a secret value is sealed with: it binds the value to its collection, field
/// and record, so a ciphertext copied elsewhere does not open.
std::string SecretAad(std::string_view collection, std::string_view field, std::string_view record_id);

/// True when the spec has at least one secret field.
bool HasSecrets(const CollectionSpec& spec);

/// True for id, created_at, updated_at, version.
bool IsSystemField(std::string_view name);

/// True when `name` matches ^[a-z][a-z0-9_]{0,max_len-1}$.
bool IsValidName(std::string_view name, std::size_t max_len = 63);

/// Parses and validates a spec. Every problem is reported (kValidation, one FieldError each, with
/// paths like "fields[2].type"). Relation targets are not checked here (see Catalog), nor are
/// rules compiled (see ValidateRules). Generates missing index names.
core::Result<CollectionSpec> ParseCollectionSpec(const boost::json::value& json);

/// The canonical JSON of a spec (what ParseCollectionSpec accepts; `previous_name` omitted).
boost::json::object ToJson(const CollectionSpec& spec);

/// Validates one JSON value against a field: nullopt when valid, else {code, message}. `null`
/// is not handled here (see records). Used for defaults and record values.
std::optional<core::FieldError> CheckValue(const FieldSpec& field, const boost::json::value& value);

/// Parses an RFC 3339 timestamp ("2026-01-02T03:04:05Z", "...05.5+02:00", 't'/'z' allowed) and
/// returns it in UTC with exactly millisecond precision ("2026-01-02T01:04:05.500Z"), which sorts
/// lexically; nullopt when malformed (also for out-of-range fields or more than 9 fraction digits).
std::optional<std::string> NormalizeDatetime(std::string_view text);

/// Generates the index name for `fields` of `collection` (deterministic, <= 63 chars).
std::string IndexName(std::string_view collection, const std::vector<std::string>& fields, bool unique);

}  // namespace basalt::schema
