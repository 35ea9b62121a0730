// Status flags: the REST twin of writing nudge.status_flags with plain SQL.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "route_support.hpp"
#include "routes.hpp"

namespace nudge::api {

void add_flag_routes(Router& router, ConnectionPool& pool) {
  router.add("PUT", R"(/v1/flags/([^/]+))",
             [&pool](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const std::string key = path_param(req, 1, "key");
               check_flag_key(key);
               const bool value = parse_flag_value(parse_object(req.body));
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 return tx.exec_prepared1("set_flag", key, value);
               });
               reply(res, 200, row[0].c_str());
             });

  router.add(
      "GET", R"(/v1/flags/([^/]+))", [&pool](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {});
        const std::string key = path_param(req, 1, "key");
        check_flag_key(key);
        const auto rows = on_connection(
            pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared("get_flag", key); });
        if (rows.empty()) throw ApiError(404, "not_found", "flag " + key + " does not exist");
        reply(res, 200, rows[0][0].c_str());
      });

  router.add("GET", "/v1/flags", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"limit", "cursor"});
    const int limit = parse_limit(query(req, "limit"));
    std::optional<std::string> after;
    if (auto cursor = query(req, "cursor")) after = decode_cursor(*cursor);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("list_flags", after, limit + 1);
    });
    reply(res, 200, page(rows, limit));
  });
}

}  // namespace nudge::api
