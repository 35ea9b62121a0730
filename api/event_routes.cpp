// Events: what happened to an entity. Each one is recorded and answered by the enabled rules of
// its type in one transaction (nudge.emit_event; a batch nudge.record_events, which answers in
// the text the response carries); the same idempotency key answers as before.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "errors.hpp"
#include "event_combiner.hpp"
#include "input.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "statements.hpp"

namespace nudge::api {

void add_event_routes(Router& router, ConnectionPool& pool, Notifier& notifier,
                      EventCombiner& combiner) {
  router.add("POST", "/v1/events",
             [&combiner, &notifier](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const EmittedEvent answer = combiner.emit(parse_event(parse_object(req.body)));
               // Its rules may have made reminders due at once (delay 0).
               if (answer.created) notifier.poke();
               reply(res, answer.created ? 201 : 200, answer.text);
             });

  router.add("POST", "/v1/events/batch",
             [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               nlohmann::json body = parse_object(req.body);
               const nlohmann::json& items = batch_items(body, "events");
               std::string normalised = "[";
               for (std::size_t i = 0; i < items.size(); ++i) {
                 if (i > 0) normalised += ',';
                 normalised +=
                     parse_event(items[i], "items[" + std::to_string(i) + "].").to_json().dump();
               }
               normalised += ']';
               body = nlohmann::json();
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("record_events", normalised);
               });
               notifier.poke();
               reply(res, 200, std::string("{\"items\":") + row[0].c_str() + "}");
             });

  router.add("GET", "/v1/events", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"event_type", "entity_type", "entity_id", "limit", "cursor"});
    const auto event_type = filter(req, "event_type"), entity_type = filter(req, "entity_type"),
               entity_id = filter(req, "entity_id");
    const int limit = parse_limit(query(req, "limit"));
    const auto before = id_cursor(req);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_params(per_call_statement("list_events"), event_type, entity_type, entity_id,
                            before, limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });

  router.add(
      "GET", R"(/v1/events/([^/]+))", [&pool](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const auto id = path_id(req, "event");
        const auto rows = on_connection(
            pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get_event", id); });
        if (rows.empty())
          throw ApiError(404, "not_found", "event " + std::to_string(id) + " does not exist");
        reply(res, 200, rows[0][0].c_str());
      });
}

}  // namespace nudge::api
