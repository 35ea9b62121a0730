-- 0005: cron reminders. schedule_type 'cron' with an expression and a time zone; each fire's
-- next occurrence comes from nudge_cron_next (0004) in the same statement that records the
-- fire, so rescheduling stays one atomic step. Missed occurrences give one fire, then the
-- schedule resumes (the policy of recurring reminders; other policies come later).

ALTER TABLE reminder_jobs
  ADD COLUMN cron          text,
  ADD COLUMN timezone      text,
  -- The parsed expression, so a fire never parses text.
  ADD COLUMN cron_schedule nudge_cron;

ALTER TABLE reminder_jobs
  DROP CONSTRAINT schedule_type_is_known,
  ADD CONSTRAINT schedule_type_is_known
    CHECK (schedule_type IN ('one_time', 'recurring', 'cron')),
  ADD CONSTRAINT only_cron_has_expression_and_zone
    CHECK ((schedule_type = 'cron') = (cron IS NOT NULL AND timezone IS NOT NULL
                                       AND cron_schedule IS NOT NULL)
           -- an unknown schedule type is schedule_type_is_known's to report
           OR schedule_type NOT IN ('one_time', 'recurring', 'cron')),
  ADD CONSTRAINT cron_has_no_interval CHECK (schedule_type <> 'cron' OR interval_seconds IS NULL),
  ADD CONSTRAINT cron_is_at_most_200_chars CHECK (length(cron) <= 200);

-- Guarantees: a recurring reminder's next occurrence strictly after p_now, a cron reminder's
-- next fire strictly after p_now (never NULL: 'infinity' if its calendar had no more, which
-- the parser rules out); a one_time reminder keeps its time.
CREATE OR REPLACE FUNCTION nudge_next_run_after_fire(r reminder_jobs, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE r.schedule_type
           WHEN 'recurring' THEN nudge_next_interval_occurrence(r.next_run_at, r.interval_seconds, p_now)
           WHEN 'cron' THEN coalesce(nudge_cron_next(r.cron_schedule, r.timezone, p_now), 'infinity')
           ELSE r.next_run_at END
$$;

-- Guarantees: nudge_create_reminder_v1's guarantees, for one_time, recurring and cron
-- reminders (p_cron: five fields or a macro; p_timezone: default UTC; a cron reminder first
-- fires at its first occurrence at or after p_run_at, default now).
CREATE FUNCTION nudge_create_reminder_v2(
  p_entity_type          text,
  p_entity_id            text,
  p_event_type           text,
  p_channel              text,
  p_schedule_type        text,
  p_run_at               timestamptz DEFAULT NULL,
  p_interval_seconds     integer     DEFAULT NULL,
  p_target               text        DEFAULT NULL,
  p_payload              jsonb       DEFAULT '{}'::jsonb,
  p_stop_condition_type  text        DEFAULT NULL,
  p_stop_condition_value text        DEFAULT NULL,
  p_max_fires            integer     DEFAULT NULL,
  p_ends_at              timestamptz DEFAULT NULL,
  p_cron                 text        DEFAULT NULL,
  p_timezone             text        DEFAULT NULL)
RETURNS TABLE (created boolean, reminder reminder_jobs)
LANGUAGE plpgsql AS $$
DECLARE
  v_row     reminder_jobs;
  v_run_at  timestamptz := p_run_at;
  v_stopped boolean := false;
  v_parsed  nudge_cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_type', 'must be 1 to 200 characters');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('entity_id', 'must be 1 to 200 characters');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('event_type', 'must be 1 to 200 characters');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge_reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF length(p_target) > 2048 THEN
    PERFORM nudge_reject('target', 'must be at most 2048 characters');
  END IF;
  IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge_reject('payload', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge_reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF v_run_at IS NULL THEN PERFORM nudge_reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge_reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge_reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
    v_run_at := coalesce(v_run_at, now());
  ELSIF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge_reject('cron', 'is required for cron'); END IF;
    IF length(p_cron) > 200 THEN PERFORM nudge_reject('cron', 'must be at most 200 characters'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge_reject('interval_seconds', 'is not for cron reminders');
    END IF;
    v_zone := coalesce(p_timezone, 'UTC');
    -- The first fire: the first occurrence at or after run_at (default now). The text form
    -- checks the zone and the expression, naming the field that is wrong.
    v_run_at := nudge_cron_next(p_cron, v_zone, coalesce(v_run_at, now()) - interval '1 microsecond');
    v_parsed := nudge_cron_parse(p_cron);
  ELSE
    PERFORM nudge_reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_schedule_type <> 'cron' AND (p_cron IS NOT NULL OR p_timezone IS NOT NULL) THEN
    PERFORM nudge_reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge_reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge_reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200) THEN
    PERFORM nudge_reject('stop_condition_value', 'must be a flag key of 1 to 200 characters');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge_reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge_reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;

  IF p_stop_condition_type = 'db_check' THEN
    SELECT coalesce(f.value, false) INTO v_stopped FROM status_flags f WHERE f.key = p_stop_condition_value;
    v_stopped := coalesce(v_stopped, false);
  END IF;

  LOOP
    -- A stopped reminder is inserted COMPLETED, which the identity index does not cover: look
    -- for the live one ourselves. Two such racing creates can only add finished rows.
    IF v_stopped THEN
      SELECT r.* INTO v_row FROM reminder_jobs r
       WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
         AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
      IF FOUND THEN
        RETURN QUERY SELECT false, v_row;
        RETURN;
      END IF;
    END IF;
    INSERT INTO reminder_jobs AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    cron, timezone, cron_schedule,
                                    status, completed_reason, finished_at)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
            CASE WHEN p_schedule_type = 'cron' THEN p_cron END, v_zone, v_parsed,
            CASE WHEN v_stopped THEN 'COMPLETED' ELSE 'ACTIVE' END,
            CASE WHEN v_stopped THEN 'stop_condition' END,
            CASE WHEN v_stopped THEN now() END)
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
    RETURNING r.* INTO v_row;
    IF FOUND THEN
      RETURN QUERY SELECT true, v_row;
      RETURN;
    END IF;
    -- Someone holds this identity: return their reminder. If it finished in between, insert again.
    SELECT r.* INTO v_row FROM reminder_jobs r
     WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
       AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
    IF FOUND THEN
      RETURN QUERY SELECT false, v_row;
      RETURN;
    END IF;
  END LOOP;
