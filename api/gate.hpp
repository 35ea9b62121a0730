#pragma once
// What stands before every route but the open ones. With [api] auth = "off", only the request's
// Host and Origin (local_request.hpp). With [api] auth = "token": the bearer token
// (its format and checksum checked without the database; the token itself against the cache of
// verified tokens, and the database on a miss, unless the peer's tokens keep failing), then the
// route's scope, then the token's rate.
// A refusal is thrown as an ApiError (401, 403, 429), its WWW-Authenticate or Retry-After header
// already on the answer. The token itself is never logged, nor put in any message.

#include <httplib.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "access.hpp"
#include "auth_failures.hpp"
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
    int auth_failures_per_minute = 60;  // a peer's failed authentications; 0: no limit
  };

  Gate(const Settings& settings, ConnectionPool& pool);

  // The token a request comes with: its name, SHA-256 (hex) and scopes; empty for an open route;
  // without auth, the names empty and every scope held.
  struct Admitted {
    std::string token;
    std::string token_hash;
    Scopes scopes = 0;
  };
  // The token and the route's scope: who the request comes with (a 401 or 403 otherwise).
  // `known`, when given, gets the token's name as soon as it is known, a 403 included, so that
  // the refusal is counted under it.
  Admitted authorize(const httplib::Request& req, httplib::Response& res, const RouteAccess& route,
                     std::string* known = nullptr);
  // Then its rate: a 429 (Retry-After set) when the token is past it; nothing for no token. Apart,
  // so that a refusal is counted under the token's name.
  void take_rate(const Admitted& admitted, httplib::Response& res);

  // Admits again the token with this hash (as authorize() gave it): a 401 or 403 unless it still
  // holds `scope`, asking the cache, else the database. For a request that outlives its
  // admission (a live stream, once listed where a revocation would find it): a revocation heard
  // since the admission cleared the cache.
  void check_again(httplib::Response& res, const std::string& hash, Scope scope);

  TokenCache& tokens() { return cache_; }

 private:
  // The token's holder; `hash` is set to the token's SHA-256 (hex).
  TokenCache::Holder holder(const httplib::Request& req, httplib::Response& res, std::string& hash);
  std::optional<TokenCache::Holder> look_up(const std::string& hash);
  // Whether this process ever found the token with this hash (so a failing peer's allowance does
  // not hold back its first lookup since the cache forgot it).
  bool verified_before(const std::string& hash);
  // A 403 naming the scope unless `h` holds it.
  static void require_scope(httplib::Response& res, const TokenCache::Holder& h, Scope scope);

  const bool auth_;
  ConnectionPool& pool_;
  TokenCache cache_;
  RateLimiter limiter_;
  AuthFailures failures_;
  std::mutex verified_mutex_;
  std::unordered_set<std::string> verified_;  // hashes look_up found (forgotten past 10,000)
};

}  // namespace nudge::api
