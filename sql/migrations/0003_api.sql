-- 0003: what the REST API needs beyond the core lifecycle: the public JSON form of a reminder,
-- batch creates, rescheduling and setting flags. Every change still goes through a function
-- here or in 0002; the API never writes a table itself.

-- Guarantees: the public JSON form of a reminder: every field that is set (nulls left out),
-- times as RFC 3339 strings in the session's zone (UTC for the API), no lease internals.
CREATE FUNCTION nudge_reminder_json(r reminder_jobs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'id', r.id, 'entity_type', r.entity_type, 'entity_id', r.entity_id,
    'event_type', r.event_type, 'channel', r.channel, 'target', r.target,
    'payload', r.payload, 'schedule_type', r.schedule_type,
    'interval_seconds', r.interval_seconds,
    'next_run_at', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
    'stop_condition_type', r.stop_condition_type,
    'stop_condition_value', r.stop_condition_value, 'max_fires', r.max_fires,
    'ends_at', r.ends_at, 'fire_count', r.fire_count, 'status', r.status,
    'completed_reason', r.completed_reason, 'last_error', r.last_error,
    'created_at', r.created_at, 'updated_at', r.updated_at, 'finished_at', r.finished_at))
$$;

-- Guarantees: the public JSON form of one recorded occurrence.
CREATE FUNCTION nudge_execution_json(e executions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'reminder_id', e.reminder_id, 'scheduled_for', e.scheduled_for, 'fired_at', e.fired_at,
    'outcome', e.outcome, 'attempts', e.attempts, 'worker', e.worker, 'error', e.error))
$$;

-- Guarantees: creates (or finds, as nudge_create_reminder_v1 does) every item of p_items in one
-- transaction and returns one row per item, in order; if any item is rejected, nothing is
-- created and the error (22023) names the item: "items[<index>].<field>: <problem>".
-- Items are JSON objects whose fields the caller has already type-checked.
CREATE FUNCTION nudge_create_reminders_v1(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_field  text;
  v_detail text;
BEGIN
  IF jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge_reject('items', 'must be an array');
  END IF;
  -- One exception block around the loop (one subtransaction per batch, not per item) so an
  -- error can say which item it came from.
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      RETURN QUERY
        SELECT v_index, c.created, nudge_reminder_json(c.reminder)
          FROM nudge_create_reminder_v1(
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
                 p_ends_at => (v_item->>'ends_at')::timestamptz) c;
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
    RAISE EXCEPTION 'items[%].%', v_index, v_detail
      USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
  END;
END $$;

-- Guarantees: changes when and how an ACTIVE or PAUSED reminder fires; a NULL argument leaves
-- that setting as it is. Identity, channel and status never change here. Any other status
-- raises NU409, a missing reminder NU404, a bad value 22023 naming the field. Bringing the next
-- fire forward wakes sleeping workers (the notify trigger of 0002).
CREATE FUNCTION nudge_reschedule_reminder_v1(p_id bigint, p_run_at timestamptz DEFAULT NULL,
                                             p_interval_seconds integer DEFAULT NULL,
                                             p_payload jsonb DEFAULT NULL,
                                             p_max_fires integer DEFAULT NULL,
                                             p_ends_at timestamptz DEFAULT NULL)
RETURNS reminder_jobs
LANGUAGE plpgsql AS $$
DECLARE v_row reminder_jobs := nudge_lock_reminder(p_id);
BEGIN
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE or PAUSED reminder can be rescheduled',
      p_id, v_row.status USING ERRCODE = 'NU409';
  END IF;
  IF p_interval_seconds IS NOT NULL THEN
    IF v_row.schedule_type <> 'recurring' THEN
      PERFORM nudge_reject('interval_seconds', 'is only for recurring reminders');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge_reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  END IF;
  IF p_payload IS NOT NULL AND jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge_reject('payload', 'must be a JSON object');
  END IF;
  IF p_payload IS NOT NULL AND pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge_reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge_reject('max_fires', 'must be at least 1');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires <= v_row.fire_count THEN
    PERFORM nudge_reject('max_fires', 'must be more than the fires already made');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < coalesce(p_run_at, v_row.next_run_at) THEN
    PERFORM nudge_reject('ends_at', 'must not be before the next fire');
  END IF;
  UPDATE reminder_jobs
     SET next_run_at = coalesce(p_run_at, next_run_at),
         interval_seconds = coalesce(p_interval_seconds, interval_seconds),
         payload = coalesce(p_payload, payload),
         max_fires = coalesce(p_max_fires, max_fires),
         ends_at = coalesce(p_ends_at, ends_at),
         updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;

-- Guarantees: sets a flag exactly as `INSERT … ON CONFLICT DO UPDATE` in plain SQL would, so a
-- true value stops the reminders waiting on it at once (trigger of 0002); returns the flag.
CREATE FUNCTION nudge_set_flag_v1(p_key text, p_value boolean) RETURNS status_flags
LANGUAGE plpgsql AS $$
DECLARE v_flag status_flags;
BEGIN
  IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge_reject('key', 'must be 1 to 200 characters');
  END IF;
  IF p_value IS NULL THEN
    PERFORM nudge_reject('value', 'must be true or false');
  END IF;
  INSERT INTO status_flags AS f (key, value) VALUES (p_key, p_value)
  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
  RETURNING f.* INTO v_flag;
  RETURN v_flag;
END $$;
