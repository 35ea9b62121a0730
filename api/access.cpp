#include "access.hpp"

namespace nudge::api {
namespace {

// Every route and the scope it needs. /openapi.json is open: it describes the API, holds no
// data, and is how a client learns that it needs a token. /livez and /readyz are the
// orchestrators' probes. /metrics has a scope of its own: Prometheus sends a bearer token
// (scrape_config authorization), and a scraper's token should read nothing else.
constexpr RouteAccess kRoutes[] = {
    {"GET", "/health", Scope::none},
    {"GET", "/ready", Scope::none},
    {"GET", "/livez", Scope::none},
    {"GET", "/readyz", Scope::none},
    {"GET", "/openapi.json", Scope::none},
    {"GET", "/metrics", Scope::metrics},

    // The dashboard's and the docs' files: the page, never its data (every number on it comes
    // from a call that carries the token). Not API routes, so not in the OpenAPI document.
    {"GET", "/", Scope::none},
    {"GET", "/ui/{file}", Scope::none},
    {"GET", "/docs", Scope::none},
    {"GET", "/docs/{file}", Scope::none},
    {"GET", "/v1/overview", Scope::read},

    {"POST", "/v1/reminders", Scope::write},
    {"POST", "/v1/reminders/batch", Scope::write, true},
    {"GET", "/v1/reminders", Scope::read},
    {"GET", "/v1/reminders/{id}", Scope::read},
    {"PATCH", "/v1/reminders/{id}", Scope::write},
    {"GET", "/v1/reminders/{id}/executions", Scope::read},
    {"POST", "/v1/reminders/{id}/pause", Scope::write},
    {"POST", "/v1/reminders/{id}/resume", Scope::write},
    {"POST", "/v1/reminders/{id}/cancel", Scope::write},
    {"POST", "/v1/reminders/{id}/retry", Scope::write},
    {"POST", "/v1/reminders/pause", Scope::write, true},
    {"POST", "/v1/reminders/resume", Scope::write, true},
    {"POST", "/v1/reminders/cancel", Scope::write, true},
    {"POST", "/v1/reminders/retry", Scope::write, true},
    {"POST", "/v1/schedules/preview", Scope::read},
    {"POST", "/v1/schedules/parse", Scope::read},

    {"PUT", "/v1/flags/{key}", Scope::write},
    {"GET", "/v1/flags/{key}", Scope::read},
    {"GET", "/v1/flags", Scope::read},

    {"PUT", "/v1/contacts/{entity_type}/{entity_id}/{channel}", Scope::write},
    {"GET", "/v1/contacts/{entity_type}/{entity_id}/{channel}", Scope::read},
    {"DELETE", "/v1/contacts/{entity_type}/{entity_id}/{channel}", Scope::write},
    {"GET", "/v1/contacts/{entity_type}/{entity_id}", Scope::read},

    {"POST", "/v1/rules", Scope::write},
    {"GET", "/v1/rules", Scope::read},
    {"GET", "/v1/rules/{id}", Scope::read},
    {"PATCH", "/v1/rules/{id}", Scope::write},
    {"DELETE", "/v1/rules/{id}", Scope::write},

    {"POST", "/v1/events", Scope::write},
    {"POST", "/v1/events/batch", Scope::write, true},
    {"GET", "/v1/events", Scope::read},
    {"GET", "/v1/events/{id}", Scope::read},
    {"GET", "/v1/stream", Scope::read},

    {"GET", "/v1/targets", Scope::read},
    {"GET", "/v1/targets/busy", Scope::read},
    {"POST", "/v1/targets/close", Scope::write},

    {"GET", "/v1/audit", Scope::admin},
    {"GET", "/v1/auth", Scope::any},
};

constexpr std::string_view kScopeNames[] = {"", "read", "write", "admin", "metrics", "any"};
constexpr Scope kScopes[] = {Scope::read, Scope::write, Scope::admin, Scope::metrics};

// "/v1/contacts/{entity_type}/{entity_id}" and "/v1/contacts/([^/]+)/([^/]+)" both become
// "/v1/contacts/{}/{}".
std::string shape(std::string_view path, std::string_view open, std::string_view close) {
  std::string out;
  for (std::size_t i = 0; i < path.size();) {
    if (path.substr(i).starts_with(open)) {
      const auto end = path.find(close, i + open.size());
      if (end != std::string_view::npos) {
        out += "{}";
        i = end + close.size();
        continue;
      }
    }
    out += path[i++];
  }
  return out;
}

}  // namespace

const RouteAccess* route_access(std::string_view method, std::string_view pattern) {
  const std::string wanted = shape(pattern, "(", ")");
  for (const RouteAccess& route : kRoutes) {
    if (route.method == method && shape(route.path, "{", "}") == wanted) return &route;
  }
  return nullptr;
}

std::string_view scope_name(Scope scope) {
  return kScopeNames[static_cast<unsigned>(scope)];
}

std::optional<Scopes> parse_scopes(std::string_view names) {
  Scopes scopes = 0;
  while (!names.empty()) {
    const auto comma = names.find(',');
    const std::string_view name = names.substr(0, comma);
    bool known = false;
    for (const Scope scope : kScopes) {
      if (name == scope_name(scope)) {
        scopes |= scope_bit(scope);
        known = true;
      }
    }
    if (!known) return std::nullopt;
    names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 1);
    if (comma != std::string_view::npos && names.empty()) return std::nullopt;  // "read,"
  }
  if (scopes == 0) return std::nullopt;
  return scopes;
}

std::vector<std::string_view> held_scopes(Scopes scopes) {
  std::vector<std::string_view> out;
  for (const Scope scope : kScopes) {
    if (holds(scopes, scope)) out.push_back(scope_name(scope));
  }
  return out;
}

std::string scope_names(Scopes scopes) {
  std::string out;
  for (const std::string_view name : held_scopes(scopes)) {
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

}  // namespace nudge::api
