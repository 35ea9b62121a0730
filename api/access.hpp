#pragma once
// Who may call what: the scope every route needs, in one table (access.cpp), read by the router
// when a route is registered (a route missing from it is a programming error) and documented
// route by route in the OpenAPI document (x-nudge-scope), which a test checks against the server.
//
// Scopes do not include one another: a token holds each scope it was given, and a route needs
// exactly its own.
//   read     every GET of data (and the schedule preview, which changes nothing)
//   write    creates and changes: reminders, flags, contacts, rules, events
//   admin    the audit trail, and whatever needs more trust than write
//   metrics  GET /metrics alone: a Prometheus scraper's token reads nothing else
// and one that no token is given, since every token holds it:
//   any      GET /v1/auth, which tells a token's holder what it holds (a client learns there
//            whether to offer what it cannot do)

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nudge::api {

enum class Scope { none, read, write, admin, metrics, any };  // none: the route is open to anyone

// The scopes a token holds, one bit per Scope.
using Scopes = unsigned;

inline constexpr Scopes scope_bit(Scope scope) {
  return 1u << static_cast<unsigned>(scope);
}
inline constexpr bool holds(Scopes held, Scope needed) {
  if (needed == Scope::any) return held != 0;
  return needed == Scope::none || (held & scope_bit(needed)) != 0;
}
// Every scope a token can be given: what a caller holds with [api] auth = "off".
inline constexpr Scopes kEveryScope = scope_bit(Scope::read) | scope_bit(Scope::write) |
                                      scope_bit(Scope::admin) | scope_bit(Scope::metrics);

struct RouteAccess {
  std::string_view method;
  std::string_view path;  // as in the OpenAPI document: "/v1/reminders/{id}/pause"
  Scope scope;
  // A batch or a bulk change: one request can keep a thread and a connection busy for seconds,
  // so a token runs only a few at once (router.hpp).
  bool bulk = false;
};

// The table's entry for a route as the router registers it (its path a pattern whose groups are
// "([^/]+)"), or nullptr when the table has none.
const RouteAccess* route_access(std::string_view method, std::string_view pattern);

std::string_view scope_name(Scope scope);
// "read,write" -> the scopes; nullopt when empty or when a name is not a scope.
std::optional<Scopes> parse_scopes(std::string_view names);
// The scopes' names in the order read, write, admin, metrics.
std::vector<std::string_view> held_scopes(Scopes scopes);
// The same, comma-separated.
std::string scope_names(Scopes scopes);

}  // namespace nudge::api
