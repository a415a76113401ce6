#include "core/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

namespace basalt::core {

namespace {

constexpr std::string_view kPrefix = "bs1.";
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::string_view kIndexKeyLabel = "basalt blind index key v1";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool ValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::array<unsigned char, 32> HmacSha256(const unsigned char* key, std::size_t key_len, std::string_view a,
                                         std::string_view b = {}, std::string_view c = {}) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  // One-shot HMAC over the concatenation, separated by NUL bytes (the parts are length-free text
  // without NUL: names and values validated to hold none).
  std::string message(a);
  if (!b.empty() || !c.empty()) {
    message += '\0';
    message += b;
    message += '\0';
    message += c;
  }
  HMAC(EVP_sha256(), key, static_cast<int>(key_len), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), out.data(), &len);
  OPENSSL_cleanse(message.data(), message.size());
  return out;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64Url[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64Url[(buf << (6 - bits)) & 63];
  return out;
}

std::string Base64Encode(std::string_view in) {
  std::string out = Base64UrlEncode(in);
  for (char& c : out) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (out.size() % 4 != 0) out += '=';
  return out;
}

namespace {

/// A base64 character's value: the URL-safe alphabet, and the standard one's '+' and '/' when
/// `standard`; -1 for anything else.
int Sextet(char c, bool standard) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || (standard && c == '+')) return 62;
  if (c == '_' || (standard && c == '/')) return 63;
  return -1;
}

