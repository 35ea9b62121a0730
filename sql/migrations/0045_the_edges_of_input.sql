-- 0045: the edges of what the API takes. Found by an exploratory test.
--
-- 1. A fire after 9999-12-31T23:59:59Z was written as a five-digit year ("10000-01-01T..."),
--    which is not RFC 3339 and which the API itself refuses as input. A create, a batch, a
--    reschedule, a rule's reminder and a preview now refuse a first fire after that instant
--    (22023 naming run_at; a rule: NU422 naming delay_seconds), a preview lists no time after
--    it, and a recurring or cron reminder whose next occurrence would fall after it completes
--    with completed_reason ends_at, as one past its ends_at does.
-- 2. A PATCH of payload that drops a value the reminder's request reads was refused naming
--    request.body, which the call did not touch: nudge.reschedule_reminder names payload.
-- 3. An event whose event_type, entity_type or entity_id held only white space was recorded,
--    though '' was refused: nudge.emit_event and nudge.emit_events refuse it, naming the field,
--    as a create does (nudge.is_blank, 0044).
-- 4. A rule template's whole number too long for an integer (delay_seconds: 99999999999) was
--    refused as "must be a whole number": it says the range now.

-- The last instant a reminder may fire at: the end of the last year RFC 3339 can write.
CREATE FUNCTION nudge.latest_fire() RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT timestamptz '9999-12-31 23:59:59+00'
$$;
COMMENT ON FUNCTION nudge.latest_fire() IS 'The last instant a reminder may fire at, 9999-12-31T23:59:59Z: a later time has a five-digit year, which RFC 3339 cannot write.';

CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_run_at  timestamptz;
  v_stopped boolean := false;
  v_parsed  nudge.cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_type) THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_id) THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_event_type) THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_channel = 'log' AND p_target IS NOT NULL THEN
    PERFORM nudge.reject('target',
                         'a log reminder has no target (its fires go to the worker''s log)');
  END IF;
  IF length(p_target) > 2048 THEN
    PERFORM nudge.reject('target', 'must be at most 2048 characters');
  END IF;
  IF nudge.address_problem(p_channel, p_target) IS NOT NULL THEN
    PERFORM nudge.reject('target', nudge.address_problem(p_channel, p_target));
  END IF;
  IF p_misfire_policy IS NOT NULL AND p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge.reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy IN ('skip', 'fire_all') AND p_schedule_type = 'one_time' THEN
    PERFORM nudge.reject('misfire_policy', 'is only for recurring and cron reminders');
  END IF;
  IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('max_attempts', 'must be 1 to 100');
  END IF;
  IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge.reject('payload', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge.reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  ELSIF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF length(p_cron) > 200 THEN PERFORM nudge.reject('cron', 'must be at most 200 characters'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron reminders');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
  ELSE
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_schedule_type <> 'cron' AND (p_cron IS NOT NULL OR p_timezone IS NOT NULL) THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  v_run_at := nudge.first_run_at(p_schedule_type, p_run_at, v_parsed, v_zone);
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge.reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200) THEN
    PERFORM nudge.reject('stop_condition_value', 'must be a flag key of 1 to 200 characters');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge.reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;
  -- The request is checked by the trigger reminder_request_is_checked as the row is written.

  IF p_stop_condition_type = 'db_check' THEN
    SELECT coalesce(f.value, false) INTO v_stopped
      FROM nudge.status_flags f WHERE f.key = p_stop_condition_value;
    v_stopped := coalesce(v_stopped, false);
  END IF;

  LOOP
    -- A stopped reminder is inserted COMPLETED, which the identity index does not cover: look
    -- for the live one ourselves. Two such racing creates can only add finished rows.
    IF v_stopped THEN
      SELECT r.* INTO v_row FROM nudge.reminders r
       WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
         AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
      IF FOUND THEN
        RETURN QUERY SELECT false, v_row;
        RETURN;
      END IF;
    END IF;
    INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                      schedule_type, interval_seconds, next_run_at,
                                      stop_condition_type, stop_condition_value, max_fires, ends_at,
                                      cron, timezone, cron_schedule, misfire_policy, max_attempts,
                                      status, completed_reason, finished_at, request)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
            CASE WHEN p_schedule_type = 'cron' THEN p_cron END, v_zone, v_parsed,
            coalesce(p_misfire_policy, 'fire_once'), p_max_attempts,
            CASE WHEN v_stopped THEN 'COMPLETED' ELSE 'ACTIVE' END,
            CASE WHEN v_stopped THEN 'stop_condition' END,
            CASE WHEN v_stopped THEN now() END,
            nullif(p_request, 'null'::jsonb))
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
    RETURNING r.* INTO v_row;
    IF FOUND THEN
      RETURN QUERY SELECT true, v_row;
      RETURN;
    END IF;
    -- Someone holds this identity: return their reminder. If it finished in between, insert again.
    SELECT r.* INTO v_row FROM nudge.reminders r
     WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
       AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
    IF FOUND THEN
      RETURN QUERY SELECT false, v_row;
      RETURN;
    END IF;
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls; bad input (a name empty, over 200 characters or only white space, a target a log reminder cannot have, a first fire after 9999-12-31T23:59:59Z, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires.';

CREATE OR REPLACE FUNCTION nudge.create_staged_reminders() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  -- A cron's zone, parsed expression and first fire, and a recurring reminder's default start:
  -- a bad expression or zone raises 22023 and sends the batch down the exact path.
  UPDATE pg_temp.nudge_new_reminder b
     SET zone = s.zone, cron_schedule = s.parsed,
         run_at = nudge.first_run_at(b.schedule_type, b.run_at, s.parsed, s.zone)
    FROM (SELECT b2.item,
                 CASE WHEN b2.schedule_type = 'cron'
                      THEN nudge.checked_timezone(coalesce(b2.timezone, 'UTC')) END AS zone,
                 CASE WHEN b2.schedule_type = 'cron' THEN nudge.cron_parse(b2.cron) END AS parsed
            FROM pg_temp.nudge_new_reminder b2
           WHERE b2.schedule_type = 'cron' OR (b2.schedule_type = 'recurring' AND b2.run_at IS NULL)
          OFFSET 0) s
   WHERE b.item = s.item;

  IF EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
              WHERE b.ends_at < b.run_at OR b.run_at IS NULL OR b.run_at > nudge.latest_fire()
                 OR jsonb_typeof(b.payload) <> 'object'
                 OR nudge.is_blank(b.entity_type) OR nudge.is_blank(b.entity_id)
                 OR nudge.is_blank(b.event_type) OR (b.channel = 'log' AND b.target IS NOT NULL)
                 -- rules the create function checks and no constraint does
                 OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                 OR (b.schedule_type = 'cron' AND length(b.cron) > 200))
     -- The stop flags looked up by key in one index scan: as a correlated EXISTS, the planner
     -- (no statistics on the temporary table) hashed every true flag instead.
     OR EXISTS (SELECT 1 FROM nudge.status_flags f
                 WHERE f.key = ANY (ARRAY(SELECT b.stop_condition_value
                                            FROM pg_temp.nudge_new_reminder b
                                           WHERE b.stop_condition_value IS NOT NULL))
                   AND f.value)
     OR EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
                 GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1) THEN
    RETURN false;
  END IF;

  WITH inserted AS (
    INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target,
                                      payload, schedule_type, interval_seconds, next_run_at,
                                      stop_condition_type, stop_condition_value, max_fires,
                                      ends_at, cron, timezone, cron_schedule, misfire_policy,
                                      max_attempts, rule_id, event_id, request)
    SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
           b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
           b.stop_condition_value, b.max_fires, b.ends_at, b.cron, b.zone,
           b.cron_schedule, b.misfire_policy, b.max_attempts, b.rule_id, b.event_id,
           b.request
      FROM pg_temp.nudge_new_reminder b ORDER BY b.item
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
    DO NOTHING
    RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
  UPDATE pg_temp.nudge_new_reminder b SET id = i.id, created = true
    FROM inserted i
   WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
  -- Items whose identity is already live: that reminder is the answer.
  UPDATE pg_temp.nudge_new_reminder b SET id = r.id, created = false
    FROM nudge.reminders r
   WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
     AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
  RETURN NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b WHERE b.id IS NULL);
END $$;
COMMENT ON FUNCTION nudge.create_staged_reminders() IS 'Creates (or finds, by identity) the reminders staged in pg_temp.nudge_new_reminder with one set-based INSERT and sets each row''s id and created; false when a row is not plainly valid, new and distinct (its stop flag already true, two rows of one identity, a name of only white space, a log reminder''s target, a first fire after nudge.latest_fire(), a bound the create function checks: nothing is written) or was neither inserted nor found live (a concurrent create), so the caller takes the item-by-item path; a value a constraint refuses raises its error.';

CREATE OR REPLACE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_payload jsonb DEFAULT NULL::jsonb, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_row  nudge.reminders := nudge.lock_reminder(p_id);
  v_next    timestamptz;  -- the next fire once rescheduled
  v_field   text;         -- what the reminder's request check named
  v_problem text;
