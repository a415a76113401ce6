#pragma once
/// The JWT codec (RFC 7519) for Ed25519-signed tokens (RFC 8037, `alg: EdDSA`): base64url,
/// key generation, signing, and strict decoding. Claim checks (iss, aud, exp) live in TokenService.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/error.hpp"

namespace basalt::auth {

/// An Ed25519 key pair; raw 32-byte keys (RFC 8032).
struct SigningKey {
  std::string kid;          ///< Key id, written in the JWT header and the JWKS.
  std::string private_key;  ///< 32 raw bytes (the seed); empty for a verify-only key.
  std::string public_key;   ///< 32 raw bytes.
  std::int64_t created_at = 0;  ///< Unix seconds.
};

/// A fresh key pair from OpenSSL's CSPRNG. Errors: kInternal.
core::Result<SigningKey> GenerateSigningKey(std::string kid, std::int64_t created_at);
/// The public key of a 32-byte private key. Errors: kInternal.
core::Result<std::string> Ed25519PublicKey(std::string_view private_key);

/// Signs `payload` as a compact JWS with header {"alg":"EdDSA","typ":"JWT","kid":key.kid}.
/// Errors: kInternal (no private key, OpenSSL failure).
core::Result<std::string> SignJwt(const SigningKey& key, const boost::json::object& payload);

/// A compact JWS split and decoded, before its signature is checked.
struct DecodedJwt {
  boost::json::object header;
  boost::json::object payload;
  std::string signing_input;  ///< "<header b64>.<payload b64>": what the signature covers.
  std::string signature;      ///< Raw bytes.
};

/// Splits and decodes a compact JWS: exactly three base64url parts, header and payload JSON
/// objects, at most `max_bytes` long. Does not check the signature or the algorithm.
/// Errors: kUnauthorized "malformed token".
core::Result<DecodedJwt> DecodeJwt(std::string_view token, std::size_t max_bytes = 8192);

/// True when `signature` is a valid Ed25519 signature of `message` by the 32-byte `public_key`.
bool VerifyEd25519(std::string_view public_key, std::string_view message, std::string_view signature);

}  // namespace basalt::auth
