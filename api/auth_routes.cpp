// GET /v1/auth: who the caller is, by its token (its name and scopes). Any token may ask: a
// client learns here what it may do, and offers nothing else (the dashboard hides its write
// controls from a read-only token instead of letting it walk into 403s). With [api] auth = "off"
// there is no token, and every scope is held.

#include <nlohmann/json.hpp>

#include "caller.hpp"
#include "route_support.hpp"
#include "routes.hpp"

namespace nudge::api {

void add_auth_routes(Router& router) {
  router.add("GET", "/v1/auth", [](const httplib::Request& req, httplib::Response& res) {
    reject_unknown_params(req, {});
    const Caller* caller = current_caller();
    // The route needs a token whenever auth is on: no name means auth is off.
    const bool off = caller->token.empty();
    nlohmann::json scopes = nlohmann::json::array();
    for (const std::string_view name : held_scopes(caller->scopes)) scopes.push_back(name);
    const nlohmann::json body = {{"auth", off ? "off" : "token"},
                                 {"token", off ? nlohmann::json() : nlohmann::json(caller->token)},
                                 {"scopes", std::move(scopes)}};
    reply(res, 200, body.dump());
  });
}

}  // namespace nudge::api
