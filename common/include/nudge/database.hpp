#pragma once
// Opening connections the same way everywhere: UTC session time zone, a recognisable
// application_name, and URLs that never reach a log with their password.

#include <exception>
#include <memory>
#include <pqxx/pqxx>
#include <string>

namespace nudge {

// Opens a connection; throws pqxx::broken_connection when the server cannot be reached.
std::unique_ptr<pqxx::connection> open_connection(const std::string& url,
                                                  const std::string& application_name);

// Logs the WARNINGs the database sends `conn`'s session (RAISE WARNING in Nudge's functions: a
// finish's lost leases, a rule that did not run for Nudge's own event) while the handler lives:
// libpqxx drops notices no handler takes. Destroy it before the connection.
std::unique_ptr<pqxx::errorhandler> log_database_warnings(pqxx::connection_base& conn);

// `url` with any password replaced by "***", safe to print.
std::string redact_url(const std::string& url);

// An exception's message with every occurrence of `secret`, and of each password `secret` holds
// when it is a database URL, masked (for errors that may echo them). See mask_secrets().
std::string redact(std::string text, const std::string& secret);

// What a database call's exception `e` says, for a log line: its message with the passwords of
// `url` masked, or, for a connection PostgreSQL closed and libpqxx was asked to use again
// ("Could not obtain client encoding: not connected."), what happened.
std::string database_error(const std::exception& e, const std::string& url);

// The SQLSTATE of `e`. libpqxx 6 leaves it empty on some of the classes it throws (a permission
// error is an insufficient_privilege saying ""): those are given their class's code.
std::string sqlstate_of(const pqxx::sql_error& e);

// For a log line: what an error on a prepared statement that this session made and no longer
// has (or has twice) means: SQLSTATE 26000 or 42P05, as under a pooler in transaction mode,
// which hands each transaction another server session; "" for any other error.
std::string session_not_kept_hint(const std::exception& e);

// The primary message of a database error: "ERROR:  run_at: is required\nCONTEXT: ..." gives
// "run_at: is required" (its CONTEXT and QUERY lines can run to kilobytes of function text).
std::string primary_message(const std::string& what);

}  // namespace nudge
