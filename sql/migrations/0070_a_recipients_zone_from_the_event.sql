-- 0070: a remind template's timezone may be a data placeholder ("{{data.tz}}": each recipient's
-- own zone), checked as UTC when the rule is saved and as rendered at each event (an unknown
-- zone rejects the event, 422); a placeholder in channel, schedule_type, cron, misfire_policy or
-- stop_condition_type is refused saying so, where the sample value "sample" was quoted before.

CREATE OR REPLACE FUNCTION nudge.sample_template(p_template jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $_$
  SELECT regexp_replace(
           CASE WHEN p_template->>'target' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                THEN jsonb_set(p_template - 'request', '{target}',
                               to_jsonb(CASE p_template->>'channel'
                                          WHEN 'email' THEN 'sample@example.com'
                                          ELSE 'https://example.com/sample' END))
                ELSE p_template - 'request' END::text,
           '\{\{\s*data\.[^{}]*?\s*\}\}', 'sample', 'g')::jsonb
         || CASE WHEN p_template ? 'request'
                 THEN jsonb_build_object('request', p_template->'request') ELSE '{}'::jsonb END
         || CASE WHEN p_template->>'timezone' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                 THEN jsonb_build_object('timezone', 'UTC') ELSE '{}'::jsonb END
$_$;

COMMENT ON FUNCTION nudge.sample_template(p_template jsonb) IS 'A remind template with its data placeholders replaced by sample values (the request, whose placeholders are the reminder''s, left as it is), a target made of data only by an address that suits the channel, a timezone made of data only by UTC.';

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
    -- A whole number too long for an integer is out of the field's own range.
    IF v_type = 'number' AND v_value::text::numeric NOT BETWEEN -2147483648 AND 2147483647 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           format('must be a whole number from %s to %s',
                                  (nudge.whole_number_bounds(v_key))[1],
                                  (nudge.whole_number_bounds(v_key))[2]));
    END IF;
    IF v_type = 'string' THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
    -- These decide how every reminder of the rule is checked, when it is saved: one event's
    -- data cannot choose them (a timezone can: it is checked again at each event).
    IF v_key IN ('channel', 'schedule_type', 'cron', 'misfire_policy', 'stop_condition_type')
       AND strpos(v_value #>> '{}', '{{') > 0 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           'cannot hold placeholders: it is the same for every reminder the rule creates');
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


COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, or anything a create would refuse for a sample event; otherwise does nothing.';

-- A zone a rule renders from its event is checked there: its refusal names the template's field
-- (action.reminder.timezone) in a 422, as any other the event cannot fill.
CREATE OR REPLACE FUNCTION nudge.checked_timezone(p_zone text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $_$
DECLARE
  v_set text;  -- set_config's answer: the zone's name as the tz database spells it
BEGIN
  IF p_zone IS NULL OR p_zone = '' THEN
    PERFORM nudge.reject('timezone', '"" is not a time zone name');
  END IF;
  -- A POSIX TZ string has a digit in its first part (its offset, counted west of Greenwich);
  -- no name of the tz database has, but these seven, which mean what they say.
  IF split_part(p_zone, '/', 1) ~ '[0-9<>,:]'
     AND p_zone NOT IN ('GMT0', 'GMT+0', 'GMT-0', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT') THEN
    PERFORM nudge.reject('timezone', format('"%s" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone));
  END IF;
  IF lower(p_zone) IN ('localtime', 'posixrules', 'factory') THEN
    PERFORM nudge.reject('timezone', format('"%s" is not a time zone of its own (localtime is the database '
                    'server''s setting): name one, such as Europe/Berlin', p_zone));
  END IF;
  BEGIN
    v_set := set_config('timezone', p_zone, true);
  EXCEPTION WHEN invalid_parameter_value THEN
    IF EXISTS (SELECT 1 FROM pg_timezone_abbrevs a WHERE a.abbrev = upper(p_zone)) THEN
      PERFORM nudge.reject('timezone', format('"%s" is an abbreviation, one offset all year: name the zone, '
                      'such as Europe/Berlin or America/Los_Angeles', p_zone));
    END IF;
    PERFORM nudge.reject('timezone', format('"%s" is not a time zone name', p_zone));
  END;
  -- A name with a "/" the tz database lacks (Etc/GMT+14, Etc/GMT-16, Foo/Bar+3) still reads as
  -- a POSIX TZ string, upper-cased, its offset after the slash. The tz database's own names with
  -- a digit are only these (pg_timezone_names, without its posix/ copies); a regular expression
  -- costs 1 us where looking the name up in pg_timezone_names reads every zone file (175 ms).
  IF v_set ~ '[0-9]'
     AND v_set !~ '^(posix/)?((Etc/)?GMT[+-]?0|Etc/GMT(\+([1-9]|1[0-2])|-([1-9]|1[0-4]))|EST5EDT|CST6CDT|MST7MDT|PST8PDT)$' THEN
    PERFORM nudge.reject('timezone', format('"%s" is an offset, not a time zone name: use a name of the tz '
                    'database such as Europe/Berlin, or Etc/GMT-5 for a fixed UTC+05:00', p_zone));
  END IF;
  RETURN v_set;
END $_$;

COMMENT ON FUNCTION nudge.checked_timezone(p_zone text) IS 'p_zone as the tz database spells it (europe/berlin: Europe/Berlin) when it is a zone of the tz database that PostgreSQL knows (not localtime, posixrules or Factory); otherwise raises through nudge.reject (22023 naming timezone, or while a rule''s action runs NU422 naming the template''s field), naming an offset or POSIX TZ string ("+05:00", "UTC+5", "Etc/GMT+14") or an abbreviation ("CEST", "PDT") as such.';
