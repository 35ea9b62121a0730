// Rules: how events are answered. Saved through nudge.create_rule / nudge.update_rule, which
// check the whole rule (action templates, conditions) and name the field that is wrong.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "request_input.hpp"
#include "route_support.hpp"
#include "routes.hpp"
#include "webhook_target.hpp"

namespace nudge::api {
namespace {

std::optional<std::string> dumped(const std::optional<nlohmann::json>& value) {
  if (!value) return std::nullopt;
  return value->dump();
}

ApiError no_rule(std::int64_t id) {
  return ApiError(404, "not_found", "rule " + std::to_string(id) + " does not exist");
}

}  // namespace

void add_rule_routes(Router& router, ConnectionPool& pool, const Secrets& secrets,
                     const AddressGuard& guard) {
  router.add("POST", "/v1/rules",
             [&pool, &secrets, &guard](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const RuleInput in = parse_rule(parse_object(req.body), false);
               check_rule_secrets(*in.action, secrets);
               check_rule_target(*in.action, secrets, guard);
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("create_rule", in.name, in.event_type, dumped(in.action),
                                          dumped(in.when), in.enabled);
               });
               reply(res, 201, row[0].c_str());
             });

  router.add("GET", "/v1/rules", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"event_type", "enabled", "limit", "cursor"});
    const auto event_type = filter(req, "event_type");
    const auto enabled = boolean_filter(req, "enabled");
    const int limit = parse_limit(query(req, "limit"));
    const auto before = id_cursor(req);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("list_rules", event_type, enabled, before, limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });

  const std::string one = R"(/v1/rules/([^/]+))";

  router.add("GET", one, [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const auto id = path_id(req, "rule");
    const auto rows = on_connection(
        pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get_rule", id); });
    if (rows.empty()) throw no_rule(id);
    reply(res, 200, rows[0][0].c_str());
  });

  router.add("PATCH", one,
             [&pool, &secrets, &guard](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const auto id = path_id(req, "rule");
               const RuleInput in = parse_rule(parse_object(req.body), true);
               if (in.action) {
                 check_rule_secrets(*in.action, secrets);
                 check_rule_target(*in.action, secrets, guard);
               }
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("update_rule", id, in.name, in.event_type,
                                          dumped(in.action), dumped(in.when), in.enabled);
               });
               reply(res, 200, row[0].c_str());
             });

  router.add("DELETE", one, [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    check_no_body(req.body);
    const auto id = path_id(req, "rule");
    on_connection(pool,
                  [&](pqxx::nontransaction& tx) { return tx.exec_prepared1("delete_rule", id); });
    res.status = 204;
  });
}

}  // namespace nudge::api
