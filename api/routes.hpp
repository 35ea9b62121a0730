#pragma once
// The API's routes, one file per resource: each route validates its input (input.hpp), makes one
// call to a function of schema nudge (or one read; statements.cpp), and answers JSON.

#include "notifier.hpp"
#include "nudge/config.hpp"
#include "nudge/metrics.hpp"
#include "nudge/pool.hpp"
#include "router.hpp"
#include "stream_hub.hpp"

namespace nudge::api {

// Every route below, plus /health, /ready and /openapi.json. `secrets` are the configured ones
// (only their names are used: a webhook request may name no others); they must outlive the
// routes.
void add_routes(Router& router, ConnectionPool& pool, Notifier& notifier, const Secrets& secrets,
                const metrics::Registry& registry, StreamHub& hub);

// /metrics (what `registry` holds), /livez and /readyz.
void add_operations_routes(Router& router, ConnectionPool& pool, const metrics::Registry& registry);

void add_reminder_routes(Router& router, ConnectionPool& pool, Notifier& notifier,
                         const Secrets& secrets);
void add_flag_routes(Router& router, ConnectionPool& pool);
void add_contact_routes(Router& router, ConnectionPool& pool);
void add_rule_routes(Router& router, ConnectionPool& pool, const Secrets& secrets);
void add_event_routes(Router& router, ConnectionPool& pool, Notifier& notifier);
void add_audit_routes(Router& router, ConnectionPool& pool);
// GET /v1/stream, fed by `hub`.
void add_stream_routes(Router& router, ConnectionPool& pool, StreamHub& hub);

}  // namespace nudge::api
