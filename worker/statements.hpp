#pragma once
// Every statement nudge-worker sends, by name: calls to the worker protocol of schema nudge
// (sql/schema.sql). The SQL tests bind the same statements, so they test what the worker runs.

namespace nudge::statements {

struct Statement {
  const char* name;
  const char* sql;
};

// What the database applies on a worker's behalf (type nudge.worker_policy), from its
// configuration; the defaults are config/nudge.toml's.
struct WorkerPolicy {
  int lease_seconds = 30;
  int max_attempts = 3;
  int retry_base_ms = 1000;
  int retry_max_ms = 300000;
  int misfire_threshold_seconds = 60;
  int fire_all_cap = 100;
  int breaker_failures = 5;
  int breaker_open_seconds = 60;
  int breaker_max_open_seconds = 3600;
};

// The policy (nudge.worker_policy) travels as nine scalars, $2..$10: lease_seconds,
// max_attempts, retry_base_ms, retry_max_ms, misfire_threshold_seconds, fire_all_cap,
// breaker_failures, breaker_open_seconds, breaker_max_open_seconds.
#define NUDGE_WORKER_POLICY "ROW($2, $3, $4, $5, $6, $7, $8, $9, $10)::nudge.worker_policy"
#define NUDGE_FINISHED_ARRAYS                                                                    \
  "$11::bigint[], $12::timestamptz[], $13::integer[], $14::text[], $15::text[], $16::integer[]," \
  " $17::text[], $18::integer[]"

// (owner, policy..., ids, scheduled_for, attempts, outcomes, errors, status_codes, responses,
// durations_ms, limit, slots, retry_after_seconds, email_slots, pass_over): records what ended
// and claims up to `limit` more, at most `slots` of them webhooks and emails and `email_slots`
// emails, passing over targets LIKE any of `pass_over` (NULL: none), in one transaction.
inline constexpr Statement kFinishAndClaim{
    "finish_and_claim",
    "SELECT id, entity_type, entity_id, event_type, channel, target, payload, schedule_type,"
    " scheduled_for, attempt, max_attempts, fire_count, request, rescued, rate_limits_left"
    " FROM nudge.finish_and_claim($1, " NUDGE_WORKER_POLICY ", " NUDGE_FINISHED_ARRAYS
    ", $19, $20,"
    " p_retry_after_seconds => $21::integer[], p_email_slots => $22::integer,"
    " p_pass_over => $23::text[])"};
// (owner, policy..., the same arrays): records what ended; answers how many attempts.
inline constexpr Statement kFinish{"finish", "SELECT nudge.finish_attempts($1, " NUDGE_WORKER_POLICY
                                             ", " NUDGE_FINISHED_ARRAYS
                                             ", p_retry_after_seconds => $19::integer[])"};
inline constexpr Statement kSecondsUntilDue{"seconds_until_due",
                                            "SELECT nudge.seconds_until_due()"};
// (owner, ids, lease_seconds)
inline constexpr Statement kExtendLeases{"extend_leases",
                                         "SELECT nudge.extend_leases($1, $2::bigint[], $3)"};
// (owner, ids)
inline constexpr Statement kReleaseLeases{"release_leases",
                                          "SELECT nudge.release_leases($1, $2::bigint[])"};
// (owner, kept ids): gives back every due lease of the owner but those kept (of outcomes still
// to be recorded).
inline constexpr Statement kReleaseLeasesExcept{
    "release_leases_except", "SELECT nudge.release_leases($1, NULL, p_keep => $2::bigint[])"};
// (id, owner): pauses a reminder (nudge.pause_reminder: no next occurrence is decided) and gives
// back the owner's lease on it, in one transaction: nothing claims it until it is resumed, and
// then a claim takes it at once, the attempt not counted (see ClaimLoop::set_aside).
inline constexpr Statement kPauseAndRelease{
    "pause_and_release",
    "SELECT nudge.release_leases($2, ARRAY[p.id]) FROM nudge.pause_reminder($1) p"};
// (ids): those of the listed reminders no other transaction holds now (locked and let go at once:
// the finish of the others would wait for the transaction that holds them).
inline constexpr Statement kFreeOfLocks{
    "free_of_locks",
    "SELECT id FROM nudge.reminders WHERE id = ANY ($1::bigint[]) FOR UPDATE SKIP LOCKED"};
// (retention_days, limit)
// (owner, policy...): records the occurrences of reminders stopped under a lease whose worker
// died; answers how many.
inline constexpr Statement kFinishAbandoned{
    "finish_abandoned", "SELECT nudge.finish_abandoned($1, " NUDGE_WORKER_POLICY ")"};
inline constexpr Statement kPruneHistory{"prune_history",
                                         "SELECT nudge.prune_history($1 * interval '1 day', $2)"};

#undef NUDGE_WORKER_POLICY
#undef NUDGE_FINISHED_ARRAYS

inline constexpr Statement kAll[] = {
    kFinishAndClaim,      kFinish,          kSecondsUntilDue, kExtendLeases, kReleaseLeases,
    kReleaseLeasesExcept, kPauseAndRelease, kFinishAbandoned, kPruneHistory, kFreeOfLocks};

// The channel the triggers of schema nudge notify when something becomes due sooner.
inline constexpr const char* kWakeChannel = "nudge_due";
// The channel claims and finishes notify when they change a circuit breaker's state (a JSON
// object: host, from, to, failures, opened_at, next_probe_at, worker).
inline constexpr const char* kBreakerChannel = "nudge_breaker";

}  // namespace nudge::statements
