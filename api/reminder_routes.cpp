// Reminders: create (one or a batch), list, read, reschedule, pause, resume, cancel, their
// history; schedule previews; and the dashboard's overview.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "errors.hpp"
#include "input.hpp"
#include "nudge/database.hpp"
#include "nudge/pg_text.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "statements.hpp"

namespace nudge::api {
namespace {

using nlohmann::json;

// One reminder answer from a one-row statement; NU404 from the function becomes 404.
void reply_reminder(httplib::Response& res, const pqxx::result& rows, std::int64_t id) {
  if (rows.empty())
    throw ApiError(404, "not_found", "reminder " + std::to_string(id) + " does not exist");
  reply(res, 200, rows[0][0].c_str());
}

}  // namespace

void add_reminder_routes(Router& router, ConnectionPool& pool, Notifier& notifier,
                         const Secrets& secrets, const AddressGuard& guard) {
  router.add(
      "POST", "/v1/reminders",
      [&pool, &notifier, &secrets, &guard](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const CreateInput in = parse_create(parse_object(req.body), secrets, guard);
        std::optional<std::string> request;
        if (in.request) request = in.request->dump();
        const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
          return tx.exec_prepared1("create", in.entity_type, in.entity_id, in.event_type,
                                   in.channel, in.schedule_type, in.run_at, in.interval_seconds,
                                   in.target, in.payload.dump(), in.stop_condition_type,
                                   in.stop_condition_value, in.max_fires, in.ends_at, in.cron,
                                   in.timezone, in.misfire_policy, in.max_attempts, request);
        });
        const bool created = row[0].as<bool>();
        if (created) notifier.poke();
        reply(res, created ? 201 : 200, row[1].c_str());
      });

  router.add(
      "POST", "/v1/reminders/batch",
      [&pool, &notifier, &secrets, &guard](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        json body = parse_object(req.body);
        const json& items = batch_items(body, "reminders");
        // Written item by item and the request's tree freed before the database call: two
        // copies of a 1,000-item tree at once doubled the API's peak memory.
        std::string normalised;
        normalised.reserve(req.body.size() + items.size() * 16);
        normalised += '[';
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i > 0) normalised += ',';
          parse_create(items[i], secrets, guard, "items[" + std::to_string(i) + "].")
              .append_json(normalised);
        }
        normalised += ']';
        body = json();
        const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
          return tx.exec_prepared("create_batch", normalised);
        });
        std::string out;
        std::size_t size = 16;
        for (const auto& row : rows) size += row[2].size() + 32;
        out.reserve(size);
        out += "{\"items\":[";
        for (std::size_t i = 0; i < rows.size(); ++i) {
          if (i > 0) out += ',';
          out += rows[i][1].as<bool>() ? "{\"created\":true,\"reminder\":"
                                       : "{\"created\":false,\"reminder\":";
          out.append(rows[i][2].c_str(), rows[i][2].size());
          out += '}';
        }
        out += "]}";
        notifier.poke();
        reply(res, 200, std::move(out));
      });

  // In bulk: every reminder matching the ids or filters, in one transaction. Added before
  // /v1/reminders/{id} (the router takes the first pattern that matches).
  for (const std::string action : {"pause", "resume", "cancel", "retry"}) {
    router.add("POST", "/v1/reminders/" + action,
               [&pool, &notifier, action](const httplib::Request& req, httplib::Response& res) {
                 reject_unknown_params(req, {});
                 const BulkInput in = parse_bulk(parse_object(req.body));
                 const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                   return tx.exec_prepared1(action + "_matching", in.ids, in.status, in.entity_type,
                                            in.entity_id, in.event_type, in.channel);
                 });
                 if (action == "resume" || action == "retry") notifier.poke();
                 reply(res, 200, row[0].c_str());
               });
  }

  // The dashboard's overview: cheap whatever the tables' size (nudge.overview).
  router.add("GET", "/v1/overview", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const auto row =
        on_connection(pool, [](pqxx::nontransaction& tx) { return tx.exec_prepared1("overview"); });
    reply(res, 200, row[0].c_str());
  });

  router.add("GET", "/v1/reminders", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"status", "entity_type", "entity_id", "event_type", "channel",
                                "stop_condition_value", "limit", "cursor"});
    const auto status =
        choice_filter(req, "status", {"ACTIVE", "PAUSED", "COMPLETED", "CANCELLED", "FAILED"});
    const int limit = parse_limit(query(req, "limit"));
    const auto before = id_cursor(req);
    const auto entity_type = filter(req, "entity_type"), entity_id = filter(req, "entity_id"),
               event_type = filter(req, "event_type"),
               channel = choice_filter(req, "channel", {"log", "webhook", "email"}),
               stop_flag = filter(req, "stop_condition_value");
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_params(per_call_statement("list"), status, entity_type, entity_id, event_type,
                            channel, before, limit + 1, stop_flag);
    });
    reply(res, 200, page(rows, limit));
  });

  router.add("GET", R"(/v1/reminders/([^/]+))",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const auto id = path_id(req, "reminder");
               reply_reminder(
                   res,
                   on_connection(
                       pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get", id); }),
                   id);
             });

  router.add(
      "PATCH", R"(/v1/reminders/([^/]+))",
      [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const auto id = path_id(req, "reminder");
        const PatchInput in = parse_patch(parse_object(req.body));
        std::optional<std::string> payload;
        if (in.payload) payload = in.payload->dump();
        pqxx::result row;
        try {
          row = on_connection(pool, [&](pqxx::nontransaction& tx) {
            return tx.exec_prepared("reschedule", id, in.run_at, in.interval_seconds, payload,
                                    in.max_fires, in.ends_at, pg_array(in.clear), in.cron,
                                    in.timezone);
          });
        } catch (const pqxx::sql_error& e) {
          // The function takes seconds only: name the field as the caller sent it.
          const std::string prefix = "interval_seconds: ";
          const std::string message = primary_message(e.what());
          if (in.interval_in_minutes && e.sqlstate() == "22023" && message.rfind(prefix, 0) == 0) {
            throw bad_field("interval_minutes", "invalid_value", message.substr(prefix.size()));
          }
          throw;
        }
        reply_reminder(res, row, id);
        notifier.poke();  // run_at may have moved earlier
      });

  router.add("GET", R"(/v1/reminders/([^/]+)/executions)",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {"limit", "cursor"});
               const auto id = path_id(req, "reminder");
               const int limit = parse_limit(query(req, "limit"));
               const auto before = time_cursor(req);
               const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 if (tx.exec_prepared("exists", id).empty()) {
                   throw ApiError(404, "not_found",
                                  "reminder " + std::to_string(id) + " does not exist");
                 }
                 return tx.exec_prepared("executions", id, before, limit + 1);
               });
               reply(res, 200, page(rows, limit));
             });

  for (const std::string action : {"pause", "resume", "cancel", "retry"}) {
    router.add("POST", "/v1/reminders/([^/]+)/" + action,
               [&pool, &notifier, action](const httplib::Request& req, httplib::Response& res) {
                 reject_unknown_params(req, {});
                 check_no_body(req.body);
                 const auto id = path_id(req, "reminder");
                 reply_reminder(res,
                                on_connection(pool,
                                              [&](pqxx::nontransaction& tx) {
                                                return tx.exec_prepared(action, id);
                                              }),
                                id);
                 if (action == "resume" || action == "retry") notifier.poke();
               });
  }
}

}  // namespace nudge::api
