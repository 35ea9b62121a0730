#include "request_metrics.hpp"

#include <algorithm>

#include "route_methods.hpp"

namespace nudge::api {
namespace {

// Time in a route: most answers take milliseconds; a batch of thousands, up to seconds.
const std::vector<double> kDurationBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// The statuses the API answers, each with its counter slot in a route; others take a lock.
constexpr std::array<int, 15> kCommonStatuses = {200, 201, 204, 400, 401, 403, 404, 405,
                                                 409, 413, 415, 422, 429, 500, 503};
static_assert(kCommonStatuses.size() <= 16);

std::string method_label(const std::string& method) {
  return std::find(kRouteMethods.begin(), kRouteMethods.end(), method) != kRouteMethods.end()
             ? method
             : "other";
}

}  // namespace

RequestMetrics::RequestMetrics(metrics::Registry& registry)
    : requests_(registry.counter_family("nudge_api_requests_total",
                                        "Requests answered, by method, route template and status.",
                                        {"method", "route", "status"})),
      duration_(registry.histogram_family(
          "nudge_api_request_duration_seconds",
          "Time from a route taking a request to its answer being made, by method and route "
          "template, in seconds.",
          kDurationBounds, {"method", "route"})),
      token_requests_(registry.counter_family(
          "nudge_api_token_requests_total",
          "Requests that came with a token, by the token's name and the status answered "
          "(refusals after the token was known, 429 and 403, included).",
          {"token", "status"})),
      token_duration_(registry.histogram_family(
          "nudge_api_token_request_duration_seconds",
          "Time from a route taking a request that came with a token to its answer, by the "
          "token's name, in seconds: its _sum is the time a token kept request threads busy.",
          {0.01, 0.1, 1, 10}, {"token"})) {
  for (const auto& method : kRouteMethods) {
    unrouted_[method] = &routes_.emplace_back(method, "other", false);
  }
  unrouted_["other"] = &routes_.emplace_back("other", "other", false);
}

RequestMetrics::Route& RequestMetrics::route(const std::string& method, const std::string& path,
                                             bool timed) {
  std::lock_guard lock(mutex_);
  return routes_.emplace_back(method_label(method), path, timed);
}

metrics::Counter& RequestMetrics::counter(Route& route, int status) {
  const auto at = std::find(kCommonStatuses.begin(), kCommonStatuses.end(), status);
  if (at == kCommonStatuses.end())
    return requests_.with({route.method_, route.label_, std::to_string(status)});
  auto& slot = route.by_status_[static_cast<std::size_t>(at - kCommonStatuses.begin())];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Two threads racing here get the same series.
    counter = &requests_.with({route.method_, route.label_, std::to_string(status)});
    slot.store(counter, std::memory_order_release);
  }
  return *counter;
}

metrics::Histogram& RequestMetrics::duration(Route& route) {
  metrics::Histogram* histogram = route.duration_.load(std::memory_order_acquire);
  if (histogram == nullptr) {
    histogram = &duration_.with({route.method_, route.label_});
    route.duration_.store(histogram, std::memory_order_release);
  }
  return *histogram;
}

void RequestMetrics::observe(Route& route, int status, std::chrono::steady_clock::duration took) {
  // A handler that set no status is answered 200 by httplib.
  counter(route, status < 0 ? 200 : status).inc();
  if (route.timed_) duration(route).observe(std::chrono::duration<double>(took).count());
}

void RequestMetrics::observe_refused(Route& route, int status) {
  counter(route, status).inc();
}

void RequestMetrics::observe_token(const std::string& token, int status,
                                   std::chrono::steady_clock::duration took) {
  token_requests_.with({token, std::to_string(status < 0 ? 200 : status)}).inc();
  token_duration_.with({token}).observe(std::chrono::duration<double>(took).count());
}

void RequestMetrics::observe_unrouted(const std::string& method, int status) {
  counter(*unrouted_.at(method_label(method)), status).inc();
}

}  // namespace nudge::api
