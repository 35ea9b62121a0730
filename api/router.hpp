#pragma once
// The route table: every (method, path pattern) the API answers, registered on the server with
// what every route shares: the gate (token, scope, rate; access.hpp names each route's scope),
// the caller named for the audit trail, and the error handling; plus a 405 (with Allow) for the
// other methods of a known path, which cpp-httplib does not do by itself. The table is also what
// the OpenAPI cross-check test compares against. Every answer, refusals by the gate included, is
// counted in the request metrics, when given.

#include <httplib.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "gate.hpp"
#include "keyed_slots.hpp"
#include "request_metrics.hpp"

namespace nudge::api {

struct Route {
  std::string method;
  std::string pattern;  // regex as given to httplib, e.g. R"(/v1/reminders/([^/]+))"
};

class Router {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // `max_body_bytes` is named in a 413's message ([api] max_body_bytes; 0: not named).
  // `threads` ([api] threads): a token runs at most a quarter of them as bulk routes
  // (access.hpp) at once, and all tokens together half.
  Router(httplib::Server& server, Gate& gate, RequestMetrics* metrics = nullptr,
         std::size_t max_body_bytes = 0, int threads = 16)
      : server_(server),
        gate_(gate),
        metrics_(metrics),
        max_body_bytes_(max_body_bytes),
        bulk_(std::max(1, threads / 4), std::max(1, threads / 2)) {}

  // Adds a handler (registered by finish()), served once the gate admits the request; anything
  // it throws becomes an error answer. Throws std::logic_error for a route access.cpp does not
  // list.
  void add(const std::string& method, const std::string& pattern, Handler handler);

  // Registers every handler, the 405 answers and the JSON bodies of 404/413 and other bare
  // errors. Call once, after every add().
  void finish();

  const std::vector<Route>& routes() const { return routes_; }
  Gate& gate() { return gate_; }

  // HttpServer's body gate (call after finish()): the request's route exists for its method, the
  // gate lets its token in (token and scope; the rate is taken when it is served) and the token
  // has a slot among `uploads` (held until the request is answered). Otherwise writes the refusal
  // (401, 403, 404, 405, 429) and counts it: under its route when there is one, and under the
  // token's name once the token is known (a 403, a 429).
  bool admits_body(const httplib::Request& req, httplib::Response& res, KeyedSlots& uploads);

 private:
  // `handler`, counted under the route's template `path` (and timed when `timed`) when there are
  // metrics.
  Handler measured(const std::string& method, const std::string& path, bool timed, Handler handler);
  // The pattern whose regex matches the path of `target` (still percent-encoded, as routed), or
  // nullptr: the first added, as httplib takes it.
  const std::string* pattern_of(const std::string& target) const;

  httplib::Server& server_;
  Gate& gate_;
  RequestMetrics* metrics_;
  std::size_t max_body_bytes_;
  KeyedSlots bulk_;  // threads running bulk routes
  std::vector<Route> routes_;
  std::vector<std::string> patterns_;         // in the order added
  std::map<std::string, std::string> paths_;  // pattern -> its template, "/v1/reminders/{id}"
  std::map<std::string, std::map<std::string, Handler>> handlers_;  // pattern -> method -> handler
  std::vector<std::pair<std::string, std::regex>> matchers_;  // pattern and its regex, as added
  std::map<std::string, RequestMetrics::Route*> measures_;    // "METHOD /template" -> its series
};

}  // namespace nudge::api
