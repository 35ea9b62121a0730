-- 0170: 0168's and 0164's guarantees without their cost. A BEFORE UPDATE ROW trigger has each
-- updated row locked before its WHEN (or its column list) is read: a WAL record more for every
-- fire (+55-60 bytes, 5-13% fewer fires a second in scripts/bench.sh drain). An AFTER trigger's
-- WHEN is read from the update itself: only a write dated before the row's last change (a
-- transaction begun before it) is dated again, by an update of its own (not audited: the audit
-- keeps what statements asked for directly).

DROP TRIGGER reminder_updated_at_never_goes_back ON nudge.reminders;
DROP FUNCTION nudge.date_reminder_write_now();

CREATE FUNCTION nudge.redate_backdated_reminder() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  UPDATE nudge.reminders r SET updated_at = greatest(clock_timestamp(), OLD.updated_at)
   WHERE r.id = NEW.id;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.redate_backdated_reminder() IS 'Trigger: after a reminder write dated before the row''s updated_at (a transaction begun before the last change), dates it when it is made (clock_timestamp(), never before the old updated_at), so that updated_at orders a reminder''s states.';

CREATE TRIGGER reminder_updated_at_never_goes_back AFTER UPDATE ON nudge.reminders
    FOR EACH ROW WHEN (new.updated_at < old.updated_at)
    EXECUTE FUNCTION nudge.redate_backdated_reminder();

-- 0164's trimming of a cron was a BEFORE INSERT OR UPDATE OF cron trigger: any BEFORE UPDATE row
-- trigger, whatever its columns, has every updated row locked first, and so cost every fire the
-- same WAL record. Now only on insert; a reschedule trims its cron itself.

