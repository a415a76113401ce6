#pragma once
/// Eight bytes at a time ("SIMD within a register"): finds whether a block of text holds any byte
/// that a writer must look at, so the common case (plain ASCII) is copied without a per-byte loop.
/// Each test says whether some byte of the word matches; which one is left to the caller's exact
/// per-byte code.

#include <cstdint>
#include <cstring>

namespace basalt::core::swar {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kHigh = 0x8080808080808080ULL;

/// The eight bytes at `p` (any alignment), in memory order.
inline std::uint64_t Load(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

/// Some byte of `word` is zero.
constexpr bool HasZero(std::uint64_t word) { return ((word - kOnes) & ~word & kHigh) != 0; }

/// Some byte of `word` equals `byte`.
constexpr bool HasByte(std::uint64_t word, unsigned char byte) { return HasZero(word ^ (kOnes * byte)); }

/// Some byte of `word` is below `bound` (bound <= 128).
constexpr bool HasLess(std::uint64_t word, unsigned char bound) {
  return ((word - kOnes * bound) & ~word & kHigh) != 0;
}

/// Some byte of `word` is 0x80 or above (not ASCII).
constexpr bool HasHigh(std::uint64_t word) { return (word & kHigh) != 0; }

}  // namespace basalt::core::swar
