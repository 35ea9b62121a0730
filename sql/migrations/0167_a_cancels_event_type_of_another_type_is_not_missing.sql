-- 0167: a rule's cancel field that is there but not a string is told it must be one (the API
-- answers invalid_type), not that it is required (explore32a F8: {"event_type": 5} was "is
-- required", missing_field) nor only its length.

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
    -- An event's own fields are each of one type, never null: a condition of another type never
    -- held, and nothing said so (explore26a: {"event_id": "5"}).
    IF v_key IN ('entity_type', 'entity_id', 'event_type') AND jsonb_typeof(v_value) <> 'string' THEN
      PERFORM nudge.reject('when.' || v_key, format('must be a string: an event''s %s is one', v_key));
    ELSIF v_key = 'event_id' AND jsonb_typeof(v_value) <> 'number' THEN
      PERFORM nudge.reject('when.event_id', 'must be a number: an event''s id is one');
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
      IF NOT p_rule.action->'cancel' ? 'event_type' THEN
        PERFORM nudge.reject('action.cancel.event_type', 'is required: the event_type of the '
                             'reminders to cancel');
      END IF;
      FOR v_key, v_value IN SELECT k, v FROM jsonb_each(p_rule.action->'cancel') AS x(k, v) LOOP
        IF jsonb_typeof(v_value) IS DISTINCT FROM 'string' THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be a string of 1 to 200 characters');
        END IF;
        IF length(v_value #>> '{}') NOT BETWEEN 1 AND 200 THEN
          PERFORM nudge.reject('action.cancel.' || v_key, 'must be 1 to 200 characters');
        END IF;
        PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.cancel.' || v_key);
      END LOOP;
  END CASE;
  PERFORM nudge.check_own_event_paths(p_rule);
END $$;

COMMENT ON FUNCTION nudge.check_rule(p_rule nudge.rules) IS 'Raises 22023 naming the field (name, event_type, when.<path>, action.<path>) when a rule cannot be saved: a name, event_type or flag key empty, over 200 characters or only white space, an event_type starting with nudge. other than nudge.reminder_completed and nudge.reminder_failed (the only ones Nudge emits), an unknown field or placeholder, a wrong type, or a template a create would refuse, or, on Nudge''s own events, a data path they never have; otherwise does nothing.';

