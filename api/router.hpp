#pragma once
// The route table: every (method, path pattern) the API answers, registered on the server with
// the error handling every route shares, plus a 405 (with Allow) for the other methods of a
// known path, which cpp-httplib does not do by itself. The table is also what the OpenAPI
// cross-check test compares against. Every answer is counted in the request metrics, when given.

#include <httplib.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "request_metrics.hpp"

namespace nudge::api {

struct Route {
  std::string method;
  std::string pattern;  // regex as given to httplib, e.g. R"(/v1/reminders/([^/]+))"
};

class Router {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit Router(httplib::Server& server, RequestMetrics* metrics = nullptr)
      : server_(server), metrics_(metrics) {}

  // Adds a handler (registered by finish()); anything it throws becomes an error answer.
  void add(const std::string& method, const std::string& pattern, Handler handler);

  // Registers every handler, the 405 answers and the JSON bodies of 404/413 and other bare
  // errors. Call once, after every add().
  void finish();

  const std::vector<Route>& routes() const { return routes_; }

 private:
  // `handler`, counted (and timed when `timed`) when there are metrics.
  Handler measured(const std::string& method, const std::string& pattern, bool timed,
                   Handler handler);

  httplib::Server& server_;
  RequestMetrics* metrics_;
  std::vector<Route> routes_;
  std::vector<std::string> patterns_;                               // in the order added
  std::map<std::string, std::map<std::string, Handler>> handlers_;  // pattern -> method -> handler
};

}  // namespace nudge::api
