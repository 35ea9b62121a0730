-- 0028: the stream's page query describes each distinct schedule of a page once (issue 18).
--
-- The change poller's backend spends most of a fire's cost in nudge.stream_changes, and about 5
-- us of it in nudge.describe_reminder, called for every reminder of a page although the
-- reminders that a drain fires mostly share their schedules (one_time ones due at one time,
-- recurring ones on one interval). Here the sentence is computed for the first row of each group
-- of rows whose reminders share every value nudge.describe_reminder reads, and the other rows of
-- the group take it from that row: two sorts of the page's rows (by the group; the text columns
-- compared bytewise, which groups them exactly as equality does) instead of a sentence per row.
-- A page of 1,000 fires of a 100,000-reminder drain: 17.7 -> 15.1 ms of backend CPU (fastest of
-- 5, alternating with 0024's body on a copy of the same database, machine at load 11).

-- It also reads on after a whole batch (p_after_id and p_after_n at their largest values, where a
-- client resumes after pruned history): p_limit + p_after_n overflowed integer there, and the
-- catch-up failed whenever the live stream was already past the pruned batch.

-- Same columns, same rows, in the same order: only the body changes.
CREATE OR REPLACE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint,
                                                p_after_n integer, p_through_pos bigint,
                                                p_limit integer)
RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint,
              entity_type text, entity_id text, data jsonb,
              r_id bigint, r_entity_type text, r_entity_id text, r_event_type text,
              r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer,
              r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer,
              r_next_run_at timestamptz, r_occurrence_at timestamptz, r_attempt integer,
              r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer,
              r_ends_at timestamptz, r_fire_count integer, r_status text,
              r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint,
              r_created_at timestamptz, r_updated_at timestamptz, r_finished_at timestamptz,
              r_payload jsonb, r_request jsonb, r_schedule_text text,
              x_scheduled_for timestamptz, x_fired_at timestamptz, x_outcome text,
              x_attempts integer, x_worker text, x_error text, x_attempt jsonb)
