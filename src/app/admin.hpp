#pragma once
/// Identity commands: `basalt admin create` and `basalt auth rotate-keys`.

#include <string>

#include "config/settings.hpp"

namespace basalt::app {

/// Creates an admin user (roles ["admin"]) with the password read from `password_file` (the whole
/// file minus one trailing newline). Applies pending system migrations and creates the `users`
/// collection first when needed. Exit codes: 0 created, 1 refused (email taken) or failed,
/// 2 unreadable file or a password / email that the policy refuses.
int AdminCreate(const config::Settings& settings, const std::string& email, const std::string& password_file);

/// Adds a new current token signing key; previous keys stay valid until their tokens expire.
/// Running servers pick it up within a minute (or at once on an unknown kid). Exit 0 / 1.
int RotateKeys(const config::Settings& settings);

}  // namespace basalt::app
