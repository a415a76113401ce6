#pragma once
/// Encryption of `secret` field values: a key ring of 256-bit keys (AES-256-GCM, OpenSSL EVP)
/// with one active key, and keyed blind indexes (HMAC-SHA256) that make equality searchable.
///
/// A sealed value is text: `bs1.<key id>.<base64url(nonce[12] || ciphertext || tag[16])>`. "bs1"
/// versions the encoding; the key id says which key of the ring opens it, so values written under
/// an older key keep opening while the ring still holds that key (rotation without downtime). The
/// caller's associated data (collection, field, record id) is authenticated, never stored: a value
/// copied to another row or field does not open.
///
/// A blind index is base64url(HMAC-SHA256(index key, context || 0 || plaintext)), where the index
/// key is derived from a ring key (HMAC-SHA256(key, "basalt blind index key v1")), so it differs
/// from the encryption key. It is deterministic: equal plaintexts under the same key and context
/// give equal indexes (that equality, within one field, is what it reveals).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace basalt::core {

/// One key of the ring.
struct SecretKey {
  std::string id;                      ///< ^[A-Za-z0-9_-]{1,32}$.
  std::array<unsigned char, 32> key{};  ///< 256 bits.
};

/// An immutable set of keys, one of them active. Thread-safe (const after construction).
class KeyRing {
 public:
  /// An empty ring: Seal and BlindIndexes fail / give nothing.
  KeyRing() = default;

  /// Parses `text`: entries `id:base64key` separated by commas, spaces or newlines (lines starting
  /// with `#` are comments). Each key is standard or URL-safe base64 (padding optional) of exactly
  /// 32 bytes; ids are unique. `active` names the active key; empty means the first entry.
  /// Errors: kValidation whose message names the bad entry (never the key material).
  static Result<KeyRing> Parse(std::string_view text, std::string_view active = {});

  /// Builds a ring from keys (ids unique and valid); `active` empty means the first.
  static Result<KeyRing> Make(std::vector<SecretKey> keys, std::string_view active = {});

  bool empty() const { return keys_.empty(); }
  /// The active key's id ("" when empty).
  const std::string& active_id() const;
  /// Ids of every key, active first.
  std::vector<std::string> ids() const;

  /// Encrypts `plaintext` under the active key with a random 96-bit nonce, authenticating `aad`.
  /// Errors: kUnavailable when the ring is empty, kInternal when OpenSSL fails.
  Result<std::string> Seal(std::string_view plaintext, std::string_view aad) const;

  /// Decrypts a sealed value with the key its id names, checking `aad`. Errors: kValidation for a
  /// malformed value, kNotFound for a key id not in the ring, kForbidden when authentication fails
  /// (tampered value, wrong key or wrong associated data).
  Result<std::string> Open(std::string_view sealed, std::string_view aad) const;

  /// The key id of a sealed value, or "" when it is malformed.
  static std::string KeyIdOf(std::string_view sealed);

  /// The blind index of `plaintext` in `context` under the active key ("" when empty).
  std::string BlindIndex(std::string_view context, std::string_view plaintext) const;
  /// The blind index under every key of the ring, active first: a value indexed under any of them
  /// is found by comparing with all.
  std::vector<std::string> BlindIndexes(std::string_view context, std::string_view plaintext) const;

 private:
  struct Entry {
    SecretKey key;
    std::array<unsigned char, 32> index_key{};
  };
  const Entry* Find(std::string_view id) const;
  static std::string Index(const Entry& entry, std::string_view context, std::string_view plaintext);

  std::vector<Entry> keys_;  // active first
};

/// Base64url without padding (RFC 4648 §5).
std::string Base64UrlEncode(std::string_view bytes);
/// Strict base64url without padding: nullopt for any other character, padding, or an encoding
/// that is not canonical (a dangling sextet, non-zero trailing bits).
std::optional<std::string> Base64UrlDecode(std::string_view text);
/// Standard base64 with padding (RFC 4648 §4): HTTP Basic credentials, webhook signatures.
std::string Base64Encode(std::string_view bytes);
/// Decodes standard or URL-safe base64, padding optional; nullopt on any other character or a
/// dangling bit group.
std::optional<std::string> Base64Decode(std::string_view text);

/// `bytes` random bytes from OpenSSL's CSPRNG, base64url without padding (43 characters for the
/// default 256 bits). Throws std::runtime_error when the CSPRNG fails (nothing safe to do then).
std::string RandomToken(std::size_t bytes = 32);

/// Equality in time that depends only on the lengths (false for different lengths).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// SHA-256 of `data` as lower-case hex (64 characters).
std::string Sha256Hex(std::string_view data);

/// SHA-256 over a sequence of parts, each written as "<decimal length>:" followed by its bytes,
/// so ("ab", "c") and ("a", "bc") differ. Lower-case hex. The audit chain's hashes use this
/// exact format: changing it breaks `basalt audit verify` on existing logs.
class PartsHash {
 public:
  PartsHash& Add(std::string_view part);
  PartsHash& Add(std::int64_t number) { return Add(std::string_view(std::to_string(number))); }
  std::string HexDigest() const { return Sha256Hex(buffer_); }

 private:
  std::string buffer_;
};

}  // namespace basalt::core
