-- 0166: the live stream's message of a rule or event deleted before it was sent (a rule
-- updated then deleted, an event pruned) is {"id": N}, as meant: nudge.rule_json and
-- nudge.event_json of no row gave an object of nulls, id null included (explore32a F7).

CREATE OR REPLACE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) RETURNS TABLE(pos bigint, id bigint, n integer, kind text, change text, object_id bigint, entity_type text, entity_id text, data jsonb, r_entity_type text, r_entity_id text, r_event_type text, r_channel text, r_target text, r_schedule_type text, r_interval_seconds integer, r_cron text, r_timezone text, r_misfire_policy text, r_max_attempts integer, r_next_run_at timestamp with time zone, r_occurrence_at timestamp with time zone, r_attempt integer, r_stop_condition_type text, r_stop_condition_value text, r_max_fires integer, r_ends_at timestamp with time zone, r_fire_count integer, r_status text, r_completed_reason text, r_last_error text, r_rule_id bigint, r_event_id bigint, r_created_at timestamp with time zone, r_updated_at timestamp with time zone, r_finished_at timestamp with time zone, r_payload jsonb, r_request jsonb, r_schedule_text text, r_schedule_text_as_before boolean, x_scheduled_for timestamp with time zone, x_fired_at timestamp with time zone, x_outcome text, x_attempts integer, x_worker text, x_error text, x_delivery_attempts text)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT p.pos, p.id, p.n, p.kind,
         CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
              THEN 'failed' ELSE p.change END,
         p.object_id,
         -- A flag's, an event's or a rule's message, rendered here (they are rare), and an
         -- event's entity: each a subquery run only for its kind, so a fire probes none of their
         -- tables (0032's lateral UNION ALL was rescanned for every row).
         CASE WHEN p.kind = 'event'
              THEN (SELECT e.entity_type FROM nudge.events e WHERE e.id = p.object_id) END,
         CASE WHEN p.kind = 'event'
              THEN (SELECT e.entity_id FROM nudge.events e WHERE e.id = p.object_id) END,
         CASE WHEN p.kind = 'flag' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     'flag', coalesce(to_jsonb(f),
                                                      jsonb_build_object('key', p.flag_key)))
             FROM (SELECT 1) one LEFT JOIN nudge.status_flags f ON f.key = p.flag_key)
              WHEN p.kind = 'event' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     -- A row gone by now is its id alone: event_json
                                     -- of no row is an object of nulls (explore32a F7).
                                     'event', CASE WHEN e.id IS NOT NULL THEN nudge.event_json(e)
                                              ELSE jsonb_build_object('id', p.object_id) END,
                                     'effects', coalesce(e.effects, '[]'::jsonb))
             FROM (SELECT 1) one LEFT JOIN nudge.events e ON e.id = p.object_id)
              WHEN p.kind = 'rule' THEN (
           SELECT jsonb_build_object('change', p.change,
                                     'rule', coalesce(p.gone,
                                                      CASE WHEN u.id IS NOT NULL
                                                           THEN nudge.rule_json(u) END,
                                                      jsonb_build_object('id', p.object_id)))
             FROM (SELECT 1) one LEFT JOIN nudge.rules u ON u.id = p.object_id)
         END,
         r.entity_type::text, r.entity_id::text, r.event_type::text,
         r.channel::text, nudge.shown_address(r.target), r.schedule_type::text,
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
         CASE WHEN r.id IS NOT NULL AND NOT p.same THEN nudge.describe_reminder(r) END,
         r.id IS NOT NULL AND p.same,
         x.scheduled_for, x.fired_at, x.outcome::text, x.attempts::integer, x.worker, x.error,
         -- A fire's delivery attempts (their JSON objects joined by commas, in attempt order),
         -- looked up unless it is a log line written at its first attempt: nudge.finish_attempts
         -- records no attempt row for one (executions tell its whole story).
         CASE WHEN x.reminder_id IS NOT NULL
                   AND (r.channel IS DISTINCT FROM 'log' OR x.outcome <> 'delivered'
                        OR x.attempts <> 1)
              THEN (SELECT string_agg(a.j, ',')
                      FROM (SELECT nudge.attempt_json(a)::text AS j
                              FROM nudge.delivery_attempts a
                             WHERE a.reminder_id = x.reminder_id
                               AND a.scheduled_for = x.scheduled_for
                             ORDER BY a.attempt) a)
         END
    -- The page's changes in order, each with its reminder's row address and whether its
    -- schedule key (what nudge.describe_reminder reads, 0028's groups) is the row before's: the
    -- window runs over these narrow rows, and each reminder is then read once more by its
    -- address, which costs less than carrying its whole row through the window.
    FROM (SELECT p.*, q.rt, (lag(q.k) OVER page) IS NOT DISTINCT FROM q.k AS same
            FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind::text AS kind, c.change,
                         o.object_id, o.occurrence, o.flag_key, o.gone
                    FROM (SELECT c.*,
                                 coalesce(sum(coalesce(cardinality(c.object_ids),
                                                       cardinality(c.flag_keys)))
                                            OVER (ORDER BY c.pos, c.id
                                                  ROWS BETWEEN UNBOUNDED PRECEDING
                                                           AND 1 PRECEDING), 0)
                                   AS before
                            -- One batch and one row more than the page: the row read from
                            -- may hold nothing after the position, and a short page tells
                            -- the reader it has caught up. (Batch 0, and the one a restore
                            -- leaves, hold no change.)
                            FROM (SELECT b.pos, c.*
                                    FROM (SELECT b.pos, b.xids FROM nudge.change_batches b
                                           WHERE b.pos >= p_after_pos AND b.pos <= p_through_pos
                                             AND cardinality(b.xids) > 0
                                           ORDER BY b.pos LIMIT p_limit + 1) b
                                   CROSS JOIN LATERAL (
                                     SELECT c.* FROM nudge.changes c
                                      WHERE c.xid = ANY (b.xids)
                                        AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id
                                                         ELSE 0 END
                                   ) c
                                   ORDER BY b.pos, c.id
                                   LIMIT p_limit + 1) c) c
                   CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                         WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
                   WHERE c.before < p_limit::bigint + p_after_n
                     AND (c.pos, c.id, o.n) > (p_after_pos, p_after_id, p_after_n)
                   -- By n as returned.
                   ORDER BY c.pos, c.id, 3
                   LIMIT p_limit) p
            -- The reminder's address and schedule key (what nudge.describe_reminder reads).
            LEFT JOIN LATERAL (
              SELECT q.ctid AS rt,
                     (CASE WHEN q.schedule_type = 'one_time'
                           THEN coalesce(q.occurrence_at, q.next_run_at) END,
                      q.interval_seconds, q.max_fires, q.ends_at, q.schedule_type::text,
                      q.cron_words::text, q.timezone::text, q.stop_condition_value::text) AS k
                FROM nudge.reminders q WHERE p.kind = 'reminder' AND q.id = p.object_id) q ON true
          -- lag reads the partition, not the frame: a frame of the row before spares the
          -- window the search for each row's peers.
          WINDOW page AS (ORDER BY p.pos, p.id, p.n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) p
    -- Lookups for each change, never a scan: the reminder by its address (read in the same
    -- snapshot, so the same row version), a fire's execution by its key.
    LEFT JOIN nudge.reminders r ON r.ctid = p.rt
    LEFT JOIN nudge.executions x
           ON p.kind = 'reminder' AND p.change = 'fired'
          AND x.reminder_id = p.object_id AND x.scheduled_for = p.occurrence
   ORDER BY p.pos, p.id, p.n;
END $$;

COMMENT ON FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) IS 'Up to p_limit changes (fewer only when no more follow up to p_through_pos) after position (p_after_pos, p_after_id, p_after_n) of the batches up to p_through_pos, one row each in that order: a flag''s, event''s or rule''s data as the stream sends it ({change, flag} | {change, event, effects} | {change, rule}; an event or rule gone by now is {"id": N}, a deleted rule as it was) with an event''s entity; a reminder''s change (fired as failed when its failure ended the reminder) with the reminder''s shown columns as they are now (a target URL''s password as ***) (r_status NULL when it is gone; next_run_at, occurrence_at and attempt only while ACTIVE or PAUSED), its schedule_text unless r_schedule_text_as_before says it is the previous row''s, and for a fire its execution with its delivery attempts'' JSON objects joined by commas in attempt order.';