CREATE FUNCTION nudge.bare_cron(p_expr text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT regexp_replace(p_expr, E'^[\\s\u00a0\u0085]+|[\\s\u00a0\u0085]+$', '', 'g')
$$;

COMMENT ON FUNCTION nudge.bare_cron(p_expr text) IS 'p_expr without the white space before and after it (a newline, a tab, \v, \f, a no-break space, NEL), which nudge.cron_parse reads as none; NULL for NULL.';

DROP TRIGGER reminder_cron_has_no_surrounding_space ON nudge.reminders;

CREATE OR REPLACE FUNCTION nudge.trim_reminder_cron() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
  NEW.cron := nudge.bare_cron(NEW.cron);
  RETURN NEW;
END $_$;

COMMENT ON FUNCTION nudge.trim_reminder_cron() IS 'Trigger: a reminder row''s cron expression is kept without the white space before and after it, which nudge.cron_parse reads as none.';

-- Named to run before reminder_cron_is_described (BEFORE triggers run in name order), so that
-- the words describe the expression as stored.
CREATE TRIGGER reminder_cron_has_no_surrounding_space BEFORE INSERT ON nudge.reminders
    FOR EACH ROW WHEN (new.cron IS NOT NULL) EXECUTE FUNCTION nudge.trim_reminder_cron();

CREATE OR REPLACE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_payload jsonb DEFAULT NULL::jsonb, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_clear text[] DEFAULT '{}'::text[], p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_next    timestamptz;  -- the next fire once rescheduled
  v_zone    text;         -- a cron reminder's zone once rescheduled
  v_parsed  nudge.cron;   -- and its schedule
  v_moving  text[];       -- what a delivery under way keeps from changing
  v_new_cron boolean := p_cron IS NOT NULL OR p_timezone IS NOT NULL;
  v_field   text;         -- what the reminder's request check named
  v_problem text;
  -- The limits to take away: a NULL argument keeps a setting, so clearing one is said by name.
  v_clear   text[] := coalesce(p_clear, '{}');
BEGIN
  IF NOT v_clear <@ ARRAY['max_fires', 'ends_at'] OR array_position(v_clear, NULL) IS NOT NULL THEN
    PERFORM nudge.reject('clear', 'may name max_fires and ends_at, the limits a reminder can do '
                                  'without');
  END IF;
  IF 'max_fires' = ANY (v_clear) AND p_max_fires IS NOT NULL THEN
    PERFORM nudge.reject('max_fires', 'cannot be both given and cleared');
  END IF;
  IF 'ends_at' = ANY (v_clear) AND p_ends_at IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', 'cannot be both given and cleared');
  END IF;
  -- As REST's PATCH {} (before the reminder is looked up, as there).
  IF p_run_at IS NULL AND p_interval_seconds IS NULL AND p_payload IS NULL AND p_max_fires IS NULL
     AND p_ends_at IS NULL AND cardinality(v_clear) = 0 AND NOT v_new_cron THEN
    PERFORM nudge.reject('change', 'nothing to change: give run_at, interval_seconds, payload, '
                                   'cron, timezone, max_fires or ends_at, or clear max_fires or '
                                   'ends_at');
  END IF;
  v_row := nudge.lock_reminder(p_id);
  IF v_row.status NOT IN ('ACTIVE', 'PAUSED') THEN
    RAISE EXCEPTION 'reminder % is %, only an ACTIVE or PAUSED reminder can be rescheduled',
      p_id, v_row.status USING ERRCODE = 'NU409';
  END IF;
  -- The worker records its attempt by the occurrence it took, and the attempt's outcome decides
  -- the next fire: a new run_at or schedule now would be lost, or lose that record. The attempt
  -- sends the payload it was claimed with: a new one would be stored as if sent, and never sent
  -- when the attempt ends the reminder.
  v_moving := array_remove(ARRAY[CASE WHEN p_run_at IS NOT NULL THEN 'run_at' END,
                                 CASE WHEN p_payload IS NOT NULL THEN 'payload' END,
                                 CASE WHEN p_cron IS NOT NULL THEN 'cron' END,
                                 CASE WHEN p_timezone IS NOT NULL THEN 'timezone' END], NULL);
  IF cardinality(v_moving) > 0 AND v_row.leased_by IS NOT NULL AND v_row.lease_expires_at > now() THEN
    RAISE EXCEPTION 'reminder % is being delivered (attempt % of the occurrence at %, leased until %): change its % once that attempt ends',
      p_id, v_row.attempt, nudge.rfc3339_in_zone(coalesce(v_row.occurrence_at, v_row.next_run_at), 'UTC'),
      nudge.rfc3339_in_zone(v_row.lease_expires_at, 'UTC'),
      concat_ws(' and ', nullif(array_to_string(v_moving[1:cardinality(v_moving) - 1], ', '), ''),
                v_moving[cardinality(v_moving)])
      USING ERRCODE = 'NU409';
  END IF;
  IF v_new_cron AND v_row.schedule_type <> 'cron' THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  IF length(p_cron) > 200 THEN
    PERFORM nudge.reject('cron', 'must be at most 200 characters');
  END IF;
  v_zone := CASE WHEN p_timezone IS NOT NULL THEN nudge.checked_timezone(p_timezone)
                 ELSE v_row.timezone END;
  v_parsed := CASE WHEN p_cron IS NOT NULL THEN nudge.cron_parse(p_cron) ELSE v_row.cron_schedule END;
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
    PERFORM nudge.reject('payload', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires <= v_row.fire_count THEN
    PERFORM nudge.reject('max_fires', 'must be more than the fires already made');
  END IF;
  -- A cron reminder keeps to its schedule: its first occurrence at or after run_at. A new
  -- schedule without a run_at starts from now, unless an occurrence is retrying: its next attempt
  -- keeps its time, and the new schedule follows it.
  v_next := CASE WHEN p_run_at IS NOT NULL
                   THEN nudge.first_run_at(v_row.schedule_type, p_run_at, v_parsed, v_zone)
                 WHEN v_new_cron AND v_row.occurrence_at IS NULL
                   THEN nudge.first_run_at('cron', now(), v_parsed, v_zone)
                 ELSE v_row.next_run_at END;
  IF v_next IS NULL THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END,
                         nudge.cron_horizon_problem());
  END IF;
  IF v_next > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END,
                         'the next fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  -- An occurrence is recorded once: one at a time that already fired would be delivered again
  -- under its old Idempotency-Key and counted as a fire, but never recorded.
  IF (p_run_at IS NOT NULL OR v_new_cron) AND v_row.occurrence_at IS NULL
     AND EXISTS (SELECT 1 FROM nudge.executions x
                  WHERE x.reminder_id = p_id AND x.scheduled_for = v_next) THEN
    PERFORM nudge.reject(CASE WHEN p_run_at IS NULL THEN 'cron' ELSE 'run_at' END, format(
      'the occurrence at %s has already fired; choose another time (now, or any moment not yet '
      'fired, fires it again as a new occurrence)', nudge.rfc3339_in_zone(v_next, 'UTC')));
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
  IF (p_run_at IS NOT NULL OR v_new_cron) AND p_ends_at IS NULL AND NOT 'ends_at' = ANY (v_clear)
     AND v_next > v_row.ends_at THEN
    IF p_run_at IS NOT NULL THEN
      PERFORM nudge.reject('run_at', 'must not be after ends_at');
    END IF;
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         format('the new schedule''s next fire, %s, must not be after ends_at',
                                nudge.rfc3339_in_zone(v_next, 'UTC')));
  END IF;
  -- Apart from the rest: writing the expression describes it again (a trigger).
  IF v_new_cron THEN
    UPDATE nudge.reminders
       SET cron = coalesce(nudge.bare_cron(p_cron), cron), timezone = v_zone, cron_schedule = v_parsed
     WHERE id = p_id;
  END IF;
  UPDATE nudge.reminders
     SET next_run_at = v_next,
         interval_seconds = coalesce(p_interval_seconds, interval_seconds),
         payload = coalesce(p_payload, payload),
         max_fires = CASE WHEN 'max_fires' = ANY (v_clear) THEN NULL
                          ELSE coalesce(p_max_fires, max_fires) END,
         ends_at = CASE WHEN 'ends_at' = ANY (v_clear) THEN NULL ELSE coalesce(p_ends_at, ends_at) END,
         updated_at = now()
   WHERE id = p_id
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;

