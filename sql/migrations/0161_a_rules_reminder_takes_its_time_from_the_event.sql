-- 0161: a rule's reminder may take its time from the event (explore31b F1): "run_at":
-- "{{data.interview_at}}" (one data placeholder, an RFC 3339 time with an offset, or a time
-- written out), and delay_seconds counts from it, before it too: "remind the candidate a day
-- before the interview" is run_at {{data.interview_at}} with delay_seconds -86400. Without
-- run_at, the first fire still comes delay_seconds (0 or more) after the event occurred. Users
-- posted their events with a made-up occurred_at to get this.

CREATE OR REPLACE FUNCTION nudge.template_field_type(p_field text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE
    WHEN p_field IN ('entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'cron',
                     'timezone', 'target', 'stop_condition_type', 'stop_condition_value',
                     'run_at', 'ends_at', 'misfire_policy') THEN 'string'
    WHEN p_field IN ('interval_seconds', 'interval_minutes', 'max_fires', 'max_attempts',
                     'delay_seconds') THEN 'number'
    WHEN p_field IN ('payload', 'request') THEN 'object'
  END
$$;

COMMENT ON FUNCTION nudge.template_field_type(p_field text) IS 'The JSON type of a field of a remind template (string, number or object; run_at a string: the time the first fire counts from), NULL for a field a template cannot hold.';

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
      PERFORM nudge.reject('action.reminder.' || v_key, 'is not a known field');
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
    -- A target may be a URL the worker keeps as a secret, named whole; a secret is nothing else.
    IF v_type = 'string' AND v_value #>> '{}' ~ '\{\{\s*secret\.'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.reject('action.reminder.' || v_key, CASE WHEN v_key = 'target'
        THEN 'a secret stands for a whole target: {{secret.NAME}} alone, the URL its value'
        ELSE 'cannot hold a secret: {{secret.NAME}} stands only for a whole webhook target or '
             'in request.headers' END);
    END IF;
    IF v_type = 'string'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
    -- These decide how every reminder of the rule is checked, when it is saved: one event's
    -- data cannot choose them (a timezone can: it is checked again at each event).
    IF v_key IN ('channel', 'schedule_type', 'cron', 'misfire_policy', 'stop_condition_type')
       AND strpos(v_value #>> '{}', '{{') > 0 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           'cannot hold placeholders: it is the same for every reminder the rule creates');
    END IF;
    -- A time is one value, never pieced together, and always with its offset: read in each
    -- session's zone, "2030-01-01" was a different instant over REST and from SQL (explore26a #3).
    IF v_key IN ('run_at', 'ends_at') AND strpos(v_value #>> '{}', '{{') > 0
       AND NOT v_value #>> '{}' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$' THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
        format('a placeholder stands for the whole time ({{data.%s}}), whose value is an RFC 3339 time with an offset',
               CASE v_key WHEN 'run_at' THEN 'interview_at' ELSE 'deadline' END));
    ELSIF v_key IN ('run_at', 'ends_at') AND strpos(v_value #>> '{}', '{{') = 0
          AND nudge.item_value_problem(v_key, v_value) IS NOT NULL THEN
      PERFORM nudge.reject('action.reminder.' || v_key, nudge.item_value_problem(v_key, v_value));
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    -- Each string named by its place (action.reminder.payload.a[1]), as an event's missing
    -- value is named.
    PERFORM nudge.check_placeholders(s.value, s.place)
       FROM nudge.json_strings(p_template->'payload', 'action.reminder.payload') s;
    -- Keys are names, not templates.
    IF EXISTS (SELECT 1 FROM jsonb_path_query(p_template->'payload', '$.**') j
                WHERE jsonb_typeof(j) = 'object'
                  AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
      PERFORM nudge.reject('action.reminder.payload', 'keys cannot hold {{ or }}');
    END IF;
  END IF;
  -- Before a time the event gives ("1 day before the interview"), never before the event.
  IF (p_template->>'delay_seconds')::bigint < 0 AND NOT p_template ? 'run_at' THEN
    PERFORM nudge.reject('action.reminder.delay_seconds',
                         'must be 0 or more (it counts from the event; with run_at, from that time, before it too)');
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
  -- Said as REST's create says it (the sample create would state the range of a NULL).
  IF p_template->>'schedule_type' = 'recurring'
     AND NOT p_template ?| ARRAY['interval_seconds', 'interval_minutes'] THEN
    PERFORM nudge.reject('action.reminder.interval_seconds',
                         'is required for recurring (or interval_minutes)');
  END IF;

  -- Rendered for a sample event and created as a create would be, then rolled back: the
  -- template is checked like a create. Data placeholders stand for sample values; a target
  -- that is only data stands for an address that suits the channel.
  v_sample := ROW(0, p_event_type, 'sample', 'sample', '{}'::jsonb, NULL, now(), now(), NULL, 0,
                  '[]'::jsonb, NULL)::nudge.events;
  v_item := nudge.reminder_item(
              nudge.sample_template(p_template)
              || CASE WHEN p_template->>'run_at' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                      THEN jsonb_build_object('run_at', nudge.rfc3339_in_zone(now(), 'UTC'))
                      ELSE '{}'::jsonb END,
              v_sample);
  BEGIN
    -- Its end, were it created ended, is no event (nudge.emit_reminder_event); undone with it.
    PERFORM set_config('nudge.checking_rule', 'on', true);
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

COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder (in the payload, named by its place: action.reminder.payload.a[1]), a {{secret.NAME}} anywhere but alone in target, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, a run_at or ends_at that is neither an RFC 3339 time with an offset nor one data placeholder alone, a negative delay_seconds without run_at, or anything a create would refuse for a sample event; otherwise does nothing.';

CREATE OR REPLACE FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_fields  jsonb := p_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request';
  v_item    jsonb := nudge.with_webhook_target(nudge.render_template(v_fields, p_event, false),
                                           p_template, p_event);
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
  -- From the time the event gives (run_at, delay_seconds before or after it), else from when
  -- the event occurred.
  IF p_template ? 'run_at' THEN
    IF nudge.item_value_problem('run_at', v_item->'run_at') IS NOT NULL THEN
      PERFORM nudge.reject('run_at', nudge.item_value_problem('run_at', v_item->'run_at'));
    END IF;
    v_run_at := (v_item->>'run_at')::timestamptz
                + interval '1 second' * coalesce((p_template->>'delay_seconds')::integer, 0);
  ELSE
    v_run_at := p_event.occurred_at + interval '1 second' *
      CASE WHEN v_item->>'schedule_type' = 'recurring'
           THEN coalesce((p_template->>'delay_seconds')::integer,
                         (v_item->>'interval_seconds')::integer, 0)
           ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  END IF;
  -- Name what put the first fire so late.
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_template ? 'run_at' THEN 'run_at'
                              WHEN p_template ? 'delay_seconds' THEN 'delay_seconds'
                              ELSE 'interval_seconds' END,
                         CASE WHEN p_template ? 'run_at'
                              THEN 'is after 9999-12-31T23:59:59Z, or delay_seconds puts the first fire after it'
                              ELSE format('puts the first fire after 9999-12-31T23:59:59Z (the event occurred at %s)',
                                          to_char(p_event.occurred_at AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END);
  END IF;
  -- Nor before the first time Nudge keeps (a run_at early in year 1, less a delay).
  IF nudge.time_problem(v_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(v_run_at));
  END IF;
  RETURN v_item || jsonb_build_object('run_at', v_run_at);
END $$;

COMMENT ON FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) IS 'The create item a remind template gives for an event: every string rendered (a webhook target''s values amid other text percent-encoded, nudge.with_webhook_target; the request copied as it is), the entity defaulting to the event''s, run_at delay_seconds after the template''s own run_at (an RFC 3339 time, or the event''s data giving one; delay_seconds may be negative) or else after the event occurred (recurring: by default one interval); NU422 when the event lacks a value or that first fire would be after 9999-12-31T23:59:59Z (naming delay_seconds, or the interval it defaulted to).';

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
  IF p_template ?| ARRAY['request', 'cron', 'timezone', 'run_at'] THEN
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

COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true (one set true by a transaction still open is waited for: nudge.lock_stop_flags) and its identity is not live, and the template has no cron, timezone, request or run_at; otherwise writes nothing and returns a row of NULLs.';

CREATE OR REPLACE FUNCTION nudge.compile_rule(p_rule nudge.rules) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_template jsonb := p_rule.action->'reminder';
  v_fields   jsonb;
  v_seconds  bigint;
  v_out      jsonb;
BEGIN
  v_out := jsonb_build_object('when', coalesce(
    (SELECT string_agg(format('coalesce(%s = %L::jsonb, false)', nudge.placeholder_sql(k), v::text),
                       ' AND ' ORDER BY k)
       FROM jsonb_each(p_rule."when") AS x(k, v)), 'true'));
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      -- The first fire's distance from the event: fixed, as numbers hold no placeholders.
      v_seconds := CASE WHEN v_template->>'schedule_type' = 'recurring'
                        THEN coalesce((v_template->>'delay_seconds')::bigint,
                                      (v_template->>'interval_seconds')::bigint,
                                      (v_template->>'interval_minutes')::bigint * 60, 0)
                        ELSE coalesce((v_template->>'delay_seconds')::bigint, 0) END;
      v_fields := v_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request'
                  || CASE WHEN v_template ? 'interval_minutes'
                          THEN jsonb_build_object('interval_seconds',
                                 (v_template->>'interval_minutes')::integer * 60)
                          ELSE '{}'::jsonb END;
      RETURN v_out || jsonb_build_object(
        -- A webhook target's values amid its text are URI components (nudge.with_webhook_target).
        'columns', (SELECT coalesce(jsonb_object_agg(f.k, nudge.compile_template(
                             f.v, false,
                             f.k = 'target' AND v_template->>'channel' = 'webhook'
                             AND f.v #>> '{}' !~ '^\s*\{\{[^{}]*\}\}\s*$')), '{}')
                      FROM jsonb_each(v_fields) AS f(k, v)),
        -- The request is copied as it is: its placeholders are the reminder's.
        'request', v_template->'request',
        'payload', CASE WHEN v_template ? 'payload'
                        THEN nudge.compile_template(v_template->'payload', true) END,
        -- From the template's own run_at: NULL where the event gives no RFC 3339 time, which
        -- the staged create refuses, and the events are then taken one by one to name it.
        'run_at', CASE WHEN v_template ? 'run_at'
                       THEN format('(SELECT CASE WHEN nudge.is_rfc3339(t.v) THEN t.v::timestamptz END'
                                   ' FROM (SELECT (%s) #>> ''{}'' AS v) t) + interval ''1 second'' * %s',
                                   nudge.compile_template(v_template->'run_at', false),
                                   coalesce((v_template->>'delay_seconds')::bigint, 0))
                       ELSE format('e.occurred_at + interval ''1 second'' * %s', v_seconds) END);
    WHEN 'set_flag' THEN
      RETURN v_out || jsonb_build_object(
        'key', nudge.compile_template(p_rule.action->'flag'->'key', false));
    ELSE
      RETURN v_out || jsonb_build_object(
        'event_type', nudge.compile_template(p_rule.action->'cancel'->'event_type', false),
        'entity_type', nudge.compile_template(coalesce(p_rule.action->'cancel'->'entity_type',
                                                        '"{{entity_type}}"'), false),
        'entity_id', nudge.compile_template(coalesce(p_rule.action->'cancel'->'entity_id',
                                                      '"{{entity_id}}"'), false));
  END CASE;
END $_$;

COMMENT ON FUNCTION nudge.compile_rule(p_rule nudge.rules) IS 'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind columns (each field of the template as a jsonb expression, a webhook target''s values amid its text as URI components), request (as it is), payload and run_at (NULL where the template''s own run_at gets no RFC 3339 time from the event); for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';
