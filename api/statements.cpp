#include "statements.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace nudge::api {
namespace {

const std::pair<const char*, const char*> kStatements[] = {
    {"create",
     "SELECT c.created, nudge.reminder_json_text(c.reminder) FROM nudge.create_reminder("
     "p_entity_type => $1, p_entity_id => $2, p_event_type => $3, p_channel => $4, "
     "p_schedule_type => $5, p_run_at => $6::timestamptz, p_interval_seconds => $7::integer, "
     "p_target => $8, p_payload => $9::jsonb, p_stop_condition_type => $10, "
     "p_stop_condition_value => $11, p_max_fires => $12::integer, p_ends_at => $13::timestamptz, "
     "p_cron => $14, p_timezone => $15, p_misfire_policy => $16, "
     "p_max_attempts => $17::integer, p_request => $18::jsonb) c"},
    {"create_batch",
     "SELECT item, created, nudge.reminder_json_text(reminder) FROM "
     "nudge.create_reminders($1::jsonb) ORDER BY item"},
    {"get", "SELECT nudge.reminder_json_text(r) FROM nudge.reminders r WHERE r.id = $1"},
    {"overview", "SELECT nudge.overview()::text"},
    {"exists", "SELECT 1 FROM nudge.reminders WHERE id = $1"},
    {"executions",
     // The position is RFC 3339 in UTC, whatever the session's settings, so that a cursor is
     // checked as such before it reaches the database.
     "SELECT e.execution::text, "
     "to_char(e.scheduled_for AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
     "FROM nudge.reminder_executions($1, $2::timestamptz, $3::integer) e"},
    {"pause", "SELECT nudge.reminder_json_text(nudge.pause_reminder($1))"},
    {"resume", "SELECT nudge.reminder_json_text(nudge.resume_reminder($1))"},
    {"cancel", "SELECT nudge.reminder_json_text(nudge.cancel_reminder($1))"},
    {"retry", "SELECT nudge.reminder_json_text(nudge.retry_reminder($1))"},
    // Bulk changes: $1 the ids as an array literal, then the list's filters.
    {"pause_matching",
     "SELECT nudge.pause_reminders(p_ids => $1::bigint[], p_status => $2, p_entity_type => $3, "
     "p_entity_id => $4, p_event_type => $5, p_channel => $6)::text"},
    {"resume_matching",
     "SELECT nudge.resume_reminders(p_ids => $1::bigint[], p_status => $2, p_entity_type => $3, "
     "p_entity_id => $4, p_event_type => $5, p_channel => $6)::text"},
    {"cancel_matching",
     "SELECT nudge.cancel_reminders(p_ids => $1::bigint[], p_status => $2, p_entity_type => $3, "
     "p_entity_id => $4, p_event_type => $5, p_channel => $6)::text"},
    {"retry_matching",
     "SELECT nudge.retry_reminders(p_ids => $1::bigint[], p_status => $2, p_entity_type => $3, "
     "p_entity_id => $4, p_event_type => $5, p_channel => $6)::text"},
    {"reschedule",
     "SELECT nudge.reminder_json_text(nudge.reschedule_reminder($1, $2::timestamptz, $3::integer, "
     "$4::jsonb, $5::integer, $6::timestamptz, $7::text[], $8, $9))"},
    // The times a reminder created at `from` fires (nudge.preview_reminder) under its misfire
    // policy ($11) and the workers' [misfire] settings ($12, $13), as a JSON array, and the
    // schedule in words, which names a cron schedule's times in its zone, the others' in $10.
    {"preview",
     "SELECT coalesce(jsonb_agg(p.t ORDER BY p.n), '[]')::text, "
     "nudge.describe_schedule($1, $4::timestamptz, $5::integer, $6, "
     "CASE WHEN $1 = 'cron' THEN $7 ELSE $10 END, "
     "p_stop_condition_type => $14, p_stop_condition_value => $15, "
     "p_max_fires => $8::integer, p_ends_at => $9::timestamptz) "
     "FROM nudge.preview_reminder($1, $2::timestamptz, $3::integer, $4::timestamptz, $5::integer, "
     "$6, $7, $8::integer, $9::timestamptz, $11, $12::integer, $13::integer) "
     "WITH ORDINALITY p(t, n)"},
    // A parsed phrase (api/schedule_words.hpp) in one round trip: its moments as instants in
    // its zone ($1) at now ($2; the database's, to the second: "in 2 hours" means no
    // microseconds), whether the one_time or start instant is past and whether the
    // end comes before the first fire, the sentence, and the first five fires that will happen,
    // in the zone too (an interval's shift across daylight saving shows).
    {"parse_schedule",
     "WITH b AS MATERIALIZED (SELECT nudge.checked_timezone($1) AS tz, "
     "                               coalesce($2::timestamptz, date_trunc('second', now())) "
     "                                 AS now), "
     "s AS MATERIALIZED (SELECT b.tz, b.now, "
     "                          nudge.resolve_moment($4::jsonb, b.tz, b.now, b.now) AS run_at "
     "                     FROM b), "
     "e AS MATERIALIZED (SELECT s.*, nudge.resolve_moment($5::jsonb, s.tz, s.now, "
     "                                                    coalesce(s.run_at, s.now)) AS ends_at "
     "                     FROM s), "
     "m AS MATERIALIZED (SELECT e.*, ARRAY(SELECT nudge.preview_schedule($3, "
     "                     CASE WHEN e.now > nudge.earliest_time() "
     "                          THEN e.now - interval '1 microsecond' ELSE e.now END, "
     "                     5, coalesce(e.run_at, e.now), "
     "                     $6::integer, $7, CASE WHEN $3 = 'cron' THEN e.tz END)) AS times "
     "                     FROM e) "
     "SELECT nudge.rfc3339_in_zone(m.run_at, m.tz), nudge.rfc3339_in_zone(m.ends_at, m.tz), "
     "       coalesce(m.run_at < m.now, false), coalesce(m.ends_at < m.times[1]::timestamptz, "
     "false), "
     "       nudge.describe_schedule($3, m.run_at, $6::integer, $7, m.tz, "
     "         CASE WHEN $8::text IS NOT NULL THEN 'db_check' END, $8, $9::integer, m.ends_at), "
     "       to_jsonb(ARRAY(SELECT nudge.rfc3339_in_zone(u.t::timestamptz, m.tz) "
     "         FROM unnest(m.times) WITH ORDINALITY u(t, n) "
     "         WHERE (m.ends_at IS NULL OR u.t::timestamptz <= m.ends_at) "
     "           AND ($9::integer IS NULL OR u.n <= $9::integer) ORDER BY u.n))::text, "
     "       m.tz, nudge.rfc3339_in_zone(m.now, m.tz) "
     "  FROM m"},
    // Target hosts, read only: $1 a state or NULL, $2 the host to list after, $3 the limit, $4
    // whether paced now, whole or some of its URLs, or NULL.
    {"list_targets",
     "SELECT nudge.target_host_json(h)::text, h.host FROM nudge.target_hosts h "
     "WHERE ($1::text IS NULL OR h.state = $1) AND ($2::text IS NULL OR h.host > $2) "
     "AND ($4::boolean IS NULL OR nudge.is_paced(h) = $4) "
     "ORDER BY h.host LIMIT $3"},
    {"busy_hosts", "SELECT nudge.busy_hosts($1)::text"},
    {"set_flag", "SELECT row_to_json(f)::text FROM nudge.set_flag($1, $2) f"},
    // Two statements: in the one that closes it, the host's JSON would be read in a snapshot
    // from before its paced URLs were deleted (explore27a L2).
    {"close_breaker", "SELECT (nudge.close_breaker($1)).host"},
    {"target_host",
     "SELECT nudge.target_host_json(h)::text FROM nudge.target_hosts h WHERE h.host = $1"},
    {"get_flag", "SELECT row_to_json(f)::text FROM nudge.status_flags f WHERE f.key = $1"},
    {"list_flags",
     "SELECT row_to_json(f)::text, f.key FROM nudge.status_flags f "
     "WHERE ($1::text IS NULL OR f.key > $1) ORDER BY f.key LIMIT $2"},
    // Contacts are user data like status_flags: read and deleted directly, written through
    // nudge.put_contact (which checks the address against the channel).
    {"put_contact",
     "SELECT nudge.contact_json(p.contact)::text, p.created "
     "FROM nudge.put_contact($1, $2, $3, $4) p"},
    {"get_contact",
     "SELECT nudge.contact_json(c)::text FROM nudge.contacts c "
     "WHERE c.entity_type = $1 AND c.entity_id = $2 AND c.channel = $3"},
    {"delete_contact",
     "DELETE FROM nudge.contacts c WHERE c.entity_type = $1 AND c.entity_id = $2 AND c.channel = "
     "$3 "
     "RETURNING 1"},
    {"list_contacts",
     "SELECT coalesce(jsonb_agg(nudge.contact_json(c) ORDER BY c.channel), '[]')::text "
     "FROM nudge.contacts c WHERE c.entity_type = $1 AND c.entity_id = $2"},
    // A rule saved answers a warning when the newest event of its type could not have run it.
    {"create_rule",
     "SELECT (nudge.rule_json(r) || jsonb_strip_nulls(jsonb_build_object('warning', "
     "nudge.rule_warning(r))))::text FROM nudge.create_rule(p_name => $1, p_event_type => $2, "
     "p_action => $3::jsonb, p_when => $4::jsonb, p_enabled => $5::boolean) r"},
    {"get_rule", "SELECT nudge.rule_json(r)::text FROM nudge.rules r WHERE r.id = $1"},
    {"list_rules",
     "SELECT nudge.rule_json(r)::text, r.id FROM nudge.rules r "
     "WHERE ($1::text IS NULL OR r.event_type = $1) AND ($2::boolean IS NULL OR r.enabled = $2) "
     "AND ($3::bigint IS NULL OR r.id < $3) ORDER BY r.id DESC LIMIT $4"},
    {"update_rule",
     "SELECT (nudge.rule_json(r) || jsonb_strip_nulls(jsonb_build_object('warning', "
     "nudge.rule_warning(r))))::text FROM nudge.update_rule(p_id => $1, p_name => $2, "
     "p_event_type => $3, p_action => $4::jsonb, p_when => $5::jsonb, p_enabled => $6::boolean) r"},
    {"delete_rule", "SELECT (nudge.delete_rule($1)).id"},
    // $7: its lock waits in ms at most, for this statement only (NULL: the session's).
    {"emit_event",
     "SELECT (a->>'created')::boolean, a::text FROM nudge.emit_event(p_event_type => CASE WHEN "
     "$7::text IS NULL OR set_config('lock_timeout', $7, true) IS NOT NULL THEN $1 END, "
     "p_entity_type => $2, p_entity_id => $3, p_data => $4::jsonb, p_key => $5, "
     "p_occurred_at => $6::timestamptz) AS a"},
    {"record_events", "SELECT nudge.record_events($1::jsonb)"},
    // Single events recorded together (api/event_combiner.hpp): each one's answer, in order.
    {"emit_events_each",
     // Its lock waits are $2 ms at most, for this statement only (set before the call runs).
     "SELECT (a->>'created')::boolean, a::text FROM jsonb_array_elements("
     "nudge.emit_events_one_by_one(CASE WHEN set_config('lock_timeout', $2, true) IS NOT NULL "
     "THEN $1::jsonb END)) WITH ORDINALITY AS x(a, n) ORDER BY n"},
    // An event as the API shows it: {"event": ..., "effects": [...]}.
    {"get_event",
     "SELECT jsonb_build_object('event', nudge.event_json(e), 'effects', e.effects)::text "
     "FROM nudge.events e WHERE e.id = $1"},
    // Who the request is from, for the audit triggers (api/caller.hpp).
    {"act", "SELECT set_config('nudge.actor', $1, false), set_config('nudge.route', $2, false)"},
    // A live token by its SHA-256 (hex): its name and scopes.
    {"token",
     "SELECT t.name, array_to_string(t.scopes, ',') FROM nudge.api_tokens t "
     "WHERE t.token_hash = decode($1, 'hex') AND t.revoked_at IS NULL"},
    // The live stream's reads of the change log (api/stream_changes.hpp).
    {"stream_changes", "SELECT * FROM nudge.stream_changes($1, $2, $3, $4, $5)"},
    {"stream_advance", "SELECT nudge.stream_advance()"},
    {"stream_last", "SELECT max(pos) FROM nudge.change_batches"},
    {"stream_pruned", "SELECT pos FROM nudge.changes_pruned"},
};

// Lists with optional filters, planned for each request's values (exec_params), not prepared: a
// prepared one soon runs on a generic plan, made for any filter, and one made while a pooled
// connection served unindexed filters read all 2.1 million events for every later filtered
// list on that connection (0.4 ms -> 328 ms; explore17b #3).
const std::pair<const char*, const char*> kPerCallStatements[] = {
    {"list",
     "SELECT nudge.reminder_json_text(r), r.id FROM nudge.reminders r "
     "WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.entity_type = $2) "
     "AND ($3::text IS NULL OR r.entity_id = $3) AND ($4::text IS NULL OR r.event_type = $4) "
     "AND ($5::text IS NULL OR r.channel = $5) AND ($6::bigint IS NULL OR r.id < $6) "
     // stop_condition_type follows from a stop flag (a constraint): said, it lets a live status
     // take the live reminders' stop flag index (0.07 ms, not 32, on 200,000 rows).
     "AND ($8::text IS NULL OR (r.stop_condition_value = $8 AND r.stop_condition_type = "
     "'db_check')) ORDER BY r.id DESC LIMIT $7"},
    {"list_events",
     "SELECT jsonb_build_object('event', nudge.event_json(e), 'effects', e.effects)::text, e.id "
     "FROM nudge.events e WHERE ($1::text IS NULL OR e.event_type = $1) "
     "AND ($2::text IS NULL OR e.entity_type = $2) AND ($3::text IS NULL OR e.entity_id = $3) "
     "AND ($4::bigint IS NULL OR e.id < $4) ORDER BY e.id DESC LIMIT $5"},
    {"list_audit",
     "SELECT row_to_json(a)::text, a.id FROM nudge.audit a "
     "WHERE ($1::text IS NULL OR a.token = $1) AND ($2::text IS NULL OR a.subject_type = $2) "
     "AND ($3::text IS NULL OR a.subject = $3) AND ($4::bigint IS NULL OR a.id < $4) "
     "ORDER BY a.id DESC LIMIT $5"},
};

// Statements on tokens outside the request path: the token commands and the token watcher.
const std::pair<const char*, const char*> kTokenStatements[] = {
    {"create_token",
     "SELECT t.name FROM nudge.create_token($1, decode($2, 'hex'), string_to_array($3, ',')) t"},
    {"revoke_token", "SELECT t.revoked_at = now() FROM nudge.revoke_token($1) t"},
    // Times as RFC 3339 in UTC, to the second; "-" for none.
    {"list_tokens",
     "SELECT t.name, array_to_string(t.scopes, ','), "
     "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
     "coalesce(to_char(t.last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), "
     "coalesce(to_char(t.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-') "
     "FROM nudge.api_tokens t ORDER BY t.created_at, t.name"},
    // Hashes as a text array of hex: {"ab01...","cd23..."}.
    {"tokens_used",
     "UPDATE nudge.api_tokens t SET last_used_at = now() "
     "WHERE t.token_hash IN (SELECT decode(h, 'hex') FROM unnest($1::text[]) h)"},
    // Of these hashes (as above), those of no live token with scope read: their streams end.
    {"tokens_without_read",
     "SELECT h FROM unnest($1::text[]) h WHERE NOT EXISTS (SELECT FROM nudge.api_tokens t "
     "WHERE t.token_hash = decode(h, 'hex') AND t.revoked_at IS NULL AND 'read' = ANY (t.scopes))"},
};

}  // namespace

const char* per_call_statement(std::string_view name) {
  for (const auto& [n, sql] : kPerCallStatements)
    if (name == n) return sql;
  throw std::logic_error("no statement named " + std::string(name));
}

void set_up_connection(pqxx::connection& conn) {
  pqxx::nontransaction(conn).exec("SET nudge.notify_after_commit = 'on'");
  for (const auto& [name, sql] : kStatements) conn.prepare(name, sql);
}

void set_up_request_connection(pqxx::connection& conn, int statement_timeout_ms,
                               int lock_timeout_ms, const std::string& webhook_secret_names) {
  set_up_connection(conn);
  pqxx::nontransaction(conn).exec(
      "SET statement_timeout = " + std::to_string(statement_timeout_ms) +
      "; SET lock_timeout = " + std::to_string(lock_timeout_ms) +
      "; SET nudge.secret_names = " + conn.quote(webhook_secret_names));
}

void set_up_token_connection(pqxx::connection& conn) {
  for (const auto& [name, sql] : kTokenStatements) conn.prepare(name, sql);
}

}  // namespace nudge::api
