#pragma once
// Who makes the request a request thread is serving, for the audit trail. The router names the
// caller around each handler (CallerScope); on_connection tells the database session before the
// statements of a request that may change something, so that the audit triggers record the
// token and the route (sql/migrations/0012_tokens_and_audit.sql).

#include <string>

#include "access.hpp"
#include "nudge/pool.hpp"

namespace nudge::api {

struct Caller {
  std::string token;       // the token's name; empty when [api] auth = "off"
  std::string route;       // the route's template: "POST /v1/reminders/{id}/pause"
  bool changes = false;    // the route may change data (every method but GET)
  std::string token_hash;  // its SHA-256 (hex), for what outlives the request (a live stream)
  Scopes scopes = 0;       // what the token holds; every scope when auth is off
};

// Names `caller` as the one this thread serves until the scope ends.
class CallerScope {
 public:
  explicit CallerScope(const Caller& caller);
  ~CallerScope();
  CallerScope(const CallerScope&) = delete;
  CallerScope& operator=(const CallerScope&) = delete;

 private:
  const Caller* previous_;
};

// The caller this thread serves; nullptr outside a route.
const Caller* current_caller();

// When this thread's caller may change data, makes the session of `lease` name it (settings
// nudge.actor and nudge.route): one round trip when the connection last named someone or
// something else, none when it names this caller already. A connection never carries a previous
// caller into a change: it is set before every request that may make one.
void act_for_caller(ConnectionPool::Lease& lease);

}  // namespace nudge::api
