-- 0102: one walk of a JSON value's strings by their place. check_own_event_paths (0080) and
-- check_remind_template (0099) each held the same recursive walk; both now read
-- nudge.json_strings. Same behaviour.

CREATE FUNCTION nudge.json_strings(p_value jsonb, p_place text, p_skip text DEFAULT NULL)
    RETURNS TABLE(place text, value text)
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  WITH RECURSIVE node(place, value) AS (
    SELECT p_place, p_value
    UNION ALL
    SELECT n.place || CASE WHEN jsonb_typeof(n.value) = 'object' THEN '.' || c.key
                           ELSE '[' || c.key || ']' END,
           c.value
      FROM node n,
           LATERAL (SELECT o.key, o.value
                      FROM jsonb_each(CASE WHEN jsonb_typeof(n.value) = 'object' THEN n.value END) o
                    UNION ALL
                    SELECT (a.n - 1)::text, a.value
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n.value) = 'array'
                                                     THEN n.value END)
                           WITH ORDINALITY AS a(value, n)) c
     WHERE n.place IS DISTINCT FROM p_skip
  )
  SELECT node.place, node.value #>> '{}' FROM node WHERE jsonb_typeof(node.value) = 'string'
$$;

COMMENT ON FUNCTION nudge.json_strings(p_value jsonb, p_place text, p_skip text) IS 'Returns every string inside p_value with its place, written from p_place as a field is named (p_place.key, p_place[0], p_place.a[1].b), not descending into the place p_skip; returns nothing for a value without strings.';

CREATE OR REPLACE FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_field   text;
  v_path    text;
  v_problem text;
BEGIN
  IF p_rule.event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed') THEN
    RETURN;
  END IF;
  -- Every data path the rule reads: its conditions, and the placeholders of every string of its
  -- action but a template's request (whose placeholders are the reminder's), named by their place.
  FOR v_field, v_path IN
    SELECT 'when.' || w.key, w.key FROM jsonb_each(p_rule."when") w
    UNION ALL
    SELECT s.place, m[1]
      FROM nudge.json_strings(p_rule.action, 'action', 'action.reminder.request') s,
           regexp_matches(s.value, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m
  LOOP
    v_problem := nudge.own_event_path_problem(p_rule.event_type, v_path);
    IF v_problem IS NOT NULL THEN
      PERFORM nudge.reject(v_field, v_problem);
    END IF;
  END LOOP;
END $$;

COMMENT ON FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) IS 'Raises 22023 naming the field (when.<path>, action.<path>) when a rule on one of Nudge''s own events reads a data path those events never have (nudge.own_event_path_problem), in a condition or a placeholder of its action (a template''s request aside); otherwise does nothing.';

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


COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder (in the payload, named by its place: action.reminder.payload.a[1]), a {{secret.NAME}} anywhere but alone in target, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, or anything a create would refuse for a sample event; otherwise does nothing.';
