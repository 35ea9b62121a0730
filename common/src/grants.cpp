#include "nudge/grants.hpp"

#include <string_view>
#include <vector>

namespace nudge {
namespace {

// Privileges (comma-separated) on objects (comma-separated) of one kind: README "Least
// privilege", grant by grant.
struct Need {
  std::string_view kind;  // schema, database, table, sequence or function
  std::string_view privileges;
  std::string_view objects;
};

constexpr Need kApi[] = {
    {"schema", "USAGE", "nudge"},
    {"table", "SELECT", "nudge.migrations"},
    {"database", "TEMP", "current"},
    {"table", "SELECT,UPDATE", "nudge.api_tokens"},
    {"table", "SELECT,INSERT", "nudge.audit,nudge.events"},
    // changes_pruned: a stream resumed with Last-Event-ID reads it (explore30c F2: without it the
    // resumed stream said nothing, for good, while /readyz said the grants were fine).
    {"table", "SELECT",
     "nudge.change_batches,nudge.changes,nudge.changes_pruned,nudge.delivery_attempts,"
     "nudge.executions"},
    // Closing a breaker by hand (POST /v1/targets/close, nudge.close_breaker) ends its pacing.
    {"table", "SELECT,UPDATE", "nudge.target_hosts"},
    {"table", "SELECT,DELETE", "nudge.paced_targets"},
    {"table", "SELECT,INSERT,UPDATE,DELETE", "nudge.contacts,nudge.rules"},
    {"table", "SELECT,INSERT,UPDATE", "nudge.reminders,nudge.status_flags"},
    {"sequence", "USAGE", "nudge.events_id_seq"},
    {"function", "EXECUTE", "nudge.stream_advance()"},
    // Its /metrics' nudge_rule_failures_total (explore30c F3: only the worker's had it).
    {"sequence", "SELECT", "nudge.rule_failures"},
};

constexpr Need kWorker[] = {
    {"schema", "USAGE", "nudge"},
    {"table", "SELECT", "nudge.migrations"},
    {"table", "SELECT,DELETE", "nudge.audit,nudge.change_batches,nudge.changes"},
    {"table", "SELECT,UPDATE", "nudge.changes_pruned"},
    {"table", "SELECT", "nudge.contacts,nudge.status_flags"},
    {"table", "SELECT,INSERT,DELETE", "nudge.delivery_attempts,nudge.events,nudge.executions"},
    {"table", "SELECT,UPDATE,DELETE", "nudge.reminders"},
    {"table", "SELECT,DELETE", "nudge.stopped_while_leased"},
    {"table", "SELECT,INSERT,UPDATE", "nudge.target_hosts"},
    {"table", "SELECT,INSERT,UPDATE,DELETE", "nudge.paced_targets"},
    {"sequence", "USAGE", "nudge.events_id_seq"},
    {"sequence", "SELECT", "nudge.rule_failures"},
};

std::vector<std::string_view> split(std::string_view list) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t comma = list.find(',', start);
    parts.push_back(list.substr(start, comma - start));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

}  // namespace

std::optional<std::string> missing_grants(pqxx::connection& conn, Program program) {
  std::string rows;
  int n = 0;
  const auto add_rows = [&](const auto& needs) {
    for (const Need& need : needs) {
      for (const auto object : split(need.objects)) {
        for (const auto privilege : split(need.privileges)) {
          rows += rows.empty() ? "(" : ", (";
          rows += std::to_string(++n) + ", " + conn.quote(std::string(need.kind)) + ", " +
                  conn.quote(std::string(privilege)) + ", " + conn.quote(std::string(object)) + ")";
        }
      }
    }
  };
  if (program == Program::api) add_rows(kApi);
  if (program == Program::worker) add_rows(kWorker);
  // Each kind has its own has_*_privilege; CASE asks only the one of its row.
  const pqxx::row r = pqxx::nontransaction(conn).exec1(
      "SELECT string_agg(g.privilege || ' on ' || CASE g.kind WHEN 'table' THEN g.object "
      "WHEN 'database' THEN 'the database' ELSE g.kind || ' ' || g.object END, ', ' "
      "ORDER BY g.n) "
      "FROM (VALUES " +
      rows +
      ") g(n, kind, privilege, object) "
      "WHERE NOT CASE g.kind "
      "WHEN 'schema' THEN pg_catalog.has_schema_privilege(g.object, g.privilege) "
      "WHEN 'database' THEN pg_catalog.has_database_privilege(pg_catalog.current_database(), "
      "g.privilege) "
      "WHEN 'table' THEN pg_catalog.has_table_privilege(g.object, g.privilege) "
      "WHEN 'sequence' THEN pg_catalog.has_sequence_privilege(g.object, g.privilege) "
      "ELSE pg_catalog.has_function_privilege(g.object, g.privilege) END");
  if (r[0].is_null()) return std::nullopt;
  return r[0].as<std::string>();
}

}  // namespace nudge
