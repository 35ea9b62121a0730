#pragma once
// The API's routes: each one validates its input (input.hpp), makes one call to a SQL function
// of the lifecycle (or one read), and answers JSON.

#include <pqxx/pqxx>

#include "nudge/pool.hpp"
#include "router.hpp"

namespace nudge::api {

// Prepares the statements the routes use; the pool runs it on every new connection.
void prepare_statements(pqxx::connection& conn);

void add_routes(Router& router, ConnectionPool& pool);

}  // namespace nudge::api