BEGIN
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE or PAUSED reminder can be rescheduled',
      p_id, v_row.status USING ERRCODE = 'NU409';
  END IF;
  IF p_interval_seconds IS NOT NULL THEN
    IF v_row.schedule_type <> 'recurring' THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  END IF;
  IF p_payload IS NOT NULL AND jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge.reject('payload', 'must be a JSON object');
  END IF;
  IF p_payload IS NOT NULL AND pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge.reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires <= v_row.fire_count THEN
    PERFORM nudge.reject('max_fires', 'must be more than the fires already made');
  END IF;
  -- A cron reminder keeps to its schedule: its first occurrence at or after run_at.
  v_next := CASE WHEN p_run_at IS NULL THEN v_row.next_run_at
                 ELSE nudge.first_run_at(v_row.schedule_type, p_run_at, v_row.cron_schedule,
                                         v_row.timezone) END;
  IF v_next IS NULL THEN
    PERFORM nudge.reject('run_at', 'has no occurrence of the cron schedule after it');
  END IF;
  IF v_next > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the next fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  -- The request is checked again by its trigger when the payload changes; name the payload,
  -- which is what this call changed, not the request it left as it was.
  IF p_payload IS NOT NULL AND v_row.request IS NOT NULL THEN
    BEGIN
      PERFORM nudge.check_request(v_row.request, v_row.channel, p_payload);
    EXCEPTION WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_problem = MESSAGE_TEXT;
      PERFORM nudge.reject('payload', format('%s (read by the reminder''s %s)',
                                             substr(v_problem, length(v_field) + 3), v_field));
    END;
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_next THEN
    PERFORM nudge.reject('ends_at', 'must not be before the next fire');
  END IF;
  IF p_run_at IS NOT NULL AND p_ends_at IS NULL AND v_next > v_row.ends_at THEN
    PERFORM nudge.reject('run_at', 'must not be after ends_at');
  END IF;
  UPDATE nudge.reminders
     SET next_run_at = v_next,
         interval_seconds = coalesce(p_interval_seconds, interval_seconds),
         payload = coalesce(p_payload, payload),
         max_fires = coalesce(p_max_fires, max_fires),
         ends_at = coalesce(p_ends_at, ends_at),
         updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;
COMMENT ON FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamp with time zone) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at, never after ends_at nor after 9999-12-31T23:59:59Z; a bad value raises 22023 naming the field (payload when the new payload lacks a value the reminder''s request reads), another status NU409, a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';

CREATE OR REPLACE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) RETURNS nudge.reminders
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_item     jsonb;
  v_payload  jsonb;
  v_interval integer;
  v_run_at   timestamptz;
  v_row      nudge.reminders;
BEGIN
  IF p_template ?| ARRAY['request', 'cron', 'timezone'] THEN
    RETURN NULL;
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || nudge.render_template(p_template - 'payload' - 'delay_seconds' - 'interval_minutes',
                                     p_event, false);
  v_payload := CASE WHEN p_template ? 'payload'
                    THEN nudge.render_template(p_template->'payload', p_event, true)
                    ELSE '{}'::jsonb END;
  v_interval := coalesce((v_item->>'interval_seconds')::integer,
                         (p_template->>'interval_minutes')::integer * 60);
  v_run_at := p_event.occurred_at + interval '1 second' *
                CASE WHEN v_item->>'schedule_type' = 'recurring'
                     THEN coalesce((p_template->>'delay_seconds')::integer, v_interval, 0)
                     ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  -- Every check of nudge.create_reminder, in one simple expression (no query); NULL fails, and
  -- so does an event that lacks a value (the exact path names the field).
  IF NOT coalesce(
       v_item IS NOT NULL AND v_payload IS NOT NULL
       AND length(v_item->>'entity_type') BETWEEN 1 AND 200 AND length(v_item->>'entity_id') BETWEEN 1 AND 200
       AND length(v_item->>'event_type') BETWEEN 1 AND 200 AND v_item->>'channel' IN ('log', 'webhook', 'email')
       AND NOT (nudge.is_blank(v_item->>'entity_type') OR nudge.is_blank(v_item->>'entity_id')
                OR nudge.is_blank(v_item->>'event_type'))
       AND (v_item->>'channel' <> 'log' OR NOT v_item ? 'target')
       AND coalesce(length(v_item->>'target') <= 2048
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL, true)
       AND (NOT v_item ? 'misfire_policy' OR v_item->>'misfire_policy' = 'fire_once'
            OR (v_item->>'misfire_policy' IN ('skip', 'fire_all') AND v_item->>'schedule_type' <> 'one_time'))
       AND coalesce((v_item->>'max_attempts')::integer BETWEEN 1 AND 100, true)
       AND jsonb_typeof(v_payload) = 'object' AND pg_column_size(v_payload) <= 65536
       AND ((v_item->>'schedule_type' = 'one_time' AND v_interval IS NULL)
            OR (v_item->>'schedule_type' = 'recurring' AND v_interval BETWEEN 1 AND 31622400))
       AND ((NOT v_item ? 'stop_condition_type' AND NOT v_item ? 'stop_condition_value')
            OR (v_item->>'stop_condition_type' = 'db_check'
                AND length(v_item->>'stop_condition_value') BETWEEN 1 AND 200))
       AND coalesce((v_item->>'max_fires')::integer >= 1, true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true)
       AND v_run_at <= nudge.latest_fire(), false) THEN
    RETURN NULL;
  END IF;
  INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    misfire_policy, max_attempts)
  SELECT v_item->>'entity_type', v_item->>'entity_id', v_item->>'event_type', v_item->>'channel',
         v_item->>'target', v_payload, v_item->>'schedule_type', v_interval, v_run_at,
         v_item->>'stop_condition_type', v_item->>'stop_condition_value',
         (v_item->>'max_fires')::integer, (v_item->>'ends_at')::timestamptz,
         coalesce(v_item->>'misfire_policy', 'fire_once'), (v_item->>'max_attempts')::integer
   WHERE NOT EXISTS (SELECT 1 FROM nudge.status_flags f
                      WHERE f.key = v_item->>'stop_condition_value' AND f.value)
  ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
  RETURNING r.* INTO v_row;
  RETURN v_row;  -- all NULL when the identity is live or its stop flag is true
