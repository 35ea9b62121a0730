#pragma once
// Forward-only schema migrations, compiled into the programs from sql/migrations/, recorded in
// nudge.migrations. A migration whose first line is `--! breaking-change` is one that older
// binaries cannot work with: a binary that finds such a migration it does not know refuses to
// start (SchemaTooNew) instead of running against a schema it does not understand.

#include <optional>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

namespace nudge {

struct Migration {
  int version;
  const char* name;
  const char* sql;

  // True when older binaries cannot work with the schema this migration leaves.
  bool breaking() const;
};

// Every migration in version order (generated at build time).
const std::vector<Migration>& embedded_migrations();

// The database holds a breaking migration this binary does not know: it must not run.
class SchemaTooNew : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A migration is pending and this login may not apply it (it does not own the schema): only
// its owner can, so retrying will not help.
class MigrationNotAllowed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Applies pending migrations, each in its own transaction, recording them in nudge.migrations.
// With none pending it only reads (no lock, no DDL: a login that may only use the schema can
// start). Processes migrating together are serialised by an advisory lock, waited for while no
// stop is requested; re-running is a no-op. Throws SchemaTooNew (naming the database's and this
// binary's newest versions) when the database holds a breaking migration newer than this binary,
// MigrationNotAllowed when one is pending that this login may not apply, and std::runtime_error
// if an applied migration's text differs from the one compiled in (migrations are never edited).
// Returns how many it applied.
int migrate(pqxx::connection& conn);

// True when every compiled-in migration is recorded as applied.
bool is_migrated(pqxx::connection& conn);

// Why this binary cannot work with the database's schema, in words ("migration 0007_metrics is
// not applied"; "the database is at migration 0009_x, which this binary does not know"), or
// nullopt when it can: every compiled-in migration is applied and no newer one is breaking.
std::optional<std::string> schema_problem(pqxx::connection& conn);

// The breaking migration newer than this binary that the database holds, in words ("the
// database is at migration 0009_x, which this binary does not know"), or nullopt: what a running
// worker checks, as one may land while it runs.
std::optional<std::string> newer_breaking_migration(pqxx::connection& conn);

}  // namespace nudge
