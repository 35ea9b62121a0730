#pragma once
// The API's figures beside its requests: the database pool, client connections, and the
// process's own (CPU, memory, descriptors), read when the metrics are rendered.

#include "http_server.hpp"
#include "nudge/metrics.hpp"
#include "nudge/pool.hpp"

namespace nudge::api {

// `pool` and `server` must outlive `registry`'s last render.
void add_server_metrics(metrics::Registry& registry, ConnectionPool& pool,
                        const HttpServer& server);

}  // namespace nudge::api
