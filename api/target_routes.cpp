// Target hosts: the circuit breaker of each webhook host that has failed and the pace of each
// that answered 429, as the workers keep them in nudge.target_hosts (their claims and finishes
// change it), closing a breaker by hand once its
// receiver is known to be back (nudge.close_breaker), and the hosts with the most deliveries due
// or under way now (nudge.busy_hosts: a slow host never fails).

#include <optional>
#include <string>

#include "errors.hpp"
#include "input.hpp"
#include "nudge/log.hpp"
#include "route_support.hpp"
#include "routes.hpp"

namespace nudge::api {

void add_target_routes(Router& router, ConnectionPool& pool, Notifier& notifier) {
  router.add("GET", "/v1/targets", [&pool](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {"state", "paced", "limit", "cursor"});
    const std::optional<std::string> state = query(req, "state");
    if (state && *state != "closed" && *state != "open" && *state != "probing")
      throw bad_field("state", "invalid_value", "must be closed, open or probing");
    const std::optional<bool> paced = boolean_filter(req, "paced");
    const int limit = parse_limit(query(req, "limit"));
    std::optional<std::string> after;
    if (auto cursor = query(req, "cursor")) after = decode_cursor(*cursor);
    const auto rows = on_connection(pool, [&](pqxx::nontransaction& tx) {
      return tx.exec_prepared("list_targets", state, after, limit + 1, paced);
    });
    reply(res, 200, page(rows, limit));
  });

  router.add(
      "GET", "/v1/targets/busy", [&pool](const httplib::Request& req, httplib::Response& res) {
        reject_unknown_params(req, {"limit"});
        const int limit = parse_limit(query(req, "limit"));
        const auto row = on_connection(
            pool, [&](pqxx::nontransaction& tx) { return tx.exec_prepared1("busy_hosts", limit); });
        reply(res, 200, row[0].c_str());
      });

  router.add("POST", "/v1/targets/close",
             [&pool, &notifier](const httplib::Request& req, httplib::Response& res) {
               reject_unknown_params(req, {});
               const std::string host = parse_target_host(parse_object(req.body));
               const auto row = on_connection(pool, [&](pqxx::nontransaction& tx) {
                 tx.exec_prepared1("close_breaker", host);
                 return tx.exec_prepared1("target_host", host);
               });
               log::info("circuit breaker closed by hand", {{"host", host}});
               // What it held is due now. The API's sessions do not NOTIFY: told after commit.
               notifier.poke();
               reply(res, 200, row[0].c_str());
             });
}

}  // namespace nudge::api
