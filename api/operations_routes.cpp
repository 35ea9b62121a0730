// What an operator's tools ask: GET /metrics (Prometheus' text format: the API's own metrics and
// the database's gauges, as every worker's listener serves them), /livez (the process
// answers; no database) and /readyz (the database answers and its schema is one this binary
// knows), both in the form of Kubernetes' own, with ?verbose listing each check.

#include "errors.hpp"
#include "nudge/database_gauges.hpp"
#include "nudge/health.hpp"
#include "nudge/log.hpp"
#include "route_support.hpp"
#include "routes.hpp"

namespace nudge::api {
namespace {

// A probe is answered within about a second, as orchestrators expect (Kubernetes: 1 s default).
constexpr std::chrono::seconds kProbePoolWait{1};
constexpr const char* kText = "text/plain; charset=utf-8";

void reply_health(httplib::Response& res, const health::Answer& answer) {
  res.status = answer.status;
  res.set_content(answer.body, kText);
}

bool verbose(const httplib::Request& req) {
  reject_unknown_params(req, {"verbose"});
  return req.has_param("verbose");
}

std::vector<health::CheckResult> readiness(ConnectionPool& pool) {
  std::optional<ConnectionPool::Lease> lease;
  try {
    lease.emplace(pool.acquire(kProbePoolWait));
  } catch (const PoolTimeout&) {
    return health::database_unreachable("no database connection came free within 1 s");
  } catch (const std::exception&) {
    return health::database_unreachable("the database is unreachable");
  }
  auto checks = health::check_database(**lease, Program::api);
  if (checks.front().failure) lease->discard();  // it may be broken: not back into the pool
  return checks;
}

// The database's gauges (the due backlog, circuit breakers, rule failures); nothing when no
// connection comes free within a probe's wait or the query fails: the scrape still answers.
std::string database_gauges(ConnectionPool& pool) {
  metrics::TextWriter out;
  try {
    auto lease = pool.acquire(kProbePoolWait);
    try {
      pqxx::nontransaction tx(*lease);
      metrics::write_database_gauges(tx, out);
    } catch (...) {
      lease.discard();
      throw;
    }
  } catch (const PoolTimeout&) {
    log::warn("metrics: the database's gauges are left out of this scrape",
              {{"error", "no database connection came free within 1 s"}});
    return "";
  } catch (const std::exception&) {
    log::warn("metrics: the database's gauges are left out of this scrape",
              {{"error", "the database did not answer the gauges' query"}});
    return "";
  }
  return out.take();
}

}  // namespace

void add_operations_routes(Router& router, ConnectionPool& pool,
                           const metrics::Registry& registry) {
  router.add("GET", "/metrics",
             [&registry, &pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               res.status = 200;
               res.set_content(registry.render() + database_gauges(pool), metrics::kContentType);
             });
  router.add("GET", "/livez", [](const httplib::Request& req, httplib::Response& res) {
    reply_health(res, health::answer("livez", {{"ping", std::nullopt}}, verbose(req)));
  });
  router.add("GET", "/readyz", [&pool](const httplib::Request& req, httplib::Response& res) {
    const bool v = verbose(req);
    reply_health(res, health::answer("readyz", readiness(pool), v));
  });
}

}  // namespace nudge::api
