--! breaking-change
-- 0032: the stream's page query returns one row per change, in the order it reads them, and
-- sends each sentence once (issue 18: the live stream must keep up with a 2-worker drain).
--
-- nudge.stream_changes (0018, 0028, 0029) sorted a page's wide rows three times (twice for the
-- window that shares a reminder's schedule_text among the rows with the same schedule, once
-- back into page order), built three hash tables of the page to join the flags, events and
-- rules that a fire never has, and returned a row per delivery attempt. Now:
-- 1. The page's rows come out of the lookups in page order and stay in it: the flag, event and
--    rule lookups are lateral branches that run only for their kind, a fire's delivery attempts
--    are one text column (their JSON objects joined by commas, in attempt order, as the API
--    splices them into the execution's delivery_attempts), and the one window (lag, in page
--    order) needs no sort.
-- 2. The sentence is computed where a reminder's schedule differs from the row before's (the
--    key 0028 grouped by), and r_schedule_text_as_before tells the reader to repeat the last
--    one: a drain's page mostly shares one schedule, so it is computed about once a page.
-- 3. Only what the API shows is sent: no r_id (object_id is the reminder's id; r_status is
--    NULL when the reminder is gone), no second copy of a reminder's entity (entity_type and
--    entity_id are an event's; a reminder's are r_entity_type and r_entity_id), and what is
--    due (next_run_at, occurrence_at, attempt) only while the reminder can still fire.
-- A page of 1,000 fires of a 100,000-reminder drain, its rows turned into text as the wire
-- sends them (callgrind, postgres --single, difference of 5 and 25 pages): 134.2M -> 107.5M
-- instructions. The API renders the same JSON (tests/api/stream_test.cpp).

DROP FUNCTION nudge.stream_changes(bigint, bigint, integer, bigint, integer);

CREATE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer,
                                     p_through_pos bigint, p_limit integer)
RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint,
              entity_type text, entity_id text, data jsonb,
              r_entity_type text, r_entity_id text, r_event_type text,
              r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer,
              r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer,
              r_next_run_at timestamptz, r_occurrence_at timestamptz, r_attempt integer,
              r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer,
              r_ends_at timestamptz, r_fire_count integer, r_status text,
              r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint,
              r_created_at timestamptz, r_updated_at timestamptz, r_finished_at timestamptz,
              r_payload jsonb, r_request jsonb, r_schedule_text text,
              r_schedule_text_as_before boolean,
              x_scheduled_for timestamptz, x_fired_at timestamptz, x_outcome text,
              x_attempts integer, x_worker text, x_error text, x_delivery_attempts text)
