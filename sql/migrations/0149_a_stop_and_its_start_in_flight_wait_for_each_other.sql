-- 0149: a stop flag set true while a transaction creating a reminder it stops is still open
-- (and the other way round) no longer leaves that reminder ACTIVE with its flag true until it
-- comes due (explore26a #1): under READ COMMITTED neither saw the other's uncommitted row, a
-- write skew. Both sides now take a lock on the flag's key before they read: a create shares it,
-- a flag set true holds it alone, so the later of the two waits for the earlier to end and then
-- sees what it wrote, as a foreign key's check waits for the row it references.
--
-- A new function and four bodies.

CREATE FUNCTION nudge.lock_stop_flags(p_keys text[], p_setting boolean) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_held integer := coalesce(nullif(pg_catalog.current_setting('nudge.stop_flag_locks', true), '')::integer, 0);
  v_n    integer := coalesce(pg_catalog.cardinality(p_keys), 0);
  v_set  text;  -- an answer unused: an assignment is cheaper than PERFORM's query
BEGIN
  -- Each key is an entry in the server's shared lock table until the transaction ends, and a
  -- full table fails every session's next lock ("out of shared memory"): a transaction takes at
  -- most 1,000, and a statement that would pass them takes none (its overlap is caught when its
  -- reminders come due, as before).
  IF v_n = 0 OR v_held + v_n > 1000 THEN
    RETURN 0;
  END IF;
  IF v_n = 1 THEN
    v_set := CASE WHEN p_setting
                  THEN pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('nudge.stop_flag ' || p_keys[1], 0))::text
                  ELSE pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('nudge.stop_flag ' || p_keys[1], 0))::text END;
  ELSE
    -- In one order for every statement: two batches taking the same keys in different orders
    -- would wait on each other.
    PERFORM CASE WHEN p_setting THEN pg_catalog.pg_advisory_xact_lock(k.lock)
                 ELSE pg_catalog.pg_advisory_xact_lock_shared(k.lock) END
       FROM (SELECT DISTINCT pg_catalog.hashtextextended('nudge.stop_flag ' || x.key, 0) AS lock
               FROM pg_catalog.unnest(p_keys) AS x(key) WHERE x.key IS NOT NULL) k
      ORDER BY k.lock;
  END IF;
  v_set := pg_catalog.set_config('nudge.stop_flag_locks', (v_held + v_n)::text, true);
  RETURN v_n;
END $$;

COMMENT ON FUNCTION nudge.lock_stop_flags(p_keys text[], p_setting boolean) IS 'Takes a lock on each stop flag key until the transaction ends, shared to create reminders the flags stop (p_setting false), alone to set them true, so a create and a flag set of one key that overlap take turns and the later sees what the earlier committed; takes none when that would pass 1,000 in the transaction (nudge.stop_flag_locks counts them). Returns how many keys it was given to lock (0: none locked).';

CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
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
  IF strpos(p_target, '{{') > 0 AND nudge.secret_address_name(p_target) IS NULL THEN
    PERFORM nudge.reject('target', 'a reminder''s target is not a template; rules render {{...}} '
                                   'in theirs');
  END IF;
  IF nudge.unknown_secret_problem(p_target) IS NOT NULL THEN
    PERFORM nudge.reject('target', nudge.unknown_secret_problem(p_target));
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
    PERFORM nudge.reject('payload', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is required for recurring');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
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
  IF v_run_at IS NULL THEN  -- (only a cron schedule can have none: nudge.cron_next)
    PERFORM nudge.reject('cron', nudge.cron_horizon_problem());
  END IF;
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge.reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200
             OR nudge.is_blank(p_stop_condition_value)) THEN
    PERFORM nudge.reject('stop_condition_value',
                         'must be a flag key of 1 to 200 characters, not only white space');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge.reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;
  -- Checked before a live reminder of the same identity can be answered, so a bad request is
  -- refused whatever exists (the trigger reminder_request_is_checked checks it again as the row
  -- is written, for plain SQL).
  IF nullif(p_request, 'null'::jsonb) IS NOT NULL THEN  -- (JSON null: no request, as stored)
    PERFORM nudge.check_request(p_request, p_channel, p_payload);
  END IF;

  IF p_stop_condition_type = 'db_check' THEN
    v_locked := nudge.lock_stop_flags(ARRAY[p_stop_condition_value], false);
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

COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls (under REPEATABLE READ or SERIALIZABLE the later of two raises 40001, to be retried); bad input (a name or stop flag key empty, over 200 characters or only white space, a target a log reminder cannot have or one holding {{ (a target is not a template) other than a webhook''s {{secret.NAME}} alone, or naming a secret the calling nudge-api does not have (nudge.unknown_secret_problem), a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included, or a first fire after it, a payload over 64 KiB as stored, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires, one set true by a transaction still open is waited for (nudge.lock_stop_flags).';

CREATE OR REPLACE FUNCTION nudge.create_staged_reminders() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  PERFORM nudge.lock_stop_flags(ARRAY(SELECT DISTINCT b.stop_condition_value
                                        FROM pg_temp.nudge_new_reminder b
                                       WHERE b.stop_condition_value IS NOT NULL), false);
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
           -- (a run_at out of range is not looked at: the check below refuses it)
           WHERE (b2.schedule_type = 'cron' AND nudge.time_problem(b2.run_at) IS NULL)
              OR (b2.schedule_type = 'recurring' AND b2.run_at IS NULL)
          OFFSET 0) s
   WHERE b.item = s.item;

  IF EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
              WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                 OR nudge.time_problem(b.run_at) IS NOT NULL
                 OR nudge.time_problem(b.ends_at) IS NOT NULL
                 OR jsonb_typeof(b.payload) <> 'object'
                 OR nudge.is_blank(b.entity_type) OR nudge.is_blank(b.entity_id)
                 OR nudge.is_blank(b.event_type) OR nudge.is_blank(b.stop_condition_value)
                 OR (b.channel = 'log' AND b.target IS NOT NULL)
                 OR (strpos(b.target, '{{') > 0 AND nudge.unknown_secret_problem(b.target) IS NOT NULL)
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

COMMENT ON FUNCTION nudge.create_staged_reminders() IS 'Creates (or finds, by identity) the reminders staged in pg_temp.nudge_new_reminder with one set-based INSERT and sets each row''s id and created; false when a row is not plainly valid, new and distinct (its stop flag already true, or set true by a transaction still open, which is waited for: nudge.lock_stop_flags, two rows of one identity, a name or stop flag key of only white space, a log reminder''s target, a secret the calling nudge-api does not have, a first fire or ends_at nudge.time_problem refuses, a bound the create function checks: nothing is written) or was neither inserted nor found live (a concurrent create), so the caller takes the item-by-item path; a value a constraint refuses raises its error.';

CREATE OR REPLACE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) RETURNS nudge.reminders
    LANGUAGE plpgsql
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
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
  v_item := nudge.with_webhook_target(v_item, p_template, p_event);
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
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL
                    AND (strpos(v_item->>'target', '{{') = 0
                         OR (nudge.secret_address_name(v_item->>'target') IS NOT NULL
                             AND nudge.unknown_secret_problem(v_item->>'target') IS NULL)), true)
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
       AND coalesce(nudge.is_rfc3339(v_item->>'ends_at'), true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true)
       AND nudge.time_problem((v_item->>'ends_at')::timestamptz) IS NULL
       AND NOT coalesce(nudge.is_blank(v_item->>'stop_condition_value'), false)
       AND v_run_at <= nudge.latest_fire(), false) THEN
    RETURN NULL;
  END IF;
  IF v_item ? 'stop_condition_value' THEN
    v_locked := nudge.lock_stop_flags(ARRAY[v_item->>'stop_condition_value'], false);
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

COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true (one set true by a transaction still open is waited for: nudge.lock_stop_flags) and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';

CREATE OR REPLACE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_locked   integer;  -- stop flag keys locked, unused
  v_live integer;
BEGIN
  -- A create of a reminder these flags stop, in a transaction still open, is waited for: the
  -- statements below see it (explore26a #1: neither side saw the other, and it stayed ACTIVE).
  v_locked := nudge.lock_stop_flags(ARRAY(SELECT f.key FROM changed_flags f WHERE f.value), true);
  -- The flags' keys as an InitPlan of each statement, as before 0033 (a variable would make both
  -- statements parameterised, planned afresh for their first five runs in every backend). A live
  -- reminder is written as "not ended" so that only reminders_live_by_stop_flag serves (0071).
  -- How many there are, up to 2: several are locked in id order first, as bulk changes and a
  -- worker's finish lock them (in the index's order a flag and a cancel of the same entity's
  -- reminders deadlocked: explore19a #2); one is updated as it is found (the ordered lock cost a
  -- flag 10% more).
  SELECT count(*) INTO v_live FROM (
    SELECT 1 FROM nudge.reminders
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
     LIMIT 2) l;
  IF v_live = 1 THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE stop_condition_type = 'db_check'
       AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
       AND status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  ELSIF v_live > 1 THEN
    UPDATE nudge.reminders r
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
     WHERE r.id IN (SELECT x.id FROM nudge.reminders x
                     WHERE x.stop_condition_type = 'db_check'
                       AND x.stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
                       AND x.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED')
                     ORDER BY x.id
                       FOR UPDATE)
       AND r.status NOT IN ('COMPLETED', 'CANCELLED', 'FAILED');
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS 'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction (several locked in id order; one a transaction still open is creating is waited for, nudge.lock_stop_flags), so none is claimed after it commits; runs as its owner, so a role that may write flags needs no right on reminders.';

