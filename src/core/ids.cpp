#include "core/ids.hpp"

#include <chrono>
#include <random>

namespace basalt::core {
namespace {

// splitmix64-seeded xoshiro256** : fast, per-thread, good statistical quality.
class FastRandom {
 public:
  FastRandom() {
    std::random_device rd;
    std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    for (auto& s : state_) s = SplitMix(seed);
  }
  std::uint64_t Next() {
    const std::uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t SplitMix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
};

}  // namespace

Uuid NewUuidV7() {
  thread_local FastRandom rng;
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  const std::uint64_t r1 = rng.Next();
  const std::uint64_t r2 = rng.Next();
  Uuid id{};
  for (int i = 0; i < 6; ++i) id[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  for (int i = 6; i < 8; ++i) id[i] = static_cast<std::uint8_t>(r1 >> (8 * i));
  for (int i = 8; i < 16; ++i) id[i] = static_cast<std::uint8_t>(r2 >> (8 * (i - 8)));
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0f) | 0x70);  // version 7
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3f) | 0x80);  // variant 10
  return id;
}

std::string FormatUuid(const Uuid& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++pos;  // keep the '-'
    out[pos++] = kHex[id[i] >> 4];
    out[pos++] = kHex[id[i] & 0xf];
  }
  return out;
}

bool IsValidRequestId(std::string_view text) {
  if (text.empty() || text.size() > 128) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace basalt::core
