#include "nudge/health.hpp"

#include "nudge/database.hpp"
#include "nudge/migrations.hpp"

namespace nudge::health {

Answer answer(std::string_view endpoint, const std::vector<CheckResult>& checks, bool verbose) {
  bool passed = true;
  for (const auto& c : checks) passed = passed && !c.failure;
  if (passed && !verbose) return {200, "ok\n"};
  std::string body;
  for (const auto& c : checks) {
    body += c.failure ? "[-]" + c.name + " failed: " + *c.failure : "[+]" + c.name + " ok";
    body += '\n';
  }
  body += std::string(endpoint) + (passed ? " check passed\n" : " check failed\n");
  return {passed ? 200 : 503, body};
}

std::vector<CheckResult> check_database(pqxx::connection& conn, Program program) {
  bool read_only = false;
  try {
    read_only = pqxx::nontransaction(conn)
                    .exec1("SELECT current_setting('transaction_read_only')")[0]
                    .as<std::string>() == "on";
  } catch (const std::exception&) {
    // The error text may hold connection details: the reason is ours.
    return database_unreachable("the database is unreachable");
  }
  std::vector<CheckResult> checks{
      {"database", std::nullopt}, {"schema", std::nullopt}, {"grants", std::nullopt}};
  // Every write would fail (SQLSTATE 25006) while the service looked ready.
  if (read_only) {
    checks[0].failure =
        "this login's sessions are read-only (default_transaction_read_only, or a standby)";
  }
  try {
    checks[1].failure = schema_problem(conn);
  } catch (const std::exception& e) {
    // The statement's own error, which holds no connection details (ci209 saw this fail once,
    // under load, with nothing to say why).
    checks[1].failure = "the migrations could not be read: " + primary_message(e.what());
  }
  if (checks[1].failure) {
    checks[2].failure = "not checked: the schema is not one this binary knows";
    return checks;
  }
  try {
    if (const auto missing = missing_grants(conn, program)) {
      checks[2].failure = "this login lacks " + *missing + " (see README: Least privilege)";
    }
  } catch (const std::exception&) {
    checks[2].failure = "the privileges could not be read";
  }
  return checks;
}

std::vector<CheckResult> database_unreachable(const std::string& reason) {
  return {{"database", reason},
          {"schema", "not checked: the database is unreachable"},
          {"grants", "not checked: the database is unreachable"}};
}

}  // namespace nudge::health
