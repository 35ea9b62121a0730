#pragma once
// What every route shares: a pooled connection for one call (its session naming the caller),
// query parameters checked one by one, cursor pages, and JSON answers.

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <string_view>

#include "caller.hpp"
#include "nudge/pool.hpp"

namespace nudge::api {

inline constexpr std::chrono::seconds kPoolWait{5};  // longer without a connection: 503

// Runs `work` on a pooled connection, each statement in its own implicit transaction: every
// write is one call to a lifecycle function, atomic by itself, so BEGIN and COMMIT would only
// add two round trips per request. The session names the caller first (for the audit trail). A
// broken connection is not reused.
template <typename Work>
auto on_connection(ConnectionPool& pool, Work&& work) {
  auto lease = pool.acquire(kPoolWait);
  try {
    act_for_caller(lease);
    pqxx::nontransaction tx(*lease);
    return work(tx);
  } catch (const pqxx::broken_connection&) {
    lease.discard();
    throw;
  }
}

// The text of the path's group `group`, 400 naming `field` when it is not valid UTF-8 or holds
// U+0000.
std::string path_param(const httplib::Request& req, std::size_t group, const std::string& field);
// The id in the path's first group (400 naming `id` as path_param does, or when it is not a whole
// number from 1 to the largest bigint: "must be a <what> id"). Whether it exists is the route's
// question (404).
std::int64_t path_id(const httplib::Request& req, const std::string& what);

// 400 naming the first query parameter whose name or value is not valid UTF-8 or holds U+0000
// (a name that is not is named as sent, percent-encoded).
void check_query_text(const httplib::Request& req);

// A query parameter, given at most once.
std::optional<std::string> query(const httplib::Request& req, const std::string& name);
// 400 for a query parameter outside `allowed`. Every API route calls it first, before it reads
// its path or body, so that a typo in a parameter is never silently ignored.
void reject_unknown_params(const httplib::Request& req, const std::set<std::string>& allowed);
// A name filter: 1..200 characters.
std::optional<std::string> filter(const httplib::Request& req, const std::string& name);
// true|false.
std::optional<bool> boolean_filter(const httplib::Request& req, const std::string& name);
// One of `allowed`, as the body field of that name must be.
std::optional<std::string> choice_filter(const httplib::Request& req, const std::string& name,
                                         std::initializer_list<std::string_view> allowed);
// The position a `cursor` parameter holds for a list ordered by id descending.
std::optional<std::int64_t> id_cursor(const httplib::Request& req);
// The same for a list ordered by time descending: an RFC 3339 time.
std::optional<std::string> time_cursor(const httplib::Request& req);

// {"items": [...], "next_cursor": ...} from rows of (json text, position); `limit`+1 rows
// were asked for, so a surplus row means there is a next page.
std::string page(const pqxx::result& rows, int limit);

// A JSON answer; pass a temporary (or std::move) and it is not copied (a batch's answer is half
// a megabyte).
void reply(httplib::Response& res, int status, std::string body);

}  // namespace nudge::api
