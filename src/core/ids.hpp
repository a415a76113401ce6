#pragma once
/// Identifiers: UUIDv7 (RFC 9562) for records and request ids.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace basalt::core {

/// A 128-bit UUID in network byte order.
using Uuid = std::array<std::uint8_t, 16>;

/// A new UUIDv7: 48-bit Unix milliseconds, then random bits. Uses a per-thread generator seeded
/// from the OS, so it takes no lock. Not for secrets (use a CSPRNG for those).
Uuid NewUuidV7();

/// Canonical lower-case text form, 36 characters: "0192c3b4-...".
std::string FormatUuid(const Uuid& id);

/// True when `text` is a request id we accept from a client: 1 to 128 characters of
/// [A-Za-z0-9._:-] (a UUID, a ULID, a trace-style id). Anything else is replaced, never echoed.
bool IsValidRequestId(std::string_view text);

}  // namespace basalt::core
