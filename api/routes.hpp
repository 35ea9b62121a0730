#pragma once
// The API's routes, one file per resource: each route validates its input (input.hpp), makes one
// call to a function of schema nudge (or one read; statements.cpp), and answers JSON.

#include "event_combiner.hpp"
#include "notifier.hpp"
#include "nudge/address_guard.hpp"
#include "nudge/config.hpp"
#include "nudge/metrics.hpp"
#include "nudge/pool.hpp"
#include "router.hpp"
#include "stream_hub.hpp"

namespace nudge::api {

// Every route below, plus /health, /ready and /openapi.json. `secrets` are the configured ones
// (only their names are used: a webhook request may name no others); `guard` refuses webhook
// targets at private literal addresses. Both must outlive the routes.
// `misfire`: the workers' settings, which a preview's skip and fire_all follow; `events` records
// single events (it must outlive the routes too).
void add_routes(Router& router, ConnectionPool& pool, Notifier& notifier, const Secrets& secrets,
                const AddressGuard& guard, const metrics::Registry& registry, StreamHub& hub,
                const MisfireConfig& misfire, EventCombiner& events);

// /metrics (what `registry` holds), /livez and /readyz.
void add_operations_routes(Router& router, ConnectionPool& pool, const metrics::Registry& registry);

// The dashboard and the API docs: the page files compiled in (assets.hpp), no token needed.
void add_static_routes(Router& router);

void add_reminder_routes(Router& router, ConnectionPool& pool, Notifier& notifier,
                         const Secrets& secrets, const AddressGuard& guard);
void add_schedule_routes(Router& router, ConnectionPool& pool, const MisfireConfig& misfire);
void add_flag_routes(Router& router, ConnectionPool& pool);
void add_contact_routes(Router& router, ConnectionPool& pool, const Secrets& secrets,
                        const AddressGuard& guard);
void add_rule_routes(Router& router, ConnectionPool& pool, const Secrets& secrets,
                     const AddressGuard& guard);
void add_event_routes(Router& router, ConnectionPool& pool, Notifier& notifier,
                      EventCombiner& combiner);
void add_target_routes(Router& router, ConnectionPool& pool, Notifier& notifier);
void add_audit_routes(Router& router, ConnectionPool& pool);
// GET /v1/auth: the caller's token and what it holds.
void add_auth_routes(Router& router);
// GET /v1/stream, fed by `hub`.
void add_stream_routes(Router& router, ConnectionPool& pool, StreamHub& hub);

}  // namespace nudge::api
