#pragma once
// The privileges each program's login uses, as README "Least privilege" grants them: a login that
// lacks one is ready by every other check, yet fails the requests (or deliveries) that need it.

#include <optional>
#include <pqxx/pqxx>
#include <string>

namespace nudge {

enum class Program { api, worker };

// What this connection's login lacks of what `program` uses ("UPDATE on nudge.api_tokens,
// EXECUTE on function nudge.stream_advance()"), or nothing. Throws pqxx errors (a table missing
// from an older schema among them).
std::optional<std::string> missing_grants(pqxx::connection& conn, Program program);

}  // namespace nudge
