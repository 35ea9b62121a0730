#pragma once
// The API's routes: each one validates its input (input.hpp), makes one call to a SQL function
// of the lifecycle (or one read), and answers JSON.

#include <pqxx/pqxx>

#include "notifier.hpp"
#include "nudge/pool.hpp"
#include "router.hpp"

namespace nudge::api {

// Readies a new pooled connection: its session promises to leave wake-up hints to `Notifier`,
// and the statements the routes use are prepared.
void set_up_connection(pqxx::connection& conn);

void add_routes(Router& router, ConnectionPool& pool, Notifier& notifier);

}  // namespace nudge::api
