#include "nudge/migrations.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string_view>
#include <thread>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/shutdown.hpp"

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

// The migrations recorded, or nullopt before the first (no nudge.migrations yet).
std::optional<std::map<int, Applied>> recorded_migrations(pqxx::connection& conn) {
  {
    pqxx::nontransaction tx(conn);
    if (!tx.exec1("SELECT to_regclass('nudge.migrations') IS NOT NULL")[0].as<bool>())
      return std::nullopt;
  }
  return applied_migrations(conn);
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

// Whether every compiled-in migration is applied, each as compiled (std::runtime_error for one
// edited after it was applied: add a new migration instead).
bool all_applied(const std::map<int, Applied>& applied) {
  bool all = true;
  for (const auto& m : embedded_migrations()) {
    const auto it = applied.find(m.version);
    if (it == applied.end()) {
      all = false;
    } else if (it->second.checksum != checksum(m.sql)) {
      throw std::runtime_error(std::string("migration ") + m.name +
                               " was edited after it was applied; add a new migration instead");
    }
  }
  return all;
}

// Any session may take an advisory lock: one that holds this key must not hang a start for good
// nor keep it from stopping, so the lock is tried, the wait said, and a stop request honoured.
class AdvisoryLock {
 public:
  explicit AdvisoryLock(pqxx::connection& conn) : conn_(conn) {
    const auto started = std::chrono::steady_clock::now();
    for (bool said = false;;) {
      {
        pqxx::nontransaction tx(conn_);
        if (tx.exec_params1("SELECT pg_try_advisory_lock($1)", kMigrationLockKey)[0].as<bool>())
          return;
        if (!said && std::chrono::steady_clock::now() - started > std::chrono::seconds(2)) {
          const auto holder = tx.exec_params(
              // Advisory locks are per database: the same key may be held in another one.
              "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
              "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
              "AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid",
              kMigrationLockKey);
          log::warn(
              "waiting for the migration lock, which another session holds",
              {{"held_by_pid", holder.empty() ? std::string("unknown") : holder[0][0].c_str()}});
          said = true;
        }
      }
      if (shutdown_requested())
        throw std::runtime_error("stopped while waiting for the migration lock");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
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

// An application's transaction left open on a table a migration alters holds the migration's
// lock request, and every session queued behind that request with it: no fire for as long as the
// transaction stayed open (explore28a: 29 s with a 30 s one). So a migration waits at most this
// long for each lock, then gives way, says who holds one, and tries again.
constexpr const char* kMigrationLockWait = "2s";
constexpr auto kMigrationRetryPause = std::chrono::seconds(1);

// The sessions holding a lock on one of Nudge's tables, oldest transaction first: pid, program,
// state and age, never their statements (they may carry an application's data).
std::string lock_holders(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  const auto rows = tx.exec(
      "SELECT a.pid, coalesce(nullif(a.application_name, ''), '-'), coalesce(a.state, '-'), "
      "       coalesce(round(extract(epoch FROM now() - a.xact_start))::text, '?') "
      "  FROM pg_stat_activity a "
      " WHERE a.pid <> pg_backend_pid() AND a.pid IN ("
      "   SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
      "    WHERE l.granted AND c.relnamespace = 'nudge'::regnamespace) "
      " ORDER BY a.xact_start NULLS LAST LIMIT 5");
  std::string out;
  for (const auto& r : rows) {
    if (!out.empty()) out += ", ";
    out += std::string("pid ") + r[0].c_str() + " (" + r[1].c_str() + ", " + r[2].c_str() + ", " +
           r[3].c_str() + " s in its transaction)";
  }
  return out.empty() ? "unknown" : out;
}

// PostgreSQL 15 lets a login that is not a superuser set a parameter of no extension (nudge.*)
// on a function only once a superuser has granted it that: 0134 does, for the finish.
constexpr std::string_view kSetParameter = "nudge.\"placing\"";
const std::string kSetParameterHint =
    "a superuser must first run, once: GRANT SET ON PARAMETER \"nudge.placing\" TO the role that "
    "owns schema nudge (PostgreSQL 15 lets only a superuser set a parameter of no extension on a "
    "function); then run this again";

// Refuses, before anything is applied, to start migrations that would stop halfway at one a
// login may not apply for want of that grant (explore30c F1: a new install as a role that is not
// a superuser stopped at 0134 with the first 133 applied, told to run as the owner it was).
void check_can_set_parameters(pqxx::connection& conn, const std::map<int, Applied>& applied) {
  bool needed = false;
  for (const auto& m : embedded_migrations())
    needed = needed || (!applied.contains(m.version) &&
                        std::string_view(m.sql).find(kSetParameter) != std::string_view::npos);
  if (!needed) return;
  const pqxx::row r = pqxx::nontransaction(conn).exec1(
      "SELECT r.rolsuper OR has_parameter_privilege('nudge.placing', 'SET'), current_user "
      "FROM pg_roles r WHERE r.rolname = current_user");
  if (r[0].as<bool>()) return;
  throw MigrationNotAllowed(std::string("the migrations cannot be applied as ") + r[1].c_str() +
                            ": " + kSetParameterHint);
}

// Applies one migration in its own transaction, recording it; false when a lock it needed was
// held past kMigrationLockWait (nothing is applied then).
bool apply(pqxx::connection& conn, const Migration& m, const std::string& sum) {
  pqxx::work tx(conn);
  try {
    tx.exec(std::string("SET LOCAL lock_timeout = '") + kMigrationLockWait + "'");
    // The row goes in first, so a process that somehow races past the lock fails on the key
    // instead of applying the body twice.
    tx.exec_params(
        "INSERT INTO nudge.migrations (version, name, checksum, breaking) "
        "VALUES ($1, $2, $3, $4)",
        m.version, std::string(m.name), sum, m.breaking());
    // Every name of ours is written schema-qualified: with only pg_catalog on the path, a name
    // that is not fails here, in the migration, instead of resolving to a user's object later.
    tx.exec("SET LOCAL search_path = pg_catalog, pg_temp");
    tx.exec(m.sql);
  } catch (const pqxx::sql_error& e) {
    if (sqlstate_of(e) == "55P03") return false;
    // A service's login that may only use the schema: retrying will not help.
    if (sqlstate_of(e) != "42501") throw;
    if (std::string_view(e.what()).find("permission denied to set parameter") !=
        std::string_view::npos)
      throw MigrationNotAllowed("migration " + std::string(m.name) + " cannot be applied (" +
                                primary_message(e.what()) + "): " + kSetParameterHint);
    throw MigrationNotAllowed("migration " + std::string(m.name) +
                              " is pending and this login may not apply it (" +
                              primary_message(e.what()) +
                              "): run nudge-worker --migrate-only as the role that owns schema "
                              "nudge, then start this again");
  }
  tx.commit();
  return true;
}

}  // namespace

bool Migration::breaking() const {
  return std::string_view(sql).starts_with(kBreakingMarker);
}

int migrate(pqxx::connection& conn) {
  // Nothing to do is found by reading alone, without the lock or any DDL: a service whose login
  // may only use the schema starts once its owner has migrated it.
  if (const auto recorded = recorded_migrations(conn)) {
    check_not_too_new(*recorded);
    if (all_applied(*recorded)) return 0;
  }
  AdvisoryLock lock(conn);
  {
    // Created only where missing: CREATE on the database is needed for the first install alone.
    pqxx::nontransaction tx(conn);
    if (tx.exec1("SELECT to_regnamespace('nudge') IS NULL")[0].as<bool>())
      tx.exec("CREATE SCHEMA nudge");
    if (tx.exec1("SELECT to_regclass('nudge.migrations') IS NULL")[0].as<bool>()) {
      tx.exec(
          "CREATE TABLE nudge.migrations ("
          " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
          " breaking boolean NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
          "COMMENT ON TABLE nudge.migrations IS 'The migrations applied to this database; a "
          "binary refuses to start when a breaking one is newer than it knows.'");
    }
  }
  const auto applied = applied_migrations(conn);
  check_not_too_new(applied);
  all_applied(applied);
  check_can_set_parameters(conn, applied);
  int count = 0;
  for (const auto& m : embedded_migrations()) {
    const std::string sum = checksum(m.sql);
    if (applied.contains(m.version)) continue;
    while (!apply(conn, m, sum)) {
      log::warn("a migration waited for a lock another session holds: it gives way and tries again",
                {{"migration", m.name},
                 {"wait", kMigrationLockWait},
                 {"lock_holders", lock_holders(conn)}});
      if (shutdown_requested())
        throw std::runtime_error(std::string("stopped while migration ") + m.name +
                                 " waited for a lock");
      std::this_thread::sleep_for(kMigrationRetryPause);
    }
    log::info("applied migration", {{"migration", m.name}});
    ++count;
  }
  return count;
}

std::optional<std::string> schema_problem(pqxx::connection& conn) {
  const auto applied = recorded_migrations(conn);
  if (!applied) return "no migration is applied";
  for (const auto& m : embedded_migrations()) {
    if (!applied->contains(m.version))
      return std::string("migration ") + m.name + " is not applied";
  }
  return newer_breaking_migration(*applied);
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
