-- 0020: a reminder's sentence (schedule_text) is stored in its row, so the live stream and every
-- read of a reminder's JSON read a column instead of composing it per row.
--
-- Measured: under the 100k drain the stream's poller reads pages of 1,000 fires; in the database
-- a page cost ~18 ms (loaded machine: ~40 ms), 7 ms of it nudge.describe_reminder, once per fire.
-- The sentence depends only on the row (nudge.describe_reminder reads nothing else): it changes
-- when a create, a reschedule or an update of its parts writes them, never on a claim (which sets
-- none of them) and, by the trigger's WHEN, not on a finish (a one_time reminder's occurrence is
-- coalesce(occurrence_at, next_run_at), unchanged by a fire or a retry; a repeating one's
-- next_run_at is no part of its sentence).

ALTER TABLE nudge.reminders ADD COLUMN schedule_text text;
COMMENT ON COLUMN nudge.reminders.schedule_text IS
  'nudge.describe_reminder of the row, kept by triggers reminder_schedule_is_described (inserts) and reminder_schedule_is_redescribed (updates of its parts).';

CREATE FUNCTION nudge.describe_reminder_schedule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  NEW.schedule_text := nudge.describe_reminder(NEW);
  RETURN NEW;
END $$;
COMMENT ON FUNCTION nudge.describe_reminder_schedule() IS
  'Trigger: sets schedule_text of the reminder row being written to nudge.describe_reminder of that row.';

-- Named to run after reminder_cron_is_described (BEFORE triggers run in name order): the
-- sentence of a cron reminder reads its cron_words.
CREATE TRIGGER reminder_schedule_is_described
  BEFORE INSERT ON nudge.reminders
  FOR EACH ROW EXECUTE FUNCTION nudge.describe_reminder_schedule();

-- Claims set none of the columns listed, so they queue nothing; a finish sets next_run_at and
-- occurrence_at, and the WHEN turns it away without a call. A write of schedule_text itself is
-- described again: the column never says anything but the row's sentence.
CREATE TRIGGER reminder_schedule_is_redescribed
  BEFORE UPDATE OF schedule_type, next_run_at, occurrence_at, interval_seconds, cron,
                   cron_schedule, cron_words, timezone, stop_condition_value, max_fires, ends_at,
                   schedule_text
  ON nudge.reminders
  FOR EACH ROW
  WHEN ((NEW.schedule_type, NEW.interval_seconds, NEW.cron_words, NEW.timezone,
         NEW.stop_condition_value, NEW.max_fires, NEW.ends_at, NEW.schedule_text)
        IS DISTINCT FROM
        (OLD.schedule_type, OLD.interval_seconds, OLD.cron_words, OLD.timezone,
         OLD.stop_condition_value, OLD.max_fires, OLD.ends_at, OLD.schedule_text)
        OR (NEW.schedule_type = 'one_time'
            AND coalesce(NEW.occurrence_at, NEW.next_run_at)
                <> coalesce(OLD.occurrence_at, OLD.next_run_at)))
  EXECUTE FUNCTION nudge.describe_reminder_schedule();

-- The rows there are, without auditing what is no change of theirs.
SELECT set_config('nudge.audit', 'off', true);
UPDATE nudge.reminders r SET schedule_text = nudge.describe_reminder(r);
SELECT set_config('nudge.audit', '', true);