-- PL/pgSQL for its cached plan: as SQL, the query was planned on every call (17 ms of a page of
-- 1,000 fires that took 36 ms to run).
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT q.pos, q.id, q.n, q.kind, q.change, q.object_id, q.entity_type, q.entity_id, q.data,
         q.r_id, q.r_entity_type, q.r_entity_id, q.r_event_type, q.r_channel, q.r_target,
         q.r_schedule_type, q.r_interval_seconds, q.r_cron, q.r_timezone, q.r_misfire_policy,
         q.r_max_attempts, q.r_next_run_at, q.r_occurrence_at, q.r_attempt,
         q.r_stop_condition_type, q.r_stop_condition_value, q.r_max_fires, q.r_ends_at,
         q.r_fire_count, q.r_status, q.r_completed_reason, q.r_last_error, q.r_rule_id,
         q.r_event_id, q.r_created_at, q.r_updated_at, q.r_finished_at, q.r_payload, q.r_request,
         max(q.r_first_schedule_text)
           OVER (PARTITION BY CASE WHEN q.r_schedule_type = 'one_time'
                                   THEN coalesce(q.r_occurrence_at, q.r_next_run_at) END,
                              q.r_interval_seconds, q.r_max_fires, q.r_ends_at,
                              q.r_schedule_type COLLATE "C", q.r_cron_words COLLATE "C",
                              q.r_timezone COLLATE "C", q.r_stop_condition_value COLLATE "C"),
         q.x_scheduled_for, q.x_fired_at, q.x_outcome, q.x_attempts, q.x_worker, q.x_error,
         q.x_attempt
    FROM (
      SELECT p.pos, p.id, p.n, p.kind,
             CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
                  THEN 'failed' ELSE p.change END AS change,
             p.object_id, coalesce(r.entity_type, e.entity_type) AS entity_type,
             coalesce(r.entity_id, e.entity_id) AS entity_id,
             CASE p.kind
               WHEN 'flag' THEN
                 jsonb_build_object('change', p.change,
                                    'flag', coalesce(to_jsonb(f),
                                                     jsonb_build_object('key', p.flag_key)))
               WHEN 'event' THEN
                 jsonb_build_object('change', p.change,
                                    'event', coalesce(nudge.event_json(e),
                                                      jsonb_build_object('id', p.object_id)),
                                    'effects', coalesce(e.effects, '[]'::jsonb))
               WHEN 'rule' THEN
                 jsonb_build_object('change', p.change,
                                    'rule', coalesce(p.gone, nudge.rule_json(u),
                                                     jsonb_build_object('id', p.object_id)))
             END AS data,
             -- The reminder's columns that its JSON shows (nudge.reminder_json), as they are now.
             r.id AS r_id, r.entity_type AS r_entity_type, r.entity_id AS r_entity_id,
             r.event_type AS r_event_type, r.channel AS r_channel, r.target AS r_target,
             r.schedule_type AS r_schedule_type, r.interval_seconds AS r_interval_seconds,
             r.cron AS r_cron, r.timezone AS r_timezone, r.misfire_policy AS r_misfire_policy,
             r.max_attempts AS r_max_attempts, r.next_run_at AS r_next_run_at,
             r.occurrence_at AS r_occurrence_at, r.attempt AS r_attempt,
             r.stop_condition_type AS r_stop_condition_type,
             r.stop_condition_value AS r_stop_condition_value, r.max_fires AS r_max_fires,
             r.ends_at AS r_ends_at, r.fire_count AS r_fire_count, r.status AS r_status,
             r.completed_reason AS r_completed_reason, r.last_error AS r_last_error,
             r.rule_id AS r_rule_id, r.event_id AS r_event_id, r.created_at AS r_created_at,
             r.updated_at AS r_updated_at, r.finished_at AS r_finished_at, r.payload AS r_payload,
             r.request AS r_request, r.cron_words AS r_cron_words,
             -- The sentence of the first row of each group of rows whose reminders share what
             -- nudge.describe_reminder reads: the others take it from that row.
             CASE WHEN r.id IS NOT NULL AND row_number() OVER schedule = 1
                  THEN (SELECT nudge.describe_reminder(d) FROM nudge.reminders d WHERE d.id = r.id)
             END AS r_first_schedule_text,
             x.scheduled_for AS x_scheduled_for, x.fired_at AS x_fired_at, x.outcome AS x_outcome,
             x.attempts AS x_attempts, x.worker AS x_worker, x.error AS x_error,
             -- attempt_json of no row is {}: none.
             CASE WHEN a.attempt IS NOT NULL THEN nudge.attempt_json(a) END AS x_attempt,
             a.attempt AS a_attempt
        FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind, c.change, o.object_id, o.occurrence,
                     o.flag_key, o.gone
                FROM (SELECT c.*,
                             -- The objects of the rows before it: rows that cannot reach the
                             -- page are not unnested (a fire's row holds up to 1,000).
                             coalesce(sum(coalesce(cardinality(c.object_ids),
                                                   cardinality(c.flag_keys)))
                                        OVER (ORDER BY c.pos, c.id ROWS BETWEEN UNBOUNDED PRECEDING
                                                                            AND 1 PRECEDING), 0)
                               AS before
                        -- At most p_limit rows, each holding at least one change, from at most
                        -- p_limit batches, each holding at least one row; in a batch by id.
                        FROM (SELECT b.pos, c.*
                                FROM (SELECT b.pos, b.xids FROM nudge.change_batches b
                                       WHERE b.pos >= p_after_pos AND b.pos <= p_through_pos
                                       ORDER BY b.pos LIMIT p_limit) b
                               CROSS JOIN LATERAL (
                                 SELECT c.* FROM nudge.changes c
                                  WHERE c.xid = ANY (b.xids)
                                    AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id
                                                     ELSE 0 END
                               ) c
                               ORDER BY b.pos, c.id
                               LIMIT p_limit) c) c
               CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                     WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
               -- In bigint: after a whole pruned batch p_after_n is the largest integer.
               WHERE c.before < p_limit::bigint + p_after_n
                 AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
               ORDER BY c.pos, c.id, o.n
               LIMIT p_limit) p
        LEFT JOIN nudge.reminders r ON p.kind = 'reminder' AND r.id = p.object_id
        -- Lookups by the executions' and the attempts' keys for each fire, never a scan.
        LEFT JOIN nudge.executions x
               ON p.kind = 'reminder' AND p.change = 'fired'
              AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
        LEFT JOIN nudge.delivery_attempts a
               ON a.reminder_id = x.reminder_id AND a.scheduled_for = x.scheduled_for
        LEFT JOIN nudge.status_flags f ON p.kind = 'flag' AND f.key = p.flag_key
        LEFT JOIN nudge.events e ON p.kind = 'event' AND e.id = p.object_id
        LEFT JOIN nudge.rules u ON p.kind = 'rule' AND u.id = p.object_id
      WINDOW schedule AS (PARTITION BY CASE WHEN r.schedule_type = 'one_time'
                                            THEN coalesce(r.occurrence_at, r.next_run_at) END,
                                       r.interval_seconds, r.max_fires, r.ends_at,
                                       r.schedule_type COLLATE "C", r.cron_words COLLATE "C",
                                       r.timezone COLLATE "C", r.stop_condition_value COLLATE "C")
    ) q
   ORDER BY q.pos, q.id, q.n, q.a_attempt;
END $$;
