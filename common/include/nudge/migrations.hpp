#pragma once
// Forward-only schema migrations, compiled into the programs from sql/migrations/.

#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace nudge {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Every migration in version order (generated at build time).
const std::vector<Migration>& embedded_migrations();

// Applies pending migrations, each in its own transaction, recording them in schema_migrations.
// Processes starting together are serialised by an advisory lock; re-running is a no-op. Throws
// if an applied migration's text differs from the one compiled in (migrations are never edited).
// Returns how many it applied.
int migrate(pqxx::connection& conn);

// True when every compiled-in migration is recorded as applied.
bool is_migrated(pqxx::connection& conn);

}  // namespace nudge