END $$;
COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';

CREATE OR REPLACE FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_fields  jsonb := p_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request';
  v_item    jsonb := nudge.render_template(v_fields, p_event, false);
  v_payload jsonb := nudge.render_template(p_template->'payload', p_event, true);
  v_key     text;
  v_value   jsonb;
  v_run_at  timestamptz;
BEGIN
  IF v_item IS NULL OR (v_payload IS NULL AND p_template ? 'payload') THEN
    -- A value is missing: render field by field, which raises NU422 naming the field.
    FOR v_key, v_value IN SELECT k, v FROM jsonb_each(v_fields) AS x(k, v) ORDER BY k LOOP
      PERFORM nudge.render_text(v_value #>> '{}', p_event, 'action.reminder.' || v_key)
        WHERE jsonb_typeof(v_value) = 'string';
    END LOOP;
    PERFORM nudge.render_json(p_template->'payload', p_event, 'action.reminder.payload');
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || v_item;
  IF v_payload IS NOT NULL THEN
    v_item := v_item || jsonb_build_object('payload', v_payload);
  END IF;
  IF p_template ? 'request' THEN
    v_item := v_item || jsonb_build_object('request', p_template->'request');
  END IF;
  IF p_template ? 'interval_minutes' THEN
    v_item := v_item || jsonb_build_object('interval_seconds',
                                           (p_template->>'interval_minutes')::integer * 60);
  END IF;
  v_run_at := p_event.occurred_at + interval '1 second' *
    CASE WHEN v_item->>'schedule_type' = 'recurring'
         THEN coalesce((p_template->>'delay_seconds')::integer,
                       (v_item->>'interval_seconds')::integer, 0)
         ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  -- The template holds no run_at: name what put the first fire so late.
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_template ? 'delay_seconds' THEN 'delay_seconds'
                              ELSE 'interval_seconds' END,
                         format('puts the first fire after 9999-12-31T23:59:59Z (the event occurred at %s)',
                                to_char(p_event.occurred_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
  END IF;
  RETURN v_item || jsonb_build_object('run_at', v_run_at);
END $$;
COMMENT ON FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) IS 'The create item a remind template gives for an event: every string rendered (the request copied as it is), the entity defaulting to the event''s, run_at delay_seconds after the event occurred (recurring: by default one interval); NU422 when the event lacks a value or that first fire would be after 9999-12-31T23:59:59Z (naming delay_seconds, or the interval it defaulted to).';

CREATE OR REPLACE FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at     timestamptz;
  v_zone   text;
  v_parsed nudge.cron;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('count', 'must be 1 to 100');
  END IF;
  IF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron schedules');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
    -- The first occurrence at or after run_at, as a create takes it.
    v_at := greatest(p_from, coalesce(p_run_at - interval '1 microsecond', p_from));
    FOR i IN 1..p_count LOOP
      v_at := nudge.cron_next(v_parsed, v_zone, v_at);
      IF i = 1 AND v_at > nudge.latest_fire() THEN
        PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
      END IF;
      -- A reminder ends there (nudge.end_after_attempt): so does its preview.
      EXIT WHEN v_at IS NULL OR v_at > nudge.latest_fire();
      RETURN NEXT nudge.rfc3339_in_zone(v_at, v_zone);
    END LOOP;
    RETURN;
  END IF;
  IF p_cron IS NOT NULL OR p_timezone IS NOT NULL THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron schedules');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_run_at > nudge.latest_fire() THEN
      PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
    END IF;
    IF p_run_at > p_from THEN RETURN NEXT nudge.rfc3339_in_zone(p_run_at, 'UTC'); END IF;
    RETURN;
  END IF;
  IF p_schedule_type IS DISTINCT FROM 'recurring' THEN
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  END IF;
  v_at := coalesce(p_run_at, p_from);
  IF v_at <= p_from THEN
    v_at := nudge.next_interval_occurrence(v_at, p_interval_seconds, p_from);
  END IF;
  IF v_at > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  FOR i IN 1..p_count LOOP
    EXIT WHEN v_at > nudge.latest_fire();
    RETURN NEXT nudge.rfc3339_in_zone(v_at, 'UTC');
    v_at := v_at + p_interval_seconds * interval '1 second';
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text) IS 'The next p_count (1..100) fire times strictly after p_from of a schedule as a create would take it (one_time: run_at; recurring: every interval from run_at, or from p_from; cron: the expression''s occurrences at or after run_at in its zone, under the cron daylight-saving rules), as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given), none after 9999-12-31T23:59:59Z (where a reminder ends); the 22023 errors a create would give.';

CREATE OR REPLACE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'attempts_exhausted'
              WHEN r.schedule_type = 'one_time' THEN 'fired'
              WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
              -- The calendar ends with 9999 (RFC 3339 has four-digit years): a schedule whose
              -- next occurrence falls later has run its course, as one past ends_at has (Quartz
              -- completes a trigger with no fire time left the same way). Only a fire within
              -- 8 years and a day of it (cron_next's horizon) can have its next one after it:
              -- the drain computes no extra occurrence for any other.
              WHEN (r.ends_at IS NOT NULL
                    OR coalesce(r.occurrence_at, r.next_run_at) > timestamptz '9991-12-01 00:00:00+00')
                   AND nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now)
                       > least(r.ends_at, nudge.latest_fire())
                THEN 'ends_at'
         END
$$;
COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';

CREATE OR REPLACE FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb DEFAULT '{}'::jsonb, p_key text DEFAULT NULL::text, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF NOT coalesce(length(p_event_type) BETWEEN 1 AND 200 AND p_event_type NOT LIKE 'nudge.%'
                  AND length(p_entity_type) BETWEEN 1 AND 200
                  AND length(p_entity_id) BETWEEN 1 AND 200
                  AND NOT (nudge.is_blank(p_event_type) OR nudge.is_blank(p_entity_type)
                           OR nudge.is_blank(p_entity_id))
                  AND jsonb_typeof(p_data) = 'object' AND pg_column_size(p_data) <= 65536
                  AND coalesce(length(p_key) BETWEEN 1 AND 200, true), false) THEN
    IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_event_type) THEN
      PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_event_type LIKE 'nudge.%' THEN
      PERFORM nudge.reject('event_type', 'must not start with "nudge.": those are Nudge''s own');
    END IF;
    IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_entity_type) THEN
      PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 OR nudge.is_blank(p_entity_id) THEN
      PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
    END IF;
    IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
      PERFORM nudge.reject('data', 'must be a JSON object');
    END IF;
    IF pg_column_size(p_data) > 65536 THEN
      PERFORM nudge.reject('data', 'must be at most 64 KiB');
    END IF;
    IF length(p_key) NOT BETWEEN 1 AND 200 THEN
      PERFORM nudge.reject('key', 'must be 1 to 200 characters');
    END IF;
  END IF;
  RETURN nudge.record_event(p_event_type, p_entity_type, p_entity_id, p_data, p_key,
                            p_occurred_at, false);