CREATE OR REPLACE FUNCTION nudge.reminder_json(r nudge.reminders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  -- The payload is the user's JSON, kept as it is (nulls inside it too): only unset fields of
  -- the reminder are left out.
  SELECT jsonb_build_object('payload', r.payload) || jsonb_strip_nulls(jsonb_build_object(
    'id', r.id, 'entity_type', r.entity_type, 'entity_id', r.entity_id,
    'event_type', r.event_type, 'channel', r.channel, 'target', r.target,
    'schedule_type', r.schedule_type,
    'interval_seconds', r.interval_seconds, 'cron', r.cron, 'timezone', r.timezone,
    'misfire_policy', r.misfire_policy, 'max_attempts', r.max_attempts,
    'next_run_at', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
    'retrying_occurrence', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.occurrence_at END,
    'attempts', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') AND r.occurrence_at IS NOT NULL
                     THEN r.attempt END,
    'stop_condition_type', r.stop_condition_type,
    'stop_condition_value', r.stop_condition_value, 'max_fires', r.max_fires,
    'ends_at', r.ends_at, 'fire_count', r.fire_count, 'status', r.status,
    'completed_reason', r.completed_reason, 'last_error', r.last_error,
    'rule_id', r.rule_id, 'event_id', r.event_id,
    'created_at', r.created_at, 'updated_at', r.updated_at, 'finished_at', r.finished_at))
    -- The request as stored, its nulls kept like the payload's ({{secret.NAME}}, never a value).
    || CASE WHEN r.request IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('request', r.request) END
    || jsonb_build_object('schedule_text', r.schedule_text)
$$;
COMMENT ON FUNCTION nudge.reminder_json(nudge.reminders) IS
  'The public JSON form of a reminder: every field that is set (nulls left out, the payload and the request as stored), times in the session''s zone, the occurrence being retried and its attempts while there is one, the rule and event that created it, its schedule in words (schedule_text, as stored with the row).';

-- The stream reads the stored sentence: 0018's body but for that column and the keys of the
-- event and rule lookups.
CREATE OR REPLACE FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer,
                                     p_through_pos bigint, p_limit integer)
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
  SELECT p.pos, p.id, p.n, p.kind,
         CASE WHEN p.change = 'fired' AND x.outcome = 'failed' AND r.status = 'FAILED'
              THEN 'failed' ELSE p.change END,
         p.object_id, coalesce(r.entity_type, e.entity_type), coalesce(r.entity_id, e.entity_id),
         CASE p.kind
           WHEN 'flag' THEN
             jsonb_build_object('change', p.change,
                                'flag', coalesce(to_jsonb(f), jsonb_build_object('key', p.flag_key)))
           WHEN 'event' THEN
             jsonb_build_object('change', p.change,
                                'event', coalesce(nudge.event_json(e),
                                                  jsonb_build_object('id', p.object_id)),
                                'effects', coalesce(e.effects, '[]'::jsonb))
           WHEN 'rule' THEN
             jsonb_build_object('change', p.change,
                                'rule', coalesce(p.gone, nudge.rule_json(u),
                                                 jsonb_build_object('id', p.object_id)))
         END,
         -- The reminder's columns that its JSON shows (nudge.reminder_json), as they are now.
         r.id, r.entity_type, r.entity_id, r.event_type, r.channel, r.target, r.schedule_type,
         r.interval_seconds, r.cron, r.timezone, r.misfire_policy, r.max_attempts, r.next_run_at,
         r.occurrence_at, r.attempt, r.stop_condition_type, r.stop_condition_value, r.max_fires,
         r.ends_at, r.fire_count, r.status, r.completed_reason, r.last_error, r.rule_id,
         r.event_id, r.created_at, r.updated_at, r.finished_at, r.payload, r.request,
         r.schedule_text,
         x.scheduled_for, x.fired_at, x.outcome, x.attempts, x.worker, x.error,
         -- attempt_json of no row is {}: none.
         CASE WHEN a.attempt IS NOT NULL THEN nudge.attempt_json(a) END
    FROM (SELECT c.pos, c.id, o.n::integer AS n, c.kind, c.change, o.object_id, o.occurrence,
                 o.flag_key, o.gone
            FROM (SELECT c.*,
                         -- The objects of the rows before it: rows that cannot reach the page are
                         -- not unnested (a fire's row holds up to 1,000).
                         coalesce(sum(coalesce(cardinality(c.object_ids), cardinality(c.flag_keys)))
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
                                AND c.id >= CASE WHEN b.pos = p_after_pos THEN p_after_id ELSE 0 END
                           ) c
                           ORDER BY b.pos, c.id
                           LIMIT p_limit) c) c
           CROSS JOIN LATERAL unnest(c.object_ids, c.occurrences, c.flag_keys, c.gone)
                 WITH ORDINALITY AS o(object_id, occurrence, flag_key, gone, n)
           WHERE c.before < p_limit + p_after_n
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
    -- Keyed by NULL unless of their kind: a fire probes neither index (a join filter on the kind
    -- is tested only after the probe).
    LEFT JOIN nudge.events e ON e.id = CASE WHEN p.kind = 'event' THEN p.object_id END
    LEFT JOIN nudge.rules u ON u.id = CASE WHEN p.kind = 'rule' THEN p.object_id END
   ORDER BY p.pos, p.id, p.n, a.attempt;
END $$;
COMMENT ON FUNCTION nudge.stream_changes(p_after_pos bigint, p_after_id bigint, p_after_n integer, p_through_pos bigint, p_limit integer) IS
  'Up to p_limit changes after position (p_after_pos, p_after_id, p_after_n) of the batches up to p_through_pos, in that order, each with its reminder id or object id and entity for filtering: a flag''s, event''s or rule''s data as the stream sends it ({change, flag} | {change, event, effects} | {change, rule}); a reminder''s change (fired as failed when its failure ended the reminder) with the reminder row, its stored schedule_text, and for a fire its execution row, one result row per delivery attempt (attempt_json) or one without; objects as they are now.';
