-- 0056: a time zone is a name of the tz database, and a cron schedule whose next occurrence is
-- beyond cron_next's 8-year search is refused saying so.
--
-- (1) PostgreSQL reads a name it has no zone file for as a POSIX TZ string when it can: the
-- first part of "UTC+5" was refused as an offset since 0048, but "Etc/GMT+14", "Etc/GMT-16" or
-- "Etc/GMT+99" (the tz database has Etc/GMT-14 .. Etc/GMT+12) were taken as zones named
-- "ETC/GMT+99" with offsets such as -99:00, which RFC 3339 cannot write and the sentence
-- parser cannot read back. They are refused now as "UTC+5" is.
--
-- (2) A cron schedule such as "0 0 29 2 */4" (29 February on a Sunday or Thursday: 2032, then
-- 2052) can have no occurrence within the 8 years nudge.cron_next searches: a create failed on
-- the NOT NULL of next_run_at (no field), and a reschedule said "has no occurrence", which is
-- not true. Both say now that the search is limited.

-- (1)
CREATE OR REPLACE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $$
DECLARE
  v_set text;  -- set_config's answer: the zone's name as the tz database spells it
BEGIN
  IF p_zone IS NULL OR p_zone = '' THEN
    RAISE EXCEPTION 'timezone: "" is not a time zone name' USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  -- A POSIX TZ string has a digit in its first part (its offset, counted west of Greenwich);
  -- no name of the tz database has, but these seven, which mean what they say.
  IF split_part(p_zone, '/', 1) ~ '[0-9<>,:]'
     AND p_zone NOT IN ('GMT0', 'GMT+0', 'GMT-0', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT') THEN
    RAISE EXCEPTION 'timezone: "%" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  IF lower(p_zone) IN ('localtime', 'posixrules', 'factory') THEN
    RAISE EXCEPTION 'timezone: "%" is not a time zone of its own (localtime is the database '
                    'server''s setting): name one, such as Europe/Berlin', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  BEGIN
    v_set := set_config('timezone', p_zone, true);
  EXCEPTION WHEN invalid_parameter_value THEN
    IF EXISTS (SELECT 1 FROM pg_timezone_abbrevs a WHERE a.abbrev = upper(p_zone)) THEN
      RAISE EXCEPTION 'timezone: "%" is an abbreviation, one offset all year: name the zone, '
                      'such as Europe/Berlin or America/Los_Angeles', p_zone
        USING ERRCODE = '22023', COLUMN = 'timezone';
    END IF;
    RAISE EXCEPTION 'timezone: "%" is not a time zone name', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END;
  -- A name with a "/" the tz database lacks (Etc/GMT+14, Etc/GMT-16, Foo/Bar+3) still reads as
  -- a POSIX TZ string, upper-cased, its offset after the slash. The tz database's own names with
  -- a digit are only these (pg_timezone_names, without its posix/ copies); a regular expression
  -- costs 1 us where looking the name up in pg_timezone_names reads every zone file (175 ms).
  IF v_set ~ '[0-9]'
     AND v_set !~ '^(posix/)?((Etc/)?GMT[+-]?0|Etc/GMT(\+([1-9]|1[0-2])|-([1-9]|1[0-4]))|EST5EDT|CST6CDT|MST7MDT|PST8PDT)$' THEN
    RAISE EXCEPTION 'timezone: "%" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END IF;
  RETURN v_set;
END $$;

COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone as the tz database spells it (europe/berlin: Europe/Berlin) when it is a zone of the tz database that PostgreSQL knows (not localtime, posixrules or Factory); 22023 with COLUMN = timezone otherwise, naming an offset or POSIX TZ string ("+05:00", "UTC+5", "Etc/GMT+14") or an abbreviation ("CEST", "PDT") as such.';

-- (2) One text for both: the create names cron, a reschedule the run_at it moved.
CREATE FUNCTION nudge.cron_horizon_problem() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT 'has no occurrence within 8 years after run_at (the next occurrence of a cron schedule '
         'is searched for 8 years ahead: a day-of-month and a day-of-week that must both match, '
         'such as 29 February on a Sunday, can be further apart)'::text
$$;
COMMENT ON FUNCTION nudge.cron_horizon_problem() IS 'Why a cron schedule is refused when nudge.cron_next finds no occurrence: its search is limited to 8 years.';

-- (2) The create: field cron.
CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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
  IF strpos(p_target, '{{') > 0 THEN
    PERFORM nudge.reject('target', 'a reminder''s target is not a template; rules render {{...}} '
                                   'in theirs');
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


-- (2) The reschedule: field run_at, which it moved.
CREATE OR REPLACE FUNCTION nudge.reschedule_reminder(p_id bigint, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_payload jsonb DEFAULT NULL::jsonb, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_clear text[] DEFAULT '{}'::text[]) RETURNS nudge.reminders
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row     nudge.reminders;
  v_next    timestamptz;  -- the next fire once rescheduled
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
     AND p_ends_at IS NULL AND cardinality(v_clear) = 0 THEN
    PERFORM nudge.reject('change', 'nothing to change: give run_at, interval_seconds, payload, '
                                   'max_fires or ends_at, or clear max_fires or ends_at');
  END IF;
  v_row := nudge.lock_reminder(p_id);
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
  -- A cron reminder keeps to its schedule: its first occurrence at or after run_at.
  v_next := CASE WHEN p_run_at IS NULL THEN v_row.next_run_at
                 ELSE nudge.first_run_at(v_row.schedule_type, p_run_at, v_row.cron_schedule,
                                         v_row.timezone) END;
  IF v_next IS NULL THEN
    PERFORM nudge.reject('run_at', nudge.cron_horizon_problem());
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
  IF p_run_at IS NOT NULL AND p_ends_at IS NULL AND NOT 'ends_at' = ANY (v_clear)
     AND v_next > v_row.ends_at THEN
    PERFORM nudge.reject('run_at', 'must not be after ends_at');
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

