#include "nudge/startup.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <pqxx/pqxx>
#include <random>
#include <string_view>
#include <thread>

#include "nudge/database.hpp"
#include "nudge/log.hpp"
#include "nudge/migrations.hpp"
#include "nudge/shutdown.hpp"

namespace nudge {

std::string make_process_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  std::random_device rd;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

std::size_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? static_cast<std::size_t>(1) << 20
                                         : static_cast<std::size_t>(limit.rlim_cur);
}

namespace {

// libpq's own check of the connection string failed (a bad sslmode or port, an unknown option):
// no server was asked, and asking again will not help.
bool is_bad_connection_string(const std::string& what) {
  for (const std::string_view start : {"invalid ", "missing \"=\" after", "unterminated quoted"}) {
    if (what.rfind(start, 0) == 0) return true;
  }
  return false;
}

void migrate_with_retries(const Config& config, const std::string& application_name,
                          std::chrono::seconds give_up_after) {
  const auto deadline = std::chrono::steady_clock::now() + give_up_after;
  for (int backoff_ms = 100;; backoff_ms = std::min(backoff_ms * 2, 2000)) {
    try {
      auto conn = open_connection(config.database.url, application_name);
      migrate(*conn);
      return;
    } catch (const pqxx::broken_connection& e) {
      if (std::chrono::steady_clock::now() >= deadline || shutdown_requested() ||
          is_bad_connection_string(e.what()))
        throw;
      log::warn("database unreachable, retrying",
                {{"url", redact_url(config.database.url)},
                 {"error", database_error(e, config.database.url)}});
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    }
  }
}

}  // namespace

int migrate_at_startup(const Config& config, const std::string& application_name,
                       std::chrono::seconds give_up_after) {
  try {
    migrate_with_retries(config, application_name, give_up_after);
    return 0;
  } catch (const pqxx::broken_connection& e) {
    if (is_bad_connection_string(e.what())) {
      log::error("the database URL is not valid (fix it: retrying would not help)",
                 {{"url", redact_url(config.database.url)},
                  {"error", database_error(e, config.database.url)}});
      return 2;
    }
    log::error("database unreachable, giving up",
               {{"url", redact_url(config.database.url)},
                {"waited_seconds", static_cast<std::int64_t>(give_up_after.count())},
                {"error", database_error(e, config.database.url)}});
    return 1;
  } catch (const SchemaTooNew& e) {
    log::error("refusing to start against a newer schema", {{"error", e.what()}});
    return 2;
  } catch (const MigrationNotAllowed& e) {
    log::error("refusing to start: the schema needs a migration its owner must apply",
               {{"error", e.what()}});
    return 2;
  } catch (const std::exception& e) {
    // Every start reads nudge.migrations, and migrates only when a migration is missing: a login
    // without rights on schema nudge fails here, before anything is migrated (explore22a F8).
    log::error("could not check the database's schema (nudge.migrations) or migrate it",
               {{"url", redact_url(config.database.url)},
                {"error", database_error(e, config.database.url)}});
    return 1;
  }
}

}  // namespace nudge
