-- 0090: a batch of events keeps data in a webhook target's slot too. 0086 encoded the values
-- amid a rule's webhook target for one event at a time, but a batch (POST /v1/events/batch)
-- renders a rule's template set-wise from its compiled form (nudge.compile_rule), which still
-- wrote them as text: "../../admin" in a batch still moved the request. compile_template takes
-- p_url (DROP + CREATE) and compile_rule uses it for such a target; saved rules are compiled
-- again.

DROP FUNCTION nudge.compile_template(jsonb, boolean);

CREATE FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rest  text := p_template::text;
  v_parts text[] := '{}';
  v_open  integer;
  v_close integer;
  v_value text;
BEGIN
  -- The same scan as nudge.render_placeholders, run once: saved templates are well formed.
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    v_value := nudge.placeholder_sql(btrim(substr(v_rest, v_open + 2, v_close - 1)));
    IF p_typed AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
       AND substr(v_rest, v_open + v_close + 3, 1) = '"'
       AND (v_open = 2 OR substr(v_rest, v_open - 2, 1) <> '\') THEN
      -- "{{x}}": the quotes go, the value stays whatever JSON it is.
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 2))
                         || format('(%s)::text', v_value);
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSIF p_url THEN
      -- One URI component, as nudge.with_webhook_target renders it (its %XX are JSON-safe).
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 1))
                         || format('nudge.uri_component_encoded(CASE WHEN jsonb_typeof(%1$s) '
                                   '<> ''null'' THEN coalesce((%1$s) #>> ''{}'', (%1$s)::text) END)',
                                   v_value);
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSE
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 1))
                         || format('nudge.json_text(%s)', v_value);
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
  END LOOP;
  RETURN format('(%s)::jsonb', array_to_string(v_parts || quote_literal(v_rest), ' || '));
END $$;

COMMENT ON FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean) IS 'The SQL expression (over a batch row e) that renders a JSON template as nudge.render_template would (with p_url each value amid the text percent-encoded as one URI component, as nudge.with_webhook_target renders a webhook target), NULL where the event lacks a value.';

CREATE OR REPLACE FUNCTION nudge.compile_rule(p_rule nudge.rules) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
        'run_at', format('e.occurred_at + interval ''1 second'' * %s', v_seconds));
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
END $$;

COMMENT ON FUNCTION nudge.compile_rule(p_rule nudge.rules) IS 'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind columns (each field of the template as a jsonb expression, a webhook target''s values amid its text as URI components), request (as it is), payload and run_at; for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';

-- Compiled again (the trigger compiles a rule as it is saved).
UPDATE nudge.rules SET action = action
 WHERE action->'reminder'->>'channel' = 'webhook' AND action->'reminder'->>'target' LIKE '%{{%';
