#pragma once
// What stands before every route but the open ones, with [api] auth = "token": the bearer token
// (its format and checksum checked without the database; the token itself against the cache of
// verified tokens, and the database on a miss), then the route's scope, then the token's rate.
// A refusal is thrown as an ApiError (401, 403, 429), its WWW-Authenticate or Retry-After header
// already on the answer. The token itself is never logged, nor put in any message.

#include <httplib.h>

#include <chrono>
#include <optional>
#include <string>

#include "access.hpp"
#include "nudge/pool.hpp"
#include "rate_limiter.hpp"
#include "token_cache.hpp"

namespace nudge::api {

class Gate {
 public:
  struct Settings {
    bool auth = true;  // false: [api] auth = "off", every route open
    std::chrono::seconds token_cache{30};
    int rate_per_token = 100;  // 0: no limit
    int burst = 200;
  };

  Gate(const Settings& settings, ConnectionPool& pool);

  // The name of the token the request comes with ("" for an open route, or without auth), once
  // it may be served.
  std::string admit(const httplib::Request& req, httplib::Response& res, const RouteAccess& route);
  // The token and the route's scope alone (admit without the rate): the name of the token.
  std::string authorize(const httplib::Request& req, httplib::Response& res,
                        const RouteAccess& route);

  TokenCache& tokens() { return cache_; }

 private:
  TokenCache::Holder holder(const httplib::Request& req, httplib::Response& res);
  std::optional<TokenCache::Holder> look_up(const std::string& hash);

  const bool auth_;
  ConnectionPool& pool_;
  TokenCache cache_;
  RateLimiter limiter_;
};

}  // namespace nudge::api
