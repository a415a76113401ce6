#pragma once
/// Small string helpers shared by the modules.

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace basalt::core {

/// Copies `text` to `out`, which has room for it; returns the end (for writers that fill a
/// buffer reserved for their longest output through a pointer).
inline char* CopyTo(char* out, std::string_view text) {
  std::memcpy(out, text.data(), text.size());
  return out + text.size();
}

/// `items` with `separator` between them ("" for none; empty items are kept: {"", "a"} gives
/// ",a" with ",").
inline std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += separator;
    out += items[i];
  }
  return out;
}

}  // namespace basalt::core
