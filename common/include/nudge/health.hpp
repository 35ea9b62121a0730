#pragma once
// Health answers for orchestrators, in the form of Kubernetes' own /livez and /readyz: 200 "ok"
// when every check passes, else 503 listing the checks; with ?verbose, every check on a line of
// its own, "[+]name ok" or "[-]name failed: reason", then "<endpoint> check passed|failed".

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "nudge/grants.hpp"

namespace nudge::health {

struct CheckResult {
  std::string name;
  std::optional<std::string> failure;  // why it failed; never a secret
};

struct Answer {
  int status = 200;
  std::string body;  // text/plain
};

Answer answer(std::string_view endpoint, const std::vector<CheckResult>& checks, bool verbose);

// The readiness of a database for `program`: "database" (the connection answers a query),
// "schema" (every migration this binary knows is applied, and none it does not know is marked
// breaking) and "grants" (its login holds every privilege the program uses). Never throws.
std::vector<CheckResult> check_database(pqxx::connection& conn, Program program);
// The same checks when no connection could be had, `reason` saying why.
std::vector<CheckResult> database_unreachable(const std::string& reason);

}  // namespace nudge::health