END $$;
COMMENT ON FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone) IS 'Records an event and runs every enabled rule of its type whose conditions hold, in the caller''s transaction; answers {created, event, effects}; an event_type, entity_type or entity_id empty, over 200 characters or only white space raises 22023 naming it. The same key again answers the first event and effects with created = false and changes nothing, even when sent concurrently. A rule that cannot be rendered for a posted event raises NU422 (nothing is written); for Nudge''s own events it is recorded in the effects. A chain deeper than 8 events is recorded as refused and its rules are not run.';

CREATE OR REPLACE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rule     nudge.rules;
  v_items    jsonb;
  v_ords     integer[];
  v_count    bigint;
  v_missing  boolean;
  v_rendered text;     -- a remind rule's templated fields, rendered as jsonb
  v_unfilled text;     -- whether one of them lacks a value
  v_values   text;     -- every field of the staging table, from them
  v_keys     text[];
  v_out      text;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Keyed: without statistics the planner would join these row by row against each other.
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_event (
    ord integer PRIMARY KEY, id bigint, event_type text, entity_type text, entity_id text,
    data jsonb, occurred_at timestamptz) ON COMMIT DELETE ROWS;
  -- i: the effect's place among its rule's items (the item index of nudge.create_reminders).
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_effect (
    rule_id bigint, ord integer, i integer, item jsonb, effect jsonb,
    PRIMARY KEY (rule_id, i)) ON COMMIT DELETE ROWS;
  DELETE FROM pg_temp.nudge_batch_event;
  DELETE FROM pg_temp.nudge_batch_effect;
  -- Each rule runs once over all its events, in rule order, so each event sees its own rules in
  -- the order one event would. Anything out of the ordinary takes the item-by-item path, which
  -- gives the exact error or the same answer: a bad item, a key (its first answer is replayed),
  -- two events of one entity (their order matters), a value an event lacks.
  BEGIN
    INSERT INTO pg_temp.nudge_batch_event
    SELECT (x.ord - 1)::integer, nextval('nudge.events_id_seq'), x.v->>'event_type',
           x.v->>'entity_type', x.v->>'entity_id', coalesce(x.v->'data', '{}'::jsonb),
           coalesce((x.v->>'occurred_at')::timestamptz, now())
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(v, ord)
     -- An unknown key is left out too: the item-by-item path names it.
     WHERE NOT x.v ? 'key' AND x.v - nudge.event_item_fields() = '{}'::jsonb;
    IF (SELECT count(*) FROM pg_temp.nudge_batch_event) <> jsonb_array_length(p_items)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   WHERE length(e.event_type) NOT BETWEEN 1 AND 200 OR e.event_type LIKE 'nudge.%'
                      OR length(e.entity_type) NOT BETWEEN 1 AND 200
                      OR length(e.entity_id) NOT BETWEEN 1 AND 200 OR e.event_type IS NULL
                      OR nudge.is_blank(e.event_type) OR nudge.is_blank(e.entity_type)
                      OR nudge.is_blank(e.entity_id)
                      OR e.entity_type IS NULL OR e.entity_id IS NULL
                      OR jsonb_typeof(e.data) <> 'object' OR pg_column_size(e.data) > 65536)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1) THEN
      RAISE EXCEPTION USING ERRCODE = 'NU000';
    END IF;
    PERFORM set_config('nudge.event_depth', '1', true);
    FOR v_rule IN SELECT * FROM nudge.rules r
                   WHERE r.enabled
                     AND r.event_type IN (SELECT DISTINCT e.event_type FROM pg_temp.nudge_batch_event e)
                   ORDER BY r.id LOOP
      CASE v_rule.action->>'type'
        WHEN 'remind' THEN
          -- The rule's reminders go straight into the create's staging table, one row per event,
          -- each template rendered once (a MATERIALIZED row); the same statement says whether
          -- the events filled every field. A field the template does not give is NULL (the
          -- entity: the event's), as a create item without it.
          SELECT string_agg(format('%s AS %I', v_rule.compiled->'columns'->>c.name, c.name), ', ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(format('x.%I IS NULL', c.name), ' OR ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(CASE c.name WHEN 'misfire_policy'
                                 THEN format('coalesce(%s, ''fire_once'')', v.value)
                                 ELSE v.value END, ', ' ORDER BY c.ord)
            INTO v_rendered, v_unfilled, v_values
            FROM unnest(ARRAY['entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type',
                              'interval_seconds', 'target', 'stop_condition_type',
                              'stop_condition_value', 'max_fires', 'ends_at', 'cron', 'timezone',
                              'misfire_policy', 'max_attempts'],
                        ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text',
                              'text', 'integer', 'timestamptz', 'text', 'text', 'text', 'integer'])
                 WITH ORDINALITY AS c(name, type, ord)
           CROSS JOIN LATERAL (
                 SELECT CASE WHEN v_rule.compiled->'columns' ? c.name
                             THEN format('(x.%I #>> ''{}'')::%s', c.name, c.type)
                             WHEN c.name IN ('entity_type', 'entity_id')
                             THEN format('x.event_%s', c.name)
                             ELSE format('NULL::%s', c.type) END AS value) v;
          PERFORM nudge.new_reminder_stage();
          EXECUTE format(
            'WITH x AS MATERIALIZED (
               SELECT e.ord, e.id, e.entity_type AS event_entity_type,
                      e.entity_id AS event_entity_id, %s AS run_at, %s::jsonb AS payload%s
                 FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s
             ), staged AS (
               INSERT INTO pg_temp.nudge_new_reminder (
                 entity_type, entity_id, event_type, channel, schedule_type, interval_seconds,
                 target, stop_condition_type, stop_condition_value, max_fires, ends_at, cron,
                 timezone, misfire_policy, max_attempts, item, run_at, payload, rule_id,
                 event_id, request)
               SELECT %s, x.ord, x.run_at, coalesce(x.payload, ''{}''), %s, x.id, %L::jsonb
                 FROM x)
             SELECT count(*), coalesce(bool_or(%s OR (%L AND x.payload IS NULL)), false) FROM x',
            v_rule.compiled->>'run_at', coalesce(v_rule.compiled->>'payload', 'NULL'),
            coalesce(', ' || v_rendered, ''), v_rule.event_type, v_rule.compiled->>'when',
            v_values,
            v_rule.id, nullif(v_rule.compiled->'request', 'null'::jsonb),
            coalesce(v_unfilled, 'false'), v_rule.action->'reminder' ? 'payload')
            INTO v_count, v_missing;
          IF v_missing THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';  -- the item-by-item path names the value
          ELSIF v_count = 0 THEN
            NULL;
          ELSIF nudge.create_staged_reminders() THEN
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, b.item, b.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', nudge.reminder_json(r), 'created', b.created)
              FROM pg_temp.nudge_new_reminder b JOIN nudge.reminders r ON r.id = b.id;
          ELSE
            -- Not plainly new and distinct (a stop flag already true, say): this rule's
            -- reminders are created one by one, as nudge.create_reminders would.
            SELECT array_agg(b.item ORDER BY b.item),
                   jsonb_agg(jsonb_build_object(
                     'entity_type', b.entity_type, 'entity_id', b.entity_id,
                     'event_type', b.event_type, 'channel', b.channel,
                     'schedule_type', b.schedule_type, 'run_at', b.run_at,
                     'interval_seconds', b.interval_seconds, 'target', b.target,
                     'payload', b.payload, 'stop_condition_type', b.stop_condition_type,
                     'stop_condition_value', b.stop_condition_value, 'max_fires', b.max_fires,
                     'ends_at', b.ends_at, 'cron', b.cron, 'timezone', b.timezone,
                     'misfire_policy', b.misfire_policy, 'max_attempts', b.max_attempts,
                     'rule_id', b.rule_id, 'event_id', b.event_id, 'request', b.request)
                     ORDER BY b.item)
              INTO v_ords, v_items
              FROM pg_temp.nudge_new_reminder b;
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, v_ords[c.item + 1], c.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', c.reminder, 'created', c.created)
              FROM nudge.create_reminders_one_by_one(v_items) c;
          END IF;
        WHEN 'set_flag' THEN
          EXECUTE format(
            'SELECT array_agg(e.ord ORDER BY e.ord), array_agg((%s) #>> ''{}'' ORDER BY e.ord)
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.compiled->>'key', v_rule.event_type, v_rule.compiled->>'when')
            INTO v_ords, v_keys;
          IF EXISTS (SELECT 1 FROM unnest(v_keys) AS k(key)
                      WHERE coalesce(length(k.key), 0) NOT BETWEEN 1 AND 200) THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          -- One row per key: every event that sets a key sets it to the rule's one value.
          WITH set AS (
            INSERT INTO nudge.status_flags AS sf (key, value)
            SELECT DISTINCT k.key, (v_rule.action->'flag'->>'value')::boolean
              FROM unnest(v_keys) AS k(key)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
            RETURNING sf.*)
          INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
          SELECT v_rule.id, o.ord, o.ord,
                 jsonb_build_object('rule_id', v_rule.id, 'type', 'set_flag', 'flag', to_jsonb(s))
            FROM unnest(v_ords, v_keys) AS o(ord, key) JOIN set s ON s.key = o.key;
        ELSE
          EXECUTE format(
            'INSERT INTO pg_temp.nudge_batch_effect (ord, i, rule_id, item)
             SELECT e.ord, e.ord, %s, jsonb_build_object(''event_type'', (%s) #>> ''{}'',
                                                  ''entity_type'', (%s) #>> ''{}'',
                                                  ''entity_id'', (%s) #>> ''{}'')
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.id, v_rule.compiled->>'event_type', v_rule.compiled->>'entity_type',
            v_rule.compiled->>'entity_id', v_rule.event_type, v_rule.compiled->>'when');
          UPDATE pg_temp.nudge_batch_effect f
             SET effect = jsonb_build_object('rule_id', v_rule.id, 'type', 'cancel',
                                             'cancelled', to_jsonb(coalesce(c.ids, '{}')))
            FROM (SELECT f2.ord, array_agg((nudge.cancel_reminder(r.id)).id ORDER BY r.id) AS ids
                    FROM pg_temp.nudge_batch_effect f2
                    LEFT JOIN nudge.reminders r
                      ON r.entity_type = f2.item->>'entity_type' AND r.entity_id = f2.item->>'entity_id'
                     AND r.event_type = f2.item->>'event_type' AND r.status IN ('ACTIVE', 'PAUSED')
                   WHERE f2.rule_id = v_rule.id
                   GROUP BY f2.ord) c
           WHERE f.rule_id = v_rule.id AND f.ord = c.ord;
      END CASE;
    END LOOP;
    PERFORM set_config('nudge.event_depth', '', true);

    -- to_jsonb(array_agg(...)), not jsonb_agg: jsonb_agg takes each value apart token by token
    -- (about 15% slower for a batch's effects). The answer is written as text, in jsonb's own
    -- order and spacing: building it as jsonb copied every effect twice more, token by token.
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY f.rule_id)) AS effects
        FROM pg_temp.nudge_batch_effect f GROUP BY f.ord
    ), recorded AS (
      INSERT INTO nudge.events AS ev OVERRIDING SYSTEM VALUE
      SELECT e.id, e.event_type, e.entity_type, e.entity_id, e.data, NULL, e.occurred_at, now(),
             NULL, 0, coalesce(x.effects, '[]'), NULL
        FROM pg_temp.nudge_batch_event e LEFT JOIN effects x ON x.ord = e.ord ORDER BY e.ord
      RETURNING ev.*)
    SELECT '[' || coalesce(string_agg(
             '{"event": ' || nudge.event_json(r)::text || ', "created": true, "effects": '
             || r.effects::text || '}', ', ' ORDER BY e.ord), '') || ']'
      INTO v_out
      FROM recorded r JOIN pg_temp.nudge_batch_event e ON e.id = r.id;
    RETURN v_out;
  EXCEPTION WHEN SQLSTATE 'NU000' OR SQLSTATE 'NU422' OR data_exception
                 OR integrity_constraint_violation THEN
    NULL;  -- rolled back to the block's start: the item-by-item path answers
  END;
  RETURN nudge.emit_events_one_by_one(p_items)::text;
