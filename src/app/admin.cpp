#include "app/admin.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/json/serialize.hpp>

#include "api/auth.hpp"
#include "app/database.hpp"
#include "auth/passwords.hpp"
#include "auth/tokens.hpp"
#include "auth/users.hpp"
#include "schema/catalog.hpp"

namespace basalt::app {
namespace {

constexpr int kUsageError = 2;

void PrintError(const core::Error& e) {
  std::cerr << "basalt: " << e.message << "\n";
  for (const auto& f : e.fields) std::cerr << "  " << f.field << ": " << f.message << "\n";
}

}  // namespace

int AdminCreate(const config::Settings& settings, const std::string& email_text, const std::string& password_file) {
  std::ifstream in(password_file, std::ios::binary);
  if (!in) {
    std::cerr << "basalt: cannot read the password file " << password_file << "\n";
    return kUsageError;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string password = text.str();
  if (password.ends_with("\r\n")) password.resize(password.size() - 2);
  else if (password.ends_with("\n")) password.pop_back();
  auto email = auth::NormalizeEmail(email_text);
  if (!email) {
    PrintError(email.error());
    return kUsageError;
  }
  if (auto ok = api::CheckPasswordPolicy(password, settings.auth.password_min_length); !ok) {
    PrintError(ok.error());
    return kUsageError;
  }
  auto database = OpenForCommand(settings);
  if (!database) return 1;
  auto close = [&](int code) {
    database->Close();
    return code;
  };
  schema::Catalog catalog(*database);
  if (auto loaded = catalog.LoadBlocking(); !loaded) {
    std::cerr << "basalt: cannot load the catalog: " << loaded.error().message << "\n";
    return close(1);
  }
  if (auto ensured = RunBlocking(api::EnsureUsersCollection(catalog, 0)); !ensured) {
    PrintError(ensured.error());
    return close(1);
  }
  auth::PasswordHasher hasher({.memory_kib = settings.auth.argon2_memory_kib,
                               .iterations = settings.auth.argon2_iterations,
                               .threads = 1});
  auto hash = hasher.HashNow(password);
  if (!hash) {
    PrintError(hash.error());
    return close(1);
  }
  auto snap = catalog.snapshot();
  const schema::Collection* users = snap->Find("users");
  api::NewUser user;
  user.email = *email;
  user.password_hash = std::move(*hash);
  user.roles = {"admin"};
  boost::json::object created;
  auto done = RunBlocking(api::CreateUser(*database, 0, *users, std::move(user), created));
  if (!done) {
    PrintError(done.error());
    return close(1);
  }
  std::cout << "created admin " << *email << " (id " << boost::json::serialize(created.at("id")) << ")\n";
  return close(0);
}

int RotateKeys(const config::Settings& settings) {
  auto database = OpenForCommand(settings);
  if (!database) return 1;
  auto close = [&](int code) {
    database->Close();
    return code;
  };
  auth::TokenService tokens(*database, {.issuer = settings.auth.issuer,
                                         .audience = settings.auth.audience,
                                         .ttl_s = settings.auth.access_token_ttl_s,
                                         .service_ttl_s = settings.auth.service_token_ttl_s,
                                         .leeway_s = settings.auth.clock_skew_s});
  if (auto loaded = RunBlocking(tokens.Load(0)); !loaded) {
    PrintError(loaded.error());
    return close(1);
  }
  auto kid = RunBlocking(tokens.Rotate(0));
  if (!kid) {
    PrintError(kid.error());
    return close(1);
  }
  std::cout << "new signing key " << *kid << "; previous keys stay valid until their tokens expire\n";
  return close(0);
}

}  // namespace basalt::app