END $$;


-- Guarantees: exactly nudge_create_reminder_v2 without cron (kept for callers of v1).
CREATE OR REPLACE FUNCTION nudge_create_reminder_v1(
  p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text,
  p_run_at timestamptz DEFAULT NULL, p_interval_seconds integer DEFAULT NULL,
  p_target text DEFAULT NULL, p_payload jsonb DEFAULT '{}'::jsonb,
  p_stop_condition_type text DEFAULT NULL, p_stop_condition_value text DEFAULT NULL,
  p_max_fires integer DEFAULT NULL, p_ends_at timestamptz DEFAULT NULL)
RETURNS TABLE (created boolean, reminder reminder_jobs)
LANGUAGE sql AS $$
  SELECT * FROM nudge_create_reminder_v2(p_entity_type, p_entity_id, p_event_type, p_channel,
                                         p_schedule_type, p_run_at, p_interval_seconds, p_target,
                                         p_payload, p_stop_condition_type, p_stop_condition_value,
                                         p_max_fires, p_ends_at)
$$;

-- Guarantees: as in 0003, now with cron and timezone.
CREATE OR REPLACE FUNCTION nudge_reminder_json(r reminder_jobs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'id', r.id, 'entity_type', r.entity_type, 'entity_id', r.entity_id,
    'event_type', r.event_type, 'channel', r.channel, 'target', r.target,
    'payload', r.payload, 'schedule_type', r.schedule_type,
    'interval_seconds', r.interval_seconds, 'cron', r.cron, 'timezone', r.timezone,
    'next_run_at', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
    'stop_condition_type', r.stop_condition_type,
    'stop_condition_value', r.stop_condition_value, 'max_fires', r.max_fires,
    'ends_at', r.ends_at, 'fire_count', r.fire_count, 'status', r.status,
    'completed_reason', r.completed_reason, 'last_error', r.last_error,
    'created_at', r.created_at, 'updated_at', r.updated_at, 'finished_at', r.finished_at))
$$;

-- Guarantees: as in 0003, for cron items too (batches holding one always take this path: the
-- set-based insert of 0003 has no cron columns and hands such batches over).
CREATE OR REPLACE FUNCTION nudge_create_reminders_one_by_one(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_field  text;
  v_detail text;
BEGIN
  -- One exception block around the loop (one subtransaction per batch, not per item) so an
  -- error can say which item it came from.
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      RETURN QUERY
        SELECT v_index, c.created, nudge_reminder_json(c.reminder)
          FROM nudge_create_reminder_v2(
                 p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_event_type => v_item->>'event_type',
                 p_channel => v_item->>'channel',
                 p_schedule_type => v_item->>'schedule_type',
                 p_run_at => (v_item->>'run_at')::timestamptz,
                 p_interval_seconds => (v_item->>'interval_seconds')::integer,
                 p_target => v_item->>'target',
                 p_payload => coalesce(v_item->'payload', '{}'::jsonb),
                 p_stop_condition_type => v_item->>'stop_condition_type',
                 p_stop_condition_value => v_item->>'stop_condition_value',
                 p_max_fires => (v_item->>'max_fires')::integer,
                 p_ends_at => (v_item->>'ends_at')::timestamptz,
                 p_cron => v_item->>'cron',
                 p_timezone => v_item->>'timezone') c;
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
    RAISE EXCEPTION 'items[%].%', v_index, v_detail
      USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
  END;
END $$;