/// Decodes unpadded base64; nullopt for a character outside the alphabet, a dangling sextet, or
/// (when `canonical`) non-zero leftover bits, so that each value has exactly one encoding.
std::optional<std::string> DecodeSextets(std::string_view in, bool standard, bool canonical) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    const int v = Sextet(c, standard);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone sextet cannot end valid base64
  if (canonical && bits > 0 && (buf & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> Base64UrlDecode(std::string_view in) { return DecodeSextets(in, false, true); }

std::optional<std::string> Base64Decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  return DecodeSextets(in, true, false);
}

Result<KeyRing> KeyRing::Make(std::vector<SecretKey> keys, std::string_view active) {
  std::set<std::string> seen;
  for (const auto& k : keys) {
    if (!ValidKeyId(k.id))
      return Fail(ErrorCode::kValidation, "key id '" + k.id.substr(0, 40) + "' must match ^[A-Za-z0-9_-]{1,32}$");
    if (!seen.insert(k.id).second) return Fail(ErrorCode::kValidation, "key id '" + k.id + "' is listed twice");
  }
  if (!active.empty() && !seen.contains(std::string(active)))
    return Fail(ErrorCode::kValidation, "the active key '" + std::string(active.substr(0, 40)) + "' is not in the key list");
  KeyRing ring;
  for (auto& k : keys) {
    Entry e;
    e.key = std::move(k);
    e.index_key = HmacSha256(e.key.key.data(), e.key.key.size(), kIndexKeyLabel);
    ring.keys_.push_back(std::move(e));
  }
  if (!active.empty()) {
    auto it = std::find_if(ring.keys_.begin(), ring.keys_.end(), [&](const Entry& e) { return e.key.id == active; });
    std::rotate(ring.keys_.begin(), it, it + 1);
  }
  return ring;
}

Result<KeyRing> KeyRing::Parse(std::string_view text, std::string_view active) {
  std::vector<SecretKey> keys;
  std::size_t pos = 0;
  std::size_t index = 0;
  while (pos < text.size()) {
    // Comments run to the end of the line.
    if (text[pos] == '#') {
      const std::size_t nl = text.find('\n', pos);
      pos = nl == std::string_view::npos ? text.size() : nl + 1;
      continue;
    }
    if (text[pos] == ',' || text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t') {
      ++pos;
      continue;
    }
    std::size_t end = text.find_first_of(", \n\r\t", pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view entry = text.substr(pos, end - pos);
    pos = end;
    ++index;
    const std::string which = "entry " + std::to_string(index);
    const std::size_t colon = entry.find(':');
    if (colon == std::string_view::npos)
      return Fail(ErrorCode::kValidation, which + " must be id:base64key");
    SecretKey key;
    key.id = std::string(entry.substr(0, colon));
    if (!ValidKeyId(key.id)) return Fail(ErrorCode::kValidation, which + ": the key id must match ^[A-Za-z0-9_-]{1,32}$");
    auto raw = Base64Decode(entry.substr(colon + 1));
    if (!raw) return Fail(ErrorCode::kValidation, "key '" + key.id + "' is not valid base64");
    if (raw->size() != key.key.size()) {
      const std::size_t n = raw->size();
      OPENSSL_cleanse(raw->data(), raw->size());
      return Fail(ErrorCode::kValidation,
                  "key '" + key.id + "' must be 32 bytes (256 bits), got " + std::to_string(n));
    }
    std::copy(raw->begin(), raw->end(), key.key.begin());
    OPENSSL_cleanse(raw->data(), raw->size());
    keys.push_back(std::move(key));
  }
  return Make(std::move(keys), active);
}

const std::string& KeyRing::active_id() const {
  static const std::string kEmpty;
  return keys_.empty() ? kEmpty : keys_.front().key.id;
}

std::vector<std::string> KeyRing::ids() const {
  std::vector<std::string> out;
  for (const auto& e : keys_) out.push_back(e.key.id);
  return out;
}

const KeyRing::Entry* KeyRing::Find(std::string_view id) const {
  for (const auto& e : keys_) {
    if (e.key.id == id) return &e;
  }
  return nullptr;
}

Result<std::string> KeyRing::Seal(std::string_view plaintext, std::string_view aad) const {
  if (keys_.empty()) return Fail(ErrorCode::kUnavailable, "No encryption key is configured (secrets.keys).");
  const Entry& e = keys_.front();
  std::string blob(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(blob.data());
  if (RAND_bytes(bytes, static_cast<int>(kNonceBytes)) != 1)
    return Fail(ErrorCode::kInternal, "Encryption failed.", "RAND_bytes failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, e.key.key.data(), bytes) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1;
  int written = 0;
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(ctx.get(), bytes + kNonceBytes, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                           static_cast<int>(plaintext.size())) == 1;
    written = len;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), bytes + kNonceBytes + written, &len) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                           bytes + kNonceBytes + plaintext.size()) == 1;
  if (!ok) return Fail(ErrorCode::kInternal, "Encryption failed.", "EVP AES-256-GCM encryption failed");
  return std::string(kPrefix) + e.key.id + "." + Base64UrlEncode(blob);
}

std::string KeyRing::KeyIdOf(std::string_view sealed) {
  if (!sealed.starts_with(kPrefix)) return {};
  sealed.remove_prefix(kPrefix.size());
  const std::size_t dot = sealed.find('.');
  if (dot == std::string_view::npos || !ValidKeyId(sealed.substr(0, dot))) return {};
  return std::string(sealed.substr(0, dot));
}

Result<std::string> KeyRing::Open(std::string_view sealed, std::string_view aad) const {
  const std::string id = KeyIdOf(sealed);
  if (id.empty()) return Fail(ErrorCode::kValidation, "The sealed value is malformed.");
  auto blob = Base64Decode(sealed.substr(kPrefix.size() + id.size() + 1));
  if (!blob || blob->size() < kNonceBytes + kTagBytes)
    return Fail(ErrorCode::kValidation, "The sealed value is malformed.");
  const Entry* e = Find(id);
  if (!e) return Fail(ErrorCode::kNotFound, "The value is sealed under key '" + id + "', which is not in the key ring.");
  auto* bytes = reinterpret_cast<unsigned char*>(blob->data());
  const std::size_t n = blob->size() - kNonceBytes - kTagBytes;
  std::string plaintext(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, e->key.key.data(), bytes) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1;
  int written = 0;
  if (ok && n > 0) {
    ok = EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &len, bytes + kNonceBytes,
                           static_cast<int>(n)) == 1;
    written = len;
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                                 bytes + kNonceBytes + n) == 1 &&
       EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()) + written, &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Fail(ErrorCode::kForbidden, "The sealed value does not authenticate (tampered, or moved from another row).");
  }
  return plaintext;
}

std::string KeyRing::Index(const Entry& e, std::string_view context, std::string_view plaintext) {
  const auto mac = HmacSha256(e.index_key.data(), e.index_key.size(), "basalt-bi-v1", context, plaintext);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

std::string KeyRing::BlindIndex(std::string_view context, std::string_view plaintext) const {
  if (keys_.empty()) return {};
  return Index(keys_.front(), context, plaintext);
}

std::vector<std::string> KeyRing::BlindIndexes(std::string_view context, std::string_view plaintext) const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const auto& e : keys_) out.push_back(Index(e, context, plaintext));
  return out;
}

std::string RandomToken(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return Base64UrlEncode(raw);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

PartsHash& PartsHash::Add(std::string_view part) {
  buffer_ += std::to_string(part.size());
  buffer_ += ':';
  buffer_ += part;
  return *this;
}

}  // namespace basalt::core
