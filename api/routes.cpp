#include "routes.hpp"

#include "errors.hpp"
#include "nudge/migrations.hpp"
#include "openapi.hpp"
#include "route_support.hpp"

namespace nudge::api {

void add_routes(Router& router, ConnectionPool& pool, Notifier& notifier, const Secrets& secrets,
                const AddressGuard& guard, const metrics::Registry& registry, StreamHub& hub,
                const MisfireConfig& misfire, EventCombiner& events) {
  router.add("GET", "/health", [](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    reply(res, 200, R"({"status":"ok"})");
  });

  router.add("GET", "/ready", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    bool migrated = false;
    try {
      auto lease = pool.acquire(kPoolWait);
      try {
        migrated = is_migrated(*lease);
      } catch (const pqxx::broken_connection&) {
        lease.discard();
        throw;
      }
    } catch (const std::exception&) {
      send_error(res, 503, "unavailable", "the database is unreachable");
      return;
    }
    if (!migrated) {
      send_error(res, 503, "unavailable", "the database schema is not up to date");
      return;
    }
    reply(res, 200, R"({"status":"ready"})");
  });

  router.add("GET", "/openapi.json", [](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    reply(res, 200, openapi_document());
  });

  add_operations_routes(router, pool, registry);
  add_static_routes(router);
  add_reminder_routes(router, pool, notifier, secrets, guard);
  add_schedule_routes(router, pool, misfire);
  add_flag_routes(router, pool);
  add_contact_routes(router, pool, secrets, guard);
  add_rule_routes(router, pool, secrets, guard);
  add_event_routes(router, pool, notifier, events);
  add_target_routes(router, pool, notifier);
  add_audit_routes(router, pool);
  add_auth_routes(router);
  add_stream_routes(router, pool, hub);
}

}  // namespace nudge::api
