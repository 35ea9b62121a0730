-- 0080: a rule on Nudge's own events is checked against the data those events have. Any data
-- path was taken when the rule was saved; a path they never have ("{{data.reason}}" on
-- nudge.reminder_failed, which has data.reminder and data.last_error) then failed at every
-- event, recorded only in that event's effects: the escalation it was for never happened.
-- Now it is a 22023 naming the field when the rule is saved (a 400 over REST).

CREATE FUNCTION nudge.own_event_path_problem(p_event_type text, p_path text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE
           WHEN p_event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed')
                OR s[1] IS DISTINCT FROM 'data' THEN NULL
           WHEN s[2] = 'reminder'
                AND (cardinality(s) = 2
                     OR (s[3] IN ('id', 'payload', 'schedule_text', 'entity_type', 'entity_id', 'event_type', 'channel', 'target', 'schedule_type', 'interval_seconds', 'cron', 'timezone', 'misfire_policy', 'max_attempts', 'next_run_at', 'retrying_occurrence', 'attempts', 'stop_condition_type', 'stop_condition_value', 'max_fires', 'ends_at', 'fire_count', 'status', 'completed_reason', 'last_error', 'rule_id', 'event_id', 'created_at', 'updated_at', 'finished_at', 'request')
                         AND (cardinality(s) = 3 OR s[3] IN ('payload', 'request')))) THEN NULL
           WHEN cardinality(s) = 2
                AND s[2] = CASE p_event_type WHEN 'nudge.reminder_completed' THEN 'reason'
                                             ELSE 'last_error' END THEN NULL
           ELSE format('%s events have no %s: their data holds %s', p_event_type, p_path,
                       CASE p_event_type
                         WHEN 'nudge.reminder_completed'
                         THEN 'reason and reminder (the reminder''s JSON, as GET /v1/reminders/{id} answers it)'
                         ELSE 'reminder (the reminder''s JSON, as GET /v1/reminders/{id} answers it) and last_error'
                       END)
         END
    FROM (SELECT pg_catalog.string_to_array(p_path, '.') AS s) x
$$;

COMMENT ON FUNCTION nudge.own_event_path_problem(p_event_type text, p_path text) IS 'Why an event of type p_event_type, one of Nudge''s own (nudge.reminder_completed: data.reason and data.reminder; nudge.reminder_failed: data.reminder and data.last_error; data.reminder being a reminder''s JSON, any path within its payload and request), can never have the value at p_path (data.<path>); NULL when it can, and for any other event type or path.';

CREATE FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    WITH RECURSIVE node(field, value) AS (
      SELECT 'action', p_rule.action
      UNION ALL
      SELECT n.field || CASE WHEN jsonb_typeof(n.value) = 'object' THEN '.' || c.key
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
       WHERE n.field <> 'action.reminder.request'
    )
    SELECT 'when.' || w.key, w.key FROM jsonb_each(p_rule."when") w
    UNION ALL
    SELECT n.field, m[1]
      FROM node n, regexp_matches(n.value #>> '{}', '\{\{\s*([^{}]*?)\s*\}\}', 'g') m
     WHERE jsonb_typeof(n.value) = 'string'
  LOOP
    v_problem := nudge.own_event_path_problem(p_rule.event_type, v_path);
    IF v_problem IS NOT NULL THEN
      PERFORM nudge.reject(v_field, v_problem);
    END IF;
  END LOOP;
END $_$;

COMMENT ON FUNCTION nudge.check_own_event_paths(p_rule nudge.rules) IS 'Raises 22023 naming the field (when.<path>, action.<path>) when a rule on one of Nudge''s own events reads a data path those events never have (nudge.own_event_path_problem), in a condition or a placeholder of its action (a template''s request aside); otherwise does nothing.';

CREATE OR REPLACE FUNCTION nudge.check_rule(p_rule nudge.rules) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_type  text := p_rule.action->>'type';
  v_key   text;
  v_value jsonb;
BEGIN
  IF p_rule.name IS NULL OR length(p_rule.name) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_rule.name) THEN
    PERFORM nudge.reject('name', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_rule.event_type IS NULL OR length(p_rule.event_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_rule.event_type) THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  -- Nobody can post a nudge.* event: a rule on one Nudge does not emit could never run.
  IF p_rule.event_type LIKE 'nudge.%'
     AND p_rule.event_type NOT IN ('nudge.reminder_completed', 'nudge.reminder_failed') THEN
    PERFORM nudge.reject('event_type', format(
      '%s is not an event Nudge emits: of Nudge''s own, there are nudge.reminder_completed and '
      'nudge.reminder_failed (and events posted cannot start with "nudge.")', p_rule.event_type));
  END IF;
  IF jsonb_typeof(p_rule."when") IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('when', 'must be a JSON object of conditions');
  END IF;
  FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule."when") AS x(k, v) ORDER BY k LOOP
    IF nudge.placeholder_problem(v_key) IS NOT NULL THEN
      PERFORM nudge.reject('when.' || v_key,
        'is not an event field (entity_type, entity_id, event_type, event_id, data.<path>)');
    END IF;
    IF jsonb_typeof(v_value) IN ('object', 'array') THEN
      PERFORM nudge.reject('when.' || v_key, 'must be a string, number, boolean or null');
    END IF;
  END LOOP;
  IF jsonb_typeof(p_rule.action) IS DISTINCT FROM 'object' THEN
    PERFORM nudge.reject('action', 'must be a JSON object');
  END IF;
  IF v_type IS NULL OR v_type NOT IN ('remind', 'set_flag', 'cancel') THEN
    PERFORM nudge.reject('action.type', 'must be one of remind, set_flag, cancel');
  END IF;
  -- {"type": "remind", "reminder": {...}}, {"type": "set_flag", "flag": {...}},
  -- {"type": "cancel", "cancel": {...}}
  PERFORM nudge.check_keys(p_rule.action,
    ARRAY['type', CASE v_type WHEN 'remind' THEN 'reminder' WHEN 'set_flag' THEN 'flag'
                              ELSE 'cancel' END], 'action.');
  CASE v_type
    WHEN 'remind' THEN
      PERFORM nudge.check_remind_template(p_rule.action->'reminder', p_rule.event_type);
    WHEN 'set_flag' THEN
      IF jsonb_typeof(p_rule.action->'flag') IS DISTINCT FROM 'object' THEN
        PERFORM nudge.reject('action.flag', 'must be a JSON object: {"key": ..., "value": true}');
      END IF;
      PERFORM nudge.check_keys(p_rule.action->'flag', ARRAY['key', 'value'], 'action.flag.');
      IF jsonb_typeof(p_rule.action->'flag'->'key') IS DISTINCT FROM 'string'
         OR length(p_rule.action->'flag'->>'key') NOT BETWEEN 1 AND 200
         OR nudge.is_blank(p_rule.action->'flag'->>'key') THEN
        PERFORM nudge.reject('action.flag.key',
                             'must be a flag key of 1 to 200 characters, not only white space');
      END IF;
      PERFORM nudge.check_placeholders(p_rule.action->'flag'->>'key', 'action.flag.key');
      IF jsonb_typeof(p_rule.action->'flag'->'value') IS DISTINCT FROM 'boolean' THEN
        PERFORM nudge.reject('action.flag.value', 'must be true or false');
      END IF;
    ELSE
      IF jsonb_typeof(p_rule.action->'cancel') IS DISTINCT FROM 'object' THEN
        PERFORM nudge.reject('action.cancel', 'must be a JSON object: {"event_type": ...}');
      END IF;
      PERFORM nudge.check_keys(p_rule.action->'cancel',
                               ARRAY['event_type', 'entity_type', 'entity_id'], 'action.cancel.');
      IF jsonb_typeof(p_rule.action->'cancel'->'event_type') IS DISTINCT FROM 'string' THEN
        PERFORM nudge.reject('action.cancel.event_type', 'is required: the event_type of the '
                             'reminders to cancel');
      END IF;
      FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule.action->'cancel') AS x(k, v) LOOP
        IF jsonb_typeof(v_value) IS DISTINCT FROM 'string'
           OR length(v_value #>> '{}') NOT BETWEEN 1 AND 200 THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be 1 to 200 characters');
        END IF;
        PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.cancel.' || v_key);
      END LOOP;
  END CASE;
  PERFORM nudge.check_own_event_paths(p_rule);
END $$;

COMMENT ON FUNCTION nudge.check_rule(p_rule nudge.rules) IS 'Raises 22023 naming the field (name, event_type, when.<path>, action.<path>) when a rule cannot be saved: a name, event_type or flag key empty, over 200 characters or only white space, an event_type starting with nudge. other than nudge.reminder_completed and nudge.reminder_failed (the only ones Nudge emits), an unknown field or placeholder, a wrong type, or a template a create would refuse, or, on Nudge''s own events, a data path they never have; otherwise does nothing.';
