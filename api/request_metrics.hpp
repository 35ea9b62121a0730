#pragma once
// The API's request metrics: requests by method, route and status, and a histogram of the time
// each route takes (from the route taking the request to its answer being made: validation,
// the database call, the JSON). A route is labelled by its template as the OpenAPI document
// writes it (/v1/reminders/{id}), never by the path asked for; requests no route took (an
// unknown path, or a request refused as it was read: 400, 413) are labelled "other". Recording
// takes no lock for the statuses the API answers; any other status is looked up once per request.

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "nudge/metrics.hpp"

namespace nudge::api {

class RequestMetrics {
 public:
  explicit RequestMetrics(metrics::Registry& registry);

  class Route {
   public:
    Route(std::string method, std::string label, bool timed)
        : method_(std::move(method)), label_(std::move(label)), timed_(timed) {}

   private:
    friend class RequestMetrics;
    std::string method_;
    std::string label_;
    bool timed_;
    // Series are made on a route's first answer (of that status), so that only what happened
    // is shown.
    std::atomic<metrics::Histogram*> duration_{nullptr};
    std::array<std::atomic<metrics::Counter*>, 16> by_status_{};  // see kCommonStatuses
  };

  // The series of the route the router registers for `method` and `path` (its template, as
  // access.cpp and the OpenAPI document write it), its time measured when `timed` (not for the
  // 405 answers to the methods a path lacks). Call at start-up; kept for as long as this lives.
  Route& route(const std::string& method, const std::string& path, bool timed);
  void observe(Route& route, int status, std::chrono::steady_clock::duration took);
  // A request the route refused before it took it (its body not yet read): counted, not timed.
  void observe_refused(Route& route, int status);
  void observe_unrouted(const std::string& method, int status);
  // A request that came with `token` (any route, refusals past the token included): who keeps
  // the API busy, and who is refused.
  void observe_token(const std::string& token, int status,
                     std::chrono::steady_clock::duration took);

 private:
  metrics::Counter& counter(Route& route, int status);
  metrics::Histogram& duration(Route& route);

  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Family<metrics::Counter>& token_requests_;
  metrics::Family<metrics::Histogram>& token_duration_;
  std::mutex mutex_;  // routes_
  std::deque<Route> routes_;
  std::map<std::string, Route*> unrouted_;  // by method label
};

}  // namespace nudge::api
