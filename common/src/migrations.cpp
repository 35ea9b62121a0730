#include "nudge/migrations.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>

#include "nudge/log.hpp"

namespace nudge {

namespace {

// Any fixed key works; it only has to be the same in every Nudge process.
constexpr long long kMigrationLockKey = 0x4e75646765;  // "Nudge"

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

std::map<int, std::string> applied_checksums(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  std::map<int, std::string> out;
  for (const auto& row : tx.exec("SELECT version, checksum FROM schema_migrations"))
    out[row[0].as<int>()] = row[1].as<std::string>();
  return out;
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

int migrate(pqxx::connection& conn) {
  AdvisoryLock lock(conn);
  {
    pqxx::nontransaction tx(conn);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
  }
  const auto applied = applied_checksums(conn);
  int count = 0;
  for (const auto& m : embedded_migrations()) {
    const std::string sum = checksum(m.sql);
    if (const auto it = applied.find(m.version); it != applied.end()) {
      if (it->second != sum)
        throw std::runtime_error(std::string("migration ") + m.name +
                                 " was edited after it was applied; add a new migration instead");
      continue;
    }
    pqxx::work tx(conn);
    // The row goes in first, so a process that somehow races past the lock fails on the key
    // instead of applying the body twice.
    tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                   m.version, std::string(m.name), sum);
    tx.exec(m.sql);
    tx.commit();
    log::info("applied migration", {{"migration", m.name}});
    ++count;
  }
  return count;
}

bool is_migrated(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  const auto exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL")[0].as<bool>();
  if (!exists) return false;
  const auto applied = tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<std::size_t>();
  return applied >= embedded_migrations().size();
}

}  // namespace nudge
