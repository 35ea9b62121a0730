-- 0162: a rule saved is tried on the newest event of its type, and its answer warns when that
-- event could not have run it (explore31b: a PATCH reading {{data.nothere}} saved fine, then
-- refused every event of its type, 1,060 in 1.5 s, until it was fixed). A warning, not a
-- refusal: events of one type need not all carry the same data.

CREATE FUNCTION nudge.rule_warning(r nudge.rules) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_event   nudge.events;
  v_saved   text[] := ARRAY[current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_state   text;
  v_message text;
  v_set     text;
BEGIN
  SELECT e.* INTO v_event FROM nudge.events e
   WHERE e.event_type = r.event_type AND e.refused IS NULL
   ORDER BY e.id DESC LIMIT 1;
  IF NOT r.enabled OR v_event.id IS NULL
     OR (r."when" <> '{}'::jsonb AND NOT nudge.rule_matches(r."when", v_event)) THEN
    RETURN NULL;
  END IF;
  BEGIN
    -- Rendered as the event's run would render it, writing nothing.
    v_set := set_config('nudge.rule_id', r.id::text, true);
    CASE r.action->>'type'
      WHEN 'remind' THEN
        v_set := set_config('nudge.rule_path', 'action.reminder.', true);
        PERFORM nudge.reminder_item(r.action->'reminder', v_event);
      WHEN 'set_flag' THEN
        PERFORM nudge.render_text(r.action->'flag'->>'key', v_event, 'action.flag.key');
      ELSE
        PERFORM nudge.render_text(r.action->'cancel'->>f, v_event, 'action.cancel.' || f)
           FROM unnest(ARRAY['event_type', 'entity_type', 'entity_id']) f
          WHERE r.action->'cancel' ? f;
    END CASE;
  EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    v_message := format('the newest %s event (#%s) could not have run it: %s', r.event_type,
                        v_event.id, v_message);
  END;
  v_set := set_config('nudge.rule_id', coalesce(v_saved[1], ''), true)
           || set_config('nudge.rule_path', coalesce(v_saved[2], ''), true);
  RETURN v_message;
END $$;

COMMENT ON FUNCTION nudge.rule_warning(r nudge.rules) IS 'Why the newest event of an enabled rule''s type (one recorded, not refused, that its when matches) could not have run the rule as it now is (a value its templates read that the event lacks, a time that is none), as "the newest <type> event (#<id>) could not have run it: <error>"; NULL when it could, or there is no such event; writes nothing.';
