#include "statement_cancel.hpp"

#include "nudge/database.hpp"
#include "nudge/log.hpp"

namespace nudge {

void cancel_running_statements(const std::string& url, const std::string& worker_id) {
  try {
    const auto conn = open_connection(url, worker_id + "/stop");
    pqxx::nontransaction tx(*conn);
    const int cancelled = tx.exec_params1(
                                "SELECT count(*) FILTER (WHERE pg_catalog.pg_cancel_backend(pid)) "
                                "FROM pg_catalog.pg_stat_activity WHERE state = 'active' "
                                "AND pid <> pg_catalog.pg_backend_pid() "
                                "AND pg_catalog.starts_with(application_name, $1)",
                                worker_id + "/")[0]
                              .as<int>();
    if (cancelled > 0) {
      log::warn("cancelled statements still waiting after the stop's grace (a lock held?)",
                {{"statements", cancelled}});
    }
  } catch (const std::exception& e) {
    log::warn("could not cancel statements still waiting after the stop's grace",
              {{"error", database_error(e, url)}});
  }
}

}  // namespace nudge