COMMENT ON FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone, p_interval_seconds integer, p_payload jsonb, p_max_fires integer, p_ends_at timestamp with time zone, p_clear text[], p_cron text, p_timezone text) IS 'Changes when and how an ACTIVE or PAUSED reminder fires (a NULL argument keeps that setting; p_clear names the limits to remove, max_fires and/or ends_at; identity, channel and status never change): run_at is the next fire, for a cron reminder its schedule''s first occurrence at or after run_at (while an occurrence is retrying, that occurrence''s next attempt: the schedule''s later occurrences keep their places), never after ends_at nor after 9999-12-31T23:59:59Z, nor an occurrence that has already fired (22023 naming run_at: it would be delivered again under its old key and never recorded); a cron reminder''s p_cron and p_timezone replace its schedule (checked as a create checks them, 22023 naming the field; on another schedule type 22023 too), its next fire then being the new schedule''s first occurrence at or after run_at, else now (while an occurrence is retrying, that attempt keeps its time), never after ends_at (22023 naming cron or timezone); nothing to change (every argument NULL, p_clear empty) raises 22023 naming change, a bad value 22023 naming the field (a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included; payload when the new payload lacks a value the reminder''s request reads; clear naming anything else; a limit both given and cleared), another status NU409, and so does a run_at, payload, cron or timezone while a worker holds the reminder''s lease (a delivery under way, which sends the payload it was claimed with), a missing reminder NU404; bringing the next fire forward wakes sleeping workers.';

