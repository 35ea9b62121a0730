#include "nudge/migrations.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <string_view>

#include "nudge/log.hpp"

namespace nudge {

namespace {

// Any fixed key works; it only has to be the same in every Nudge process.
constexpr long long kMigrationLockKey = 0x4e75646765;  // "Nudge"
constexpr std::string_view kBreakingMarker = "--! breaking-change";

// FNV-1a: stable across builds and platforms, enough to notice an edited migration.
std::string checksum(const char* text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char* p = text; *p != '\0'; ++p) {
    h ^= static_cast<unsigned char>(*p);
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

struct Applied {
  std::string name;
  std::string checksum;
  bool breaking = false;
};

std::map<int, Applied> applied_migrations(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  std::map<int, Applied> out;
  for (const auto& row : tx.exec("SELECT version, name, checksum, breaking FROM nudge.migrations"))
    out[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<bool>()};
  return out;
}

std::optional<std::string> newer_breaking_migration(const std::map<int, Applied>& applied) {
  for (const auto& [version, migration] : applied) {
    if (version > embedded_migrations().back().version && migration.breaking)
      return "the database is at migration " + migration.name + ", which this binary does not know";
  }
  return std::nullopt;
}

// Refuses a database that holds a breaking migration this binary does not know.
void check_not_too_new(const std::map<int, Applied>& applied) {
  const auto& known = embedded_migrations();
  const Migration& newest = known.back();
  for (const auto& [version, migration] : applied) {
    if (version <= newest.version) continue;
    if (!migration.breaking) {
      log::warn(
          "the database has a newer migration this binary does not know; it is marked "
          "compatible, so this binary runs on",
          {{"database_migration", migration.name}, {"binary_migration", newest.name}});
      continue;
    }
    throw SchemaTooNew("the database schema is at migration " + migration.name +
                       ", which older binaries cannot work with; this binary knows migrations up "
                       "to " +
                       newest.name + ": upgrade it");
  }
}

class AdvisoryLock {
 public:
  explicit AdvisoryLock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  ~AdvisoryLock() {
    try {
      pqxx::nontransaction tx(conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    } catch (const std::exception&) {
      // The lock dies with the session anyway.
    }
  }
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;

 private:
  pqxx::connection& conn_;
};

}  // namespace

bool Migration::breaking() const {
  return std::string_view(sql).starts_with(kBreakingMarker);
}

int migrate(pqxx::connection& conn) {
  AdvisoryLock lock(conn);
  {
    pqxx::nontransaction tx(conn);
    tx.exec(
        "CREATE SCHEMA IF NOT EXISTS nudge;"
        "CREATE TABLE IF NOT EXISTS nudge.migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " breaking boolean NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
        "COMMENT ON TABLE nudge.migrations IS 'The migrations applied to this database; a "
        "binary refuses to start when a breaking one is newer than it knows.'");
  }
  const auto applied = applied_migrations(conn);
  check_not_too_new(applied);
  int count = 0;
  for (const auto& m : embedded_migrations()) {
    const std::string sum = checksum(m.sql);
    if (const auto it = applied.find(m.version); it != applied.end()) {
      if (it->second.checksum != sum)
        throw std::runtime_error(std::string("migration ") + m.name +
                                 " was edited after it was applied; add a new migration instead");
      continue;
    }
    pqxx::work tx(conn);
    // The row goes in first, so a process that somehow races past the lock fails on the key
    // instead of applying the body twice.
    tx.exec_params(
        "INSERT INTO nudge.migrations (version, name, checksum, breaking) VALUES ($1, $2, $3, $4)",
        m.version, std::string(m.name), sum, m.breaking());
    // Every name of ours is written schema-qualified: with only pg_catalog on the path, a name
    // that is not fails here, in the migration, instead of resolving to a user's object later.
    tx.exec("SET LOCAL search_path = pg_catalog, pg_temp");
    tx.exec(m.sql);
    tx.commit();
    log::info("applied migration", {{"migration", m.name}});
    ++count;
  }
  return count;
}

std::optional<std::string> schema_problem(pqxx::connection& conn) {
  {
    pqxx::nontransaction tx(conn);
    if (!tx.exec1("SELECT to_regclass('nudge.migrations') IS NOT NULL")[0].as<bool>())
      return "no migration is applied";
  }
  const auto applied = applied_migrations(conn);
  for (const auto& m : embedded_migrations()) {
    if (!applied.contains(m.version)) return std::string("migration ") + m.name + " is not applied";
  }
  return newer_breaking_migration(applied);
}

std::optional<std::string> newer_breaking_migration(pqxx::connection& conn) {
  return newer_breaking_migration(applied_migrations(conn));
}

bool is_migrated(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  const auto exists = tx.exec1("SELECT to_regclass('nudge.migrations') IS NOT NULL")[0].as<bool>();
  if (!exists) return false;
  const auto applied = tx.exec_params1("SELECT count(*) FROM nudge.migrations WHERE version <= $1",
                                       embedded_migrations().back().version);
  return applied[0].as<std::size_t>() >= embedded_migrations().size();
}

}  // namespace nudge