-- PL/pgSQL for its cached plan: as SQL, the query was planned on every call.
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT p.pos, p.id, p.n, p.kind,
         CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
              THEN 'failed' ELSE p.change END,
         p.object_id, v.entity_type, v.entity_id, v.data,
         r.entity_type::text, r.entity_id::text, r.event_type::text,
         r.channel::text, r.target::text, r.schedule_type::text,
         r.interval_seconds::integer, r.cron::text, r.timezone, r.misfire_policy::text,
         r.max_attempts::integer,
         -- What is due is sent only while the reminder can still fire: the JSON shows it then.
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.occurrence_at END,
         CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.attempt::integer END,
         r.stop_condition_type::text, r.stop_condition_value::text, r.max_fires::integer,
         r.ends_at, r.fire_count::integer, r.status::text, r.completed_reason::text,
         r.last_error::text, r.rule_id, r.event_id, r.created_at, r.updated_at, r.finished_at,
         r.payload::jsonb, r.request,
         -- The sentence only where the schedule differs from the row before's (a drain's page
         -- mostly shares one): the reader repeats the last one it got where as_before is true.
         CASE WHEN r.id IS NOT NULL
                   AND (lag(k.k) OVER page) IS DISTINCT FROM k.k
              THEN (SELECT nudge.describe_reminder(d) FROM nudge.reminders d WHERE d.id = r.id)
         END,
         r.id IS NOT NULL AND (lag(k.k) OVER page) IS NOT DISTINCT FROM k.k,
         x.scheduled_for, x.fired_at, x.outcome::text, x.attempts::integer, x.worker, x.error,
         t.attempts
    FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind::text AS kind, c.change, o.object_id,
                 o.occurrence, o.flag_key, o.gone
            FROM (SELECT c.*,
                         coalesce(sum(coalesce(cardinality(c.object_ids),
                                               cardinality(c.flag_keys)))
                                    OVER (ORDER BY c.pos, c.id ROWS BETWEEN UNBOUNDED PRECEDING
                                                                        AND 1 PRECEDING), 0)
                           AS before
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
           WHERE c.before < p_limit::bigint + p_after_n
             AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
           -- By n as returned: the rows above keep this order, and nothing sorts them again.
           ORDER BY c.pos, c.id, 3
           LIMIT p_limit) p
    -- Lookups by key for each change, never a scan: the reminder, a fire's execution and its
    -- delivery attempts (as one text, the JSON objects joined by commas, in attempt order).
    LEFT JOIN nudge.reminders r ON p.kind = 'reminder' AND r.id = p.object_id
    LEFT JOIN nudge.executions x
           ON p.kind = 'reminder' AND p.change = 'fired'
          AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
    LEFT JOIN LATERAL (
      SELECT string_agg(nudge.attempt_json(a)::text, ',' ORDER BY a.attempt) AS attempts
        FROM nudge.delivery_attempts a
       WHERE a.reminder_id = x.reminder_id AND a.scheduled_for = x.scheduled_for
    ) t ON x.reminder_id IS NOT NULL
    -- A flag's, an event's or a rule's message, rendered here (they are rare): each branch runs
    -- only for its kind, so a fire probes none of their tables.
    LEFT JOIN LATERAL (
      SELECT jsonb_build_object('change', p.change,
                                'flag', coalesce(to_jsonb(f), jsonb_build_object('key', p.flag_key)))
               AS data, NULL::text AS entity_type, NULL::text AS entity_id
        FROM (SELECT 1) one LEFT JOIN nudge.status_flags f ON f.key = p.flag_key
       WHERE p.kind = 'flag'
      UNION ALL
      SELECT jsonb_build_object('change', p.change,
                                'event', coalesce(nudge.event_json(e),
                                                  jsonb_build_object('id', p.object_id)),
                                'effects', coalesce(e.effects, '[]'::jsonb)),
             e.entity_type, e.entity_id
        FROM (SELECT 1) one LEFT JOIN nudge.events e ON e.id = p.object_id
       WHERE p.kind = 'event'
      UNION ALL
      SELECT jsonb_build_object('change', p.change,
                                'rule', coalesce(p.gone, nudge.rule_json(u),
                                                 jsonb_build_object('id', p.object_id))),
             NULL, NULL
        FROM (SELECT 1) one LEFT JOIN nudge.rules u ON u.id = p.object_id
       WHERE p.kind = 'rule'
    ) v ON true
    -- What nudge.describe_reminder reads of the reminder (0028's groups): the same key, the same
    -- sentence.
    CROSS JOIN LATERAL (
      SELECT (CASE WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at) END,
              r.interval_seconds, r.max_fires, r.ends_at, r.schedule_type::text, r.cron_words::text,
              r.timezone::text, r.stop_condition_value::text) AS k
    ) k
  WINDOW page AS (ORDER BY p.pos, p.id, p.n)
   ORDER BY p.pos, p.id, p.n;
END $$;

COMMENT ON FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) IS
  'Up to p_limit changes after position (p_after_pos, p_after_id, p_after_n) of the batches up to p_through_pos, one row each in that order: a flag''s, event''s or rule''s data as the stream sends it ({change, flag} | {change, event, effects} | {change, rule}) with an event''s entity; a reminder''s change (fired as failed when its failure ended the reminder) with the reminder''s shown columns as they are now (r_status NULL when it is gone; next_run_at, occurrence_at and attempt only while ACTIVE or PAUSED), its schedule_text unless r_schedule_text_as_before says it is the previous row''s, and for a fire its execution with its delivery attempts'' JSON objects joined by commas in attempt order.';
