// basalt: the command line. Parses flags (CLI11), loads and validates settings, runs a command.
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "api/routes.hpp"
#include "app/admin.hpp"
#include "app/database.hpp"
#include "app/serve.hpp"
#include "app/system_migrations.hpp"
#include "audit/audit.hpp"
#include "schema/catalog.hpp"
#include "schema/schema_io.hpp"
#include "schema/secrets.hpp"
#include "store/migrations.hpp"
#include "config/settings.hpp"
#include "obs/log.hpp"

namespace {

using basalt::config::Settings;

constexpr int kUsageError = 2;

// Flags every command takes; each maps to a setting override so that flags, environment and
// file go through one validation path.
struct CommonFlags {
  std::string config_file;
  std::string data_dir;
  std::string host;
  std::string port;
  std::string role;
};

void AddCommon(CLI::App* cmd, CommonFlags& flags, bool listen_flags) {
  cmd->add_option("--config", flags.config_file, "TOML settings file (default: ./basalt.toml if present)");
  cmd->add_option("--data-dir", flags.data_dir, "Data directory (default ./basalt_data)");
  if (listen_flags) {
    cmd->add_option("--host", flags.host, "Listen address (default 127.0.0.1)");
    cmd->add_option("--port", flags.port, "Listen port, 0 for any free port (default 8090)");
  }
}

basalt::config::Sources SourcesFrom(const CommonFlags& flags) {
  basalt::config::Sources sources;
  if (!flags.config_file.empty()) {
    sources.file = flags.config_file;
  } else if (std::filesystem::exists("basalt.toml")) {
    sources.file = "basalt.toml";
  }
  sources.env = basalt::config::ProcessEnvironment();
  if (!flags.host.empty()) sources.overrides.emplace_back("server.host", flags.host);
  if (!flags.port.empty()) sources.overrides.emplace_back("server.port", flags.port);
  if (!flags.role.empty()) sources.overrides.emplace_back("server.role", flags.role);
  if (!flags.data_dir.empty()) sources.overrides.emplace_back("storage.data_dir", flags.data_dir);
  return sources;
}

std::expected<Settings, int> LoadSettings(const CommonFlags& flags) {
  auto settings = basalt::config::Load(SourcesFrom(flags));
  if (!settings) {
    std::cerr << "basalt: invalid configuration (" << settings.error().size() << " problem"
              << (settings.error().size() == 1 ? "" : "s") << "):\n"
              << basalt::config::FormatProblems(settings.error());
    return std::unexpected(kUsageError);
  }
  return std::move(*settings);
}

std::string_view StateName(basalt::store::MigrationState state) {
  switch (state) {
    case basalt::store::MigrationState::kPending: return "pending";
    case basalt::store::MigrationState::kApplied: return "applied";
    case basalt::store::MigrationState::kModified: return "MODIFIED";
    case basalt::store::MigrationState::kUnknown: return "unknown";
  }
  return "?";
}

// `basalt migrate status|up|down`: exit 0 on success, 1 when the database refuses.
int RunMigrate(const Settings& settings, std::string_view action, int target, int count) {
  namespace app = basalt::app;
  auto database = app::OpenDatabase(settings, 1);
  if (!database) {
    std::cerr << "basalt: cannot open the database: " << database.error().message << "\n";
    return 1;
  }
  basalt::store::Migrator migrator(**database, app::SystemMigrations((*database)->dialect().Name()));
  int code = 0;
  if (action == "status") {
    auto status = app::RunBlocking(migrator.Status());
    if (!status) {
      std::cerr << "basalt: " << status.error().message << "\n";
      code = 1;
    } else {
      std::cout << "version  state     name\n";
      for (const auto& m : *status) {
        std::cout << m.version << "  " << StateName(m.state) << "  " << m.name
                  << (m.applied_at.empty() ? "" : "  (applied " + m.applied_at + ")") << "\n";
      }
      if (status->empty()) std::cout << "(no migrations)\n";
    }
  } else {
    auto result = action == "up" ? app::RunBlocking(migrator.Up(target > 0 ? std::optional<int>(target) : std::nullopt))
                                 : app::RunBlocking(migrator.Down(count));
    if (!result) {
      std::cerr << "basalt: " << result.error().message << "\n";
      code = 1;
    } else {
      std::cout << (action == "up" ? "applied " : "rolled back ") << *result << " migration(s)\n";
    }
  }
  (*database)->Close();
  return code;
}

// Options of `basalt schema export|import`.
struct SchemaFlags {
  std::string output;  // export: file to write ("" = stdout)
  std::string file;    // import: the document
  bool dry_run = false;
  bool prune = false;
};

void PrintError(const basalt::core::Error& error) {
  std::cerr << "basalt: " << error.message << "\n";
  for (const auto& f : error.fields)
    std::cerr << "  " << (f.field.empty() ? "(file)" : f.field) << ": " << f.message << "\n";
}

// `basalt schema export|import`: applies pending system migrations first (as `serve` does at
// start), loads the catalog, then exports or plans and applies an import. Exit 0 ok, 1 refused or
// failed, 2 unreadable or invalid file.
int RunSchema(const Settings& settings, bool is_export, const SchemaFlags& sf) {
  namespace app = basalt::app;
  namespace schema = basalt::schema;
  std::optional<schema::SchemaDocument> document;
  if (!is_export) {  // read and validate the file before touching the database
    std::ifstream in(sf.file, std::ios::binary);
    if (!in) {
      std::cerr << "basalt: cannot read " << sf.file << "\n";
      return kUsageError;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = schema::ParseSchemaDocument(text.str());
    if (!parsed) {
      PrintError(parsed.error());
      return kUsageError;
    }
    document = std::move(*parsed);
    auto keys = app::LoadKeyRing(settings);
    for (const auto& spec : document->collections) {
      if (schema::HasSecrets(spec) && (!keys || keys->empty())) {
        std::cerr << "basalt: collection '" << spec.name
                  << "' has secret fields: set secrets.keys first (nothing was changed)\n";
        return 1;
      }
    }
  }
  auto database = app::OpenForCommand(settings);
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
  if (is_export) {
    const std::string text = schema::Export(*catalog.snapshot());
    if (sf.output.empty() || sf.output == "-") {
      std::cout << text;
    } else {
      std::ofstream out(sf.output, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      if (!out) {
        std::cerr << "basalt: cannot write " << sf.output << "\n";
        return close(1);
      }
      std::cerr << "exported " << catalog.snapshot()->collections.size() << " collection(s) to " << sf.output << "\n";
    }
    return close(0);
  }
  const std::string dialect(database->dialect().Name());
  auto plan = schema::PlanImport(*document, *catalog.snapshot(), dialect, {.prune = sf.prune});
  if (!plan) {
    PrintError(plan.error());
    return close(kUsageError);
  }
  std::cout << schema::FormatPlan(*plan);
  if (plan->Refused()) {
    std::cerr << "basalt: the import is refused (unsafe changes above); nothing was changed\n";
    return close(1);
  }
  if (sf.dry_run) {
    std::cout << "dry run: nothing was changed\n";
    return close(0);
  }
  if (plan->Empty()) {
    std::cout << "nothing to do\n";
    return close(0);
  }
  auto applied = app::RunBlocking(schema::ApplyImport(*database, *plan));
  if (!applied) {
    PrintError(applied.error());
    std::cerr << "basalt: the import was rolled back; nothing was changed\n";
    return close(1);
  }
  std::cout << "applied in one transaction (a running server sees new collections on demand and "
               "changes after a restart)\n";
  return close(0);
}

// `basalt keys rotate`: re-encrypts every secret value under the active key (see
// schema::RotateSecrets). Safe while servers run. Exit 0 done, 1 failed (nothing lost), 2 no key.
int RunKeysRotate(const Settings& settings) {
  namespace app = basalt::app;
  namespace schema = basalt::schema;
  auto keys = app::LoadKeyRing(settings);
  if (!keys || keys->empty()) {
    std::cerr << "basalt: no encryption key is configured (secrets.keys)\n";
    return kUsageError;
  }
  auto database = app::OpenForCommand(settings);
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
  auto snapshot = catalog.snapshot();
  auto report = app::RunBlocking(schema::RotateSecrets(*database, *snapshot, *keys));
  if (!report) {
    std::cerr << "basalt: rotation stopped: " << report.error().message
              << "\n(values already rewritten stay readable; fix the key ring and run again)\n";
    return close(1);
  }
  std::cout << "active key " << keys->active_id() << ": " << report->rewritten << " value(s) re-encrypted, "
            << report->scanned - report->rewritten - report->changed << " already under it, in "
            << report->collections.size() << " collection(s)\n";
  if (report->changed > 0) {
    std::cout << report->changed << " value(s) changed during the run and were left alone; run again\n";
    return close(1);
  }
  return close(0);
}

// `basalt audit verify`: applies pending system migrations (as `serve` does), then walks the
// audit chain. Exit 0 with the count when every entry verifies; 1 naming the first bad entry (or
// when the database cannot be read).
int RunAuditVerify(const Settings& settings) {
  namespace app = basalt::app;
  auto database = app::OpenForCommand(settings);
  if (!database) return 1;
  auto close = [&](int code) {
    database->Close();
    return code;
  };
  basalt::audit::AuditLog log(*database);
  auto report = app::RunBlocking(log.Verify(0));
  if (!report) {
    std::cerr << "basalt: cannot read the audit log: " << report.error().message << "\n";
    return close(1);
  }
  if (!report->ok) {
    std::cerr << "basalt: audit log verification FAILED at entry " << report->bad_sequence;
    if (!report->bad_id.empty()) std::cerr << " (id " << report->bad_id << ")";
    std::cerr << ": " << report->reason << "\n"
              << report->count << " entr" << (report->count == 1 ? "y" : "ies") << " before it verified\n";
    return close(1);
  }
  std::cout << "audit log verified: " << report->count << " entr" << (report->count == 1 ? "y" : "ies") << "\n";
  return close(0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Basalt: a self-hosted backend server in one binary.", "basalt"};
  app.require_subcommand(1);
  CommonFlags flags;

  auto* serve = app.add_subcommand("serve", "Run the server until SIGTERM or SIGINT");
  AddCommon(serve, flags, true);
  serve->add_option("--role", flags.role, "api (HTTP only), worker (events dispatcher and webhook deliveries), all (default)");
  auto* version = app.add_subcommand("version", "Print the version and exit");
  auto* config = app.add_subcommand("config", "Inspect the configuration");
  config->require_subcommand(1);
  auto* check = config->add_subcommand("check", "Validate the configuration; exit 2 listing every problem");
  AddCommon(check, flags, true);
  auto* show = config->add_subcommand("show", "Print the effective configuration as TOML, secrets redacted");
  AddCommon(show, flags, true);
  auto* migrate = app.add_subcommand("migrate", "Inspect or change the system tables' migration state");
  migrate->require_subcommand(1);
  auto* migrate_status = migrate->add_subcommand("status", "List applied and pending migrations");
  AddCommon(migrate_status, flags, false);
  auto* migrate_up = migrate->add_subcommand("up", "Apply pending migrations (up to version N)");
  AddCommon(migrate_up, flags, false);
  int migrate_target = 0;
  migrate_up->add_option("N", migrate_target, "Target version (default: all)")->check(CLI::Range(1, 1000000));
  auto* migrate_down = migrate->add_subcommand("down", "Roll back the last N migrations (default 1)");
  AddCommon(migrate_down, flags, false);
  int migrate_count = 1;
  migrate_down->add_option("N", migrate_count, "How many to roll back")->check(CLI::Range(1, 1000000));
  auto* schema_cmd = app.add_subcommand("schema", "Move a whole schema (every collection) between environments");
  schema_cmd->require_subcommand(1);
  SchemaFlags schema_flags;
  auto* schema_export = schema_cmd->add_subcommand("export", "Print every collection as one JSON document");
  AddCommon(schema_export, flags, false);
  schema_export->add_option("--output,-o", schema_flags.output, "Write to FILE instead of stdout");
  auto* schema_import = schema_cmd->add_subcommand(
      "import", "Apply a schema document as a diff in one transaction (create, change, --prune drops)");
  AddCommon(schema_import, flags, false);
  schema_import->add_option("FILE", schema_flags.file, "The document written by `basalt schema export`")->required();
  schema_import->add_flag("--dry-run", schema_flags.dry_run, "Print the plan and its SQL; change nothing");
  schema_import->add_flag("--prune", schema_flags.prune, "Also drop collections absent from the file (and their records)");

  auto* keys_cmd = app.add_subcommand("keys", "Manage the encryption keys of secret fields");
  keys_cmd->require_subcommand(1);
  auto* keys_rotate = keys_cmd->add_subcommand(
      "rotate", "Re-encrypt every secret value under secrets.active_key (safe while servers run)");
  AddCommon(keys_rotate, flags, false);
  auto* audit_cmd = app.add_subcommand("audit", "Check the audit log");
  audit_cmd->require_subcommand(1);
  auto* audit_verify = audit_cmd->add_subcommand(
      "verify", "Walk the hash chain; exit 1 naming the first edited, deleted or reordered entry");
  AddCommon(audit_verify, flags, false);
  auto* admin_cmd = app.add_subcommand("admin", "Manage users from the command line");
  admin_cmd->require_subcommand(1);
  auto* admin_create = admin_cmd->add_subcommand("create", "Create an admin user");
  AddCommon(admin_create, flags, false);
  std::string admin_email, admin_password_file;
  admin_create->add_option("--email", admin_email, "The admin's email address")->required();
  admin_create->add_option("--password-file", admin_password_file,
                           "File holding the password (one trailing newline is ignored)")->required();
  auto* auth_cmd = app.add_subcommand("auth", "Token signing keys");
  auth_cmd->require_subcommand(1);
  auto* rotate_keys = auth_cmd->add_subcommand(
      "rotate-keys", "Add a new signing key; previous keys stay valid until their tokens expire");
  AddCommon(rotate_keys, flags, false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "basalt: " << e.what() << "\nRun 'basalt --help' for usage.\n";
    return kUsageError;
  }

  if (*version) {
    std::cout << "basalt " << basalt::api::BuildVersion() << " (" << basalt::api::BuildCommit() << ")\n";
    return 0;
  }
  auto settings = LoadSettings(flags);
  if (!settings) return settings.error();
  if (*check) {
    std::cout << "configuration is valid\n";
    return 0;
  }
  if (*show) {
    std::cout << basalt::config::Show(*settings);
    return 0;
  }
  if (*migrate) return RunMigrate(*settings, *migrate_status ? "status" : *migrate_up ? "up" : "down",
                                  migrate_target, migrate_count);
  if (*keys_cmd) return RunKeysRotate(*settings);
  if (*audit_verify) return RunAuditVerify(*settings);
  if (*schema_cmd) return RunSchema(*settings, static_cast<bool>(*schema_export), schema_flags);
  if (*admin_cmd) return basalt::app::AdminCreate(*settings, admin_email, admin_password_file);
  if (*auth_cmd) return basalt::app::RotateKeys(*settings);
  basalt::obs::LogLevel level = basalt::obs::LogLevel::kInfo;
  basalt::obs::ParseLogLevel(settings->log.level, level);  // validated by config::Load
  // Block SIGTERM/SIGINT/SIGHUP before the first thread (the log flusher) starts: a process-directed
  // signal goes to any thread that does not block it, and the default action would kill the
  // process before Serve's sigwait could turn it into a graceful shutdown.
  basalt::app::BlockShutdownSignals();
  basalt::obs::InitLogging({.level = level, .json = settings->log.format == basalt::config::LogFormat::kJson});
  try {
    // SIGHUP reads the same sources again (a default basalt.toml that appeared since counts).
    const basalt::app::SettingsLoader reload = [&flags]() -> std::expected<Settings, std::string> {
      auto loaded = basalt::config::Load(SourcesFrom(flags));
      if (!loaded) return std::unexpected(basalt::config::FormatProblems(loaded.error()));
      return std::move(*loaded);
    };
    return basalt::app::Serve(*settings, reload);
  } catch (const std::exception& e) {
    basalt::obs::Log(basalt::obs::LogLevel::kError, "fatal", {{"error", e.what()}});
    basalt::obs::FlushLogs();
    return 1;
  }
}
