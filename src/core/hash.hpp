#pragma once
/// Small non-cryptographic hashes for stable names and checksums (never for secrets).

#include <cstdint>
#include <string>
#include <string_view>

namespace basalt::core {

/// FNV-1a, 64 bits: stable across runs and platforms (migration checksums, index names).
constexpr std::uint64_t Fnv1a64(std::string_view data) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // offset basis
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ULL;  // prime
  }
  return hash;
}

/// Sixteen lower-case hex digits.
inline std::string Hex64(std::uint64_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = kHex[value & 0xf];
  return out;
}

}  // namespace basalt::core
