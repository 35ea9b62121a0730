#include "server_metrics.hpp"

#include "nudge/process_metrics.hpp"

namespace nudge::api {

void add_server_metrics(metrics::Registry& registry, ConnectionPool& pool,
                        const HttpServer& server) {
  registry.gauge_fn("nudge_api_database_connections_in_use",
                    "Database connections of the pool serving a request right now.",
                    [&pool] { return static_cast<double>(pool.in_use()); });
  registry.gauge_fn("nudge_api_database_connections_limit",
                    "Database connections the pool may hold ([database] pool_size).",
                    [&pool] { return static_cast<double>(pool.size()); });
  registry.gauge_fn("nudge_api_connections_open",
                    "Client connections open, idle keep-alive ones included.",
                    [&server] { return static_cast<double>(server.open_connections()); });
  registry.gauge_fn("nudge_api_connections_limit",
                    "Client connections the API keeps open at once ([api] max_connections, as "
                    "fitted to the open-file limit).",
                    [&server] { return static_cast<double>(server.max_connections()); });
  registry.counter_fn("nudge_api_connections_refused_total",
                      "Clients answered 503 at once because the connection limit was reached.",
                      [&server] { return static_cast<double>(server.refused_connections()); });
  metrics::add_process_metrics(registry);
}

}  // namespace nudge::api
