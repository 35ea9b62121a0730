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

-- Guarantees: creates (or finds, as nudge_create_reminder_v1 does) every item of p_items one by
-- one, in one transaction, and returns one row per item, in order; if any item is rejected,
-- nothing is created and the error (22023) names the item: "items[<index>].<field>: <problem>".
-- The exact path, and the fallback of nudge_create_reminders_v1.
CREATE FUNCTION nudge_create_reminders_one_by_one(p_items jsonb)
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

-- Guarantees: the same answer as nudge_create_reminders_one_by_one (same rows, same created
-- flags, same errors), at set speed: one INSERT for the whole batch when every item is plainly
-- valid, new and distinct, and the item-by-item path otherwise (a stop flag already true, a
-- repeated identity, a rule only the create function checks, any failed insert).
-- Items are JSON objects whose fields the caller has already type-checked.
CREATE FUNCTION nudge_create_reminders_v1(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  v_plain boolean;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge_reject('items', 'must be an array');
  END IF;
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_item (
    item integer, entity_type text, entity_id text, event_type text, channel text,
    schedule_type text, run_at timestamptz, interval_seconds integer, target text,
    payload jsonb, stop_condition_type text, stop_condition_value text, max_fires integer,
    ends_at timestamptz, id bigint, created boolean) ON COMMIT DELETE ROWS;
  DELETE FROM nudge_batch_item;  -- a second batch in the same transaction
  BEGIN
    INSERT INTO nudge_batch_item
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type',
           CASE WHEN e.v->>'schedule_type' = 'recurring'
                THEN coalesce((e.v->>'run_at')::timestamptz, now())
                ELSE (e.v->>'run_at')::timestamptz END,
           (e.v->>'interval_seconds')::integer, e.v->>'target',
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord);

    SELECT NOT EXISTS (SELECT 1 FROM nudge_batch_item b
                        WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                           OR jsonb_typeof(b.payload) <> 'object'
                           OR EXISTS (SELECT 1 FROM status_flags f
                                       WHERE f.key = b.stop_condition_value AND f.value))
       AND NOT EXISTS (SELECT 1 FROM nudge_batch_item b
                        GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1)
      INTO v_plain;

    IF v_plain THEN
      WITH inserted AS (
        INSERT INTO reminder_jobs AS r (entity_type, entity_id, event_type, channel, target,
                                        payload, schedule_type, interval_seconds, next_run_at,
                                        stop_condition_type, stop_condition_value, max_fires,
                                        ends_at)
        SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
               b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
               b.stop_condition_value, b.max_fires, b.ends_at
          FROM nudge_batch_item b ORDER BY b.item
        ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
        DO NOTHING
        RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
      UPDATE nudge_batch_item b SET id = i.id, created = true
        FROM inserted i
       WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
      -- Items whose identity is already live: that reminder is the answer.
      UPDATE nudge_batch_item b SET id = r.id, created = false
        FROM reminder_jobs r
       WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
      v_plain := NOT EXISTS (SELECT 1 FROM nudge_batch_item b WHERE b.id IS NULL);
    END IF;
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge_create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.item, b.created, nudge_reminder_json(r)
      FROM nudge_batch_item b JOIN reminder_jobs r ON r.id = b.id
     ORDER BY b.item;
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
