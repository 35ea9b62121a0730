#pragma once
// Every statement nudge-api sends, by name, prepared once on each pooled connection: the API's
// one way into the database (the functions and tables of schema nudge, sql/schema.sql).

#include <pqxx/pqxx>
#include <string>
#include <string_view>

namespace nudge::api {

// Readies a new pooled connection: its session promises to leave wake-up hints to `Notifier`,
// and every statement is prepared.
void set_up_connection(pqxx::connection& conn);
// The text of a statement run with exec_params, planned for its values on every call.
const char* per_call_statement(std::string_view name);
// set_up_connection, the longest statement a request may run (0: no limit), and the names of
// the secrets that may stand for a target (webhook_secret_names: never their values), so that a
// create the database renders from an event refuses another {{secret.NAME}} target, as a create
// over REST does.
void set_up_request_connection(pqxx::connection& conn, int statement_timeout_ms,
                               int lock_timeout_ms, const std::string& webhook_secret_names);

// Readies a connection of the token commands (nudge-api token ...) or of the token watcher: the
// statements on nudge.api_tokens they send.
void set_up_token_connection(pqxx::connection& conn);

}  // namespace nudge::api
