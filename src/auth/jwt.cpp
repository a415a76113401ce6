#include "auth/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/crypto.hpp"

namespace basalt::auth {
namespace {

using core::ErrorCode;
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace


core::Result<std::string> Ed25519PublicKey(std::string_view private_key) {
  if (private_key.size() != 32) return core::Fail(ErrorCode::kInternal, "Invalid signing key.", "private key not 32 bytes");
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, Bytes(private_key), private_key.size()));
  if (!key) return core::Fail(ErrorCode::kInternal, "Invalid signing key.", "EVP_PKEY_new_raw_private_key");
  unsigned char pub[32];
  std::size_t len = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &len) != 1 || len != 32)
    return core::Fail(ErrorCode::kInternal, "Invalid signing key.", "EVP_PKEY_get_raw_public_key");
  return std::string(reinterpret_cast<char*>(pub), len);
}

core::Result<SigningKey> GenerateSigningKey(std::string kid, std::int64_t created_at) {
  unsigned char seed[32];
  if (RAND_bytes(seed, sizeof seed) != 1) return core::Fail(ErrorCode::kInternal, "Cannot create a key.", "RAND_bytes");
  SigningKey key;
  key.kid = std::move(kid);
  key.private_key.assign(reinterpret_cast<char*>(seed), sizeof seed);
  OPENSSL_cleanse(seed, sizeof seed);
  auto pub = Ed25519PublicKey(key.private_key);
  if (!pub) return std::unexpected(std::move(pub.error()));
  key.public_key = std::move(*pub);
  key.created_at = created_at;
  return key;
}

core::Result<std::string> SignJwt(const SigningKey& key, const boost::json::object& payload) {
  if (key.private_key.size() != 32) return core::Fail(ErrorCode::kInternal, "Cannot sign.", "no private key");
  boost::json::object header{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", key.kid}};
  std::string input = core::Base64UrlEncode(boost::json::serialize(header)) + "." +
                      core::Base64UrlEncode(boost::json::serialize(payload));
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, Bytes(key.private_key), 32));
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  std::size_t sig_len = sizeof sig;
  if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len, Bytes(input), input.size()) != 1) {
    return core::Fail(ErrorCode::kInternal, "Cannot sign.", "EVP_DigestSign (Ed25519)");
  }
  input += '.';
  input += core::Base64UrlEncode(std::string_view(reinterpret_cast<char*>(sig), sig_len));
  return input;
}

core::Result<DecodedJwt> DecodeJwt(std::string_view token, std::size_t max_bytes) {
  auto bad = [] { return core::Fail(ErrorCode::kUnauthorized, "The access token is malformed."); };
  if (token.empty() || token.size() > max_bytes) return bad();
  const std::size_t a = token.find('.');
  if (a == std::string_view::npos) return bad();
  const std::size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return bad();
  auto header = core::Base64UrlDecode(token.substr(0, a));
  auto payload = core::Base64UrlDecode(token.substr(a + 1, b - a - 1));
  auto signature = core::Base64UrlDecode(token.substr(b + 1));
  if (!header || !payload || !signature) return bad();
  boost::system::error_code ec1, ec2;
  boost::json::parse_options opts;
  opts.max_depth = 8;
  boost::json::value h = boost::json::parse(*header, ec1, {}, opts);
  boost::json::value p = boost::json::parse(*payload, ec2, {}, opts);
  if (ec1 || ec2 || !h.is_object() || !p.is_object()) return bad();
  DecodedJwt out;
  out.header = std::move(h.as_object());
  out.payload = std::move(p.as_object());
  out.signing_input = std::string(token.substr(0, b));
  out.signature = std::move(*signature);
  return out;
}

bool VerifyEd25519(std::string_view public_key, std::string_view message, std::string_view signature) {
  if (public_key.size() != 32 || signature.size() != 64) return false;
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(public_key), public_key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(message), message.size()) == 1;
}

}  // namespace basalt::auth