END $$;
COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';

CREATE OR REPLACE FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_key    text;
  v_value  jsonb;
  v_type   text;
  v_sample nudge.events;
  v_item   jsonb;
  v_field  text;
  v_detail text;
BEGIN
  IF jsonb_typeof(p_template) IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('action.reminder', 'must be a JSON object (a reminder template)');
  END IF;
  FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_template) AS x(k, v) ORDER BY k LOOP
    v_type := nudge.template_field_type(v_key);
    IF v_type IS NULL THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
        CASE WHEN v_key = 'run_at' THEN 'is not for templates: the first fire comes from delay_seconds'
             ELSE 'is not a known field' END);
    END IF;
    IF jsonb_typeof(v_value) IS DISTINCT FROM v_type THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a JSON ' || v_type);
    END IF;
    IF v_type = 'number' AND NOT (v_value::text ~ '^-?[0-9]+$') THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a whole number');
    END IF;
    -- A whole number too long for an integer is out of range, not some other kind of number.
    IF v_type = 'number' AND v_value::text::numeric NOT BETWEEN -2147483648 AND 2147483647 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           'must be a whole number from -2147483648 to 2147483647');
    END IF;
    IF v_type = 'string' THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    PERFORM nudge.check_placeholders(s, 'action.reminder.payload')
       FROM jsonb_path_query(p_template->'payload', '$.**') j,
            LATERAL (SELECT j #>> '{}' AS s) x
      WHERE jsonb_typeof(j) = 'string';
    -- Keys are names, not templates.
    IF EXISTS (SELECT 1 FROM jsonb_path_query(p_template->'payload', '$.**') j
                WHERE jsonb_typeof(j) = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
      PERFORM nudge.reject('action.reminder.payload', 'keys cannot hold {{ or }}');
    END IF;
  END IF;
  IF (p_template->>'delay_seconds')::bigint < 0 THEN
    PERFORM nudge.reject('action.reminder.delay_seconds', 'must be 0 or more');
  END IF;
  IF p_template ? 'interval_seconds' AND p_template ? 'interval_minutes' THEN
    PERFORM nudge.reject('action.reminder.interval_minutes',
                         'give interval_seconds or interval_minutes, not both');
  END IF;
  FOR v_key IN SELECT unnest(ARRAY['event_type', 'channel', 'schedule_type']) LOOP
    IF NOT p_template ? v_key THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'is required');
    END IF;
  END LOOP;

  -- Rendered for a sample event and created as a create would be, then rolled back: the
  -- template is checked like a create. Data placeholders stand for sample values; a target
  -- that is only data stands for an address that suits the channel.
  v_sample := ROW(0, p_event_type, 'sample', 'sample', '{}'::jsonb, NULL, now(), now(), NULL, 0,
                  '[]'::jsonb, NULL)::nudge.events;
  v_item := nudge.reminder_item(nudge.sample_template(p_template), v_sample);
  BEGIN
    PERFORM * FROM nudge.create_reminder_from_item(v_item);
    RAISE EXCEPTION USING ERRCODE = 'NU000';  -- undo the sample reminder
  EXCEPTION
    WHEN SQLSTATE 'NU000' THEN NULL;
    WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
      RAISE EXCEPTION 'action.reminder.%', v_detail
        USING ERRCODE = '22023', COLUMN = 'action.reminder.' || v_field;
  END;
END $_$;
COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, an unknown placeholder, or anything a create would refuse for a sample event; otherwise does nothing.';
