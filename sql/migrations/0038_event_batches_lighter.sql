-- 0038: a batch of events renders its templates without regular expressions and is answered as
-- text written once, instead of a jsonb tree built twice.
--
-- 1. The set-based path of nudge.emit_events built its answer with jsonb_build_object per event and
-- to_jsonb(array_agg(...)) over them: each copies every effect (a reminder's whole JSON among
-- them) token by token, and the API then printed the result as text. A batch of 1,000 events with
-- bench.sh's two rules spent about 40% of its instructions building and copying jsonb. The work
-- moves to nudge.record_events, which answers the same text jsonb would print (its key order and
-- spacing: md5 of the answers identical), and the API calls it; nudge.emit_events stays the SQL
-- entry point and answers jsonb as before.
--
-- 2. A rule's templates were compiled to nested replace() calls over the template's text, and for
-- a payload a regexp_replace() per placeholder (a string that is one placeholder takes the value's
-- JSON type): per event, about 60k instructions for one placeholder of a payload. The template is
-- known when the rule is saved, so it is now cut there, once, into literal pieces and values
-- joined with ||. A value that itself holds "{{...}}" is no longer rendered a second time by a
-- later replace(), as the single event's renderer (nudge.render_placeholders) never did.

CREATE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rule    nudge.rules;
  v_items   jsonb;
  v_ords    integer[];
  v_keys    text[];
  v_missing boolean;
  v_out     text;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Keyed: without statistics the planner would join these row by row against each other.
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_event (
    ord integer PRIMARY KEY, id bigint, event_type text, entity_type text, entity_id text,
    data jsonb, occurred_at timestamptz) ON COMMIT DELETE ROWS;
  -- i: the effect's place among its rule's items (the item index of nudge.create_reminders).
  CREATE TEMP TABLE IF NOT EXISTS nudge_batch_effect (
    rule_id bigint, ord integer, i integer, item jsonb, effect jsonb,
    PRIMARY KEY (rule_id, i)) ON COMMIT DELETE ROWS;
  DELETE FROM pg_temp.nudge_batch_event;
  DELETE FROM pg_temp.nudge_batch_effect;
  -- Each rule runs once over all its events, in rule order, so each event sees its own rules in
  -- the order one event would. Anything out of the ordinary takes the item-by-item path, which
  -- gives the exact error or the same answer: a bad item, a key (its first answer is replayed),
  -- two events of one entity (their order matters), a value an event lacks.
  BEGIN
    INSERT INTO pg_temp.nudge_batch_event
    SELECT (x.ord - 1)::integer, nextval('nudge.events_id_seq'), x.v->>'event_type',
           x.v->>'entity_type', x.v->>'entity_id', coalesce(x.v->'data', '{}'::jsonb),
           coalesce((x.v->>'occurred_at')::timestamptz, now())
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(v, ord)
     WHERE NOT x.v ? 'key';
    IF (SELECT count(*) FROM pg_temp.nudge_batch_event) <> jsonb_array_length(p_items)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   WHERE length(e.event_type) NOT BETWEEN 1 AND 200 OR e.event_type LIKE 'nudge.%'
                      OR length(e.entity_type) NOT BETWEEN 1 AND 200
                      OR length(e.entity_id) NOT BETWEEN 1 AND 200 OR e.event_type IS NULL
                      OR e.entity_type IS NULL OR e.entity_id IS NULL
                      OR jsonb_typeof(e.data) <> 'object' OR pg_column_size(e.data) > 65536)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1) THEN
      RAISE EXCEPTION USING ERRCODE = 'NU000';
    END IF;
    PERFORM set_config('nudge.event_depth', '1', true);
    FOR v_rule IN SELECT * FROM nudge.rules r
                   WHERE r.enabled
                     AND r.event_type IN (SELECT DISTINCT e.event_type FROM pg_temp.nudge_batch_event e)
                   ORDER BY r.id LOOP
      CASE v_rule.action->>'type'
        WHEN 'remind' THEN
          -- The rule's items in event order, and whether the events fill them, in one pass; each
          -- effect row is written once, with the reminder create_reminders answers.
          EXECUTE format(
            'SELECT to_jsonb(array_agg(
                      jsonb_build_object(''entity_type'', x.entity_type, ''entity_id'', x.entity_id)
                      || x.fields
                      || jsonb_build_object(''payload'', coalesce(x.payload, ''{}''),
                                            ''run_at'', x.run_at, ''rule_id'', %s,
                                            ''event_id'', x.id) ORDER BY x.ord)),
                    array_agg(x.ord ORDER BY x.ord),
                    bool_or(x.fields IS NULL OR (%L AND x.payload IS NULL))
               FROM (SELECT e.ord, e.id, e.entity_type, e.entity_id, %s AS fields,
                            %s::jsonb AS payload, %s AS run_at
                       FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s
                     OFFSET 0) x',  -- OFFSET 0: each template is rendered once, not once per use
            v_rule.id, v_rule.action->'reminder' ? 'payload', v_rule.compiled->>'fields',
            coalesce(v_rule.compiled->>'payload', 'NULL'), v_rule.compiled->>'run_at',
            v_rule.event_type, v_rule.compiled->>'when')
            INTO v_items, v_ords, v_missing;
          IF v_missing THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          IF v_items IS NOT NULL THEN
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, v_ords[c.item + 1], c.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', c.reminder, 'created', c.created)
              FROM nudge.create_reminders(v_items) c;
          END IF;
        WHEN 'set_flag' THEN
          EXECUTE format(
            'SELECT array_agg(e.ord ORDER BY e.ord), array_agg((%s) #>> ''{}'' ORDER BY e.ord)
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.compiled->>'key', v_rule.event_type, v_rule.compiled->>'when')
            INTO v_ords, v_keys;
          IF EXISTS (SELECT 1 FROM unnest(v_keys) AS k(key)
                      WHERE coalesce(length(k.key), 0) NOT BETWEEN 1 AND 200) THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          -- One row per key: every event that sets a key sets it to the rule's one value.
          WITH set AS (
            INSERT INTO nudge.status_flags AS sf (key, value)
            SELECT DISTINCT k.key, (v_rule.action->'flag'->>'value')::boolean
              FROM unnest(v_keys) AS k(key)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
            RETURNING sf.*)
          INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
          SELECT v_rule.id, o.ord, o.ord,
                 jsonb_build_object('rule_id', v_rule.id, 'type', 'set_flag', 'flag', to_jsonb(s))
            FROM unnest(v_ords, v_keys) AS o(ord, key) JOIN set s ON s.key = o.key;
        ELSE
          EXECUTE format(
            'INSERT INTO pg_temp.nudge_batch_effect (ord, i, rule_id, item)
             SELECT e.ord, e.ord, %s, jsonb_build_object(''event_type'', (%s) #>> ''{}'',
                                                  ''entity_type'', (%s) #>> ''{}'',
                                                  ''entity_id'', (%s) #>> ''{}'')
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.id, v_rule.compiled->>'event_type', v_rule.compiled->>'entity_type',
            v_rule.compiled->>'entity_id', v_rule.event_type, v_rule.compiled->>'when');
          UPDATE pg_temp.nudge_batch_effect f
             SET effect = jsonb_build_object('rule_id', v_rule.id, 'type', 'cancel',
                                             'cancelled', to_jsonb(coalesce(c.ids, '{}')))
            FROM (SELECT f2.ord, array_agg((nudge.cancel_reminder(r.id)).id ORDER BY r.id) AS ids
                    FROM pg_temp.nudge_batch_effect f2
                    LEFT JOIN nudge.reminders r
                      ON r.entity_type = f2.item->>'entity_type' AND r.entity_id = f2.item->>'entity_id'
                     AND r.event_type = f2.item->>'event_type' AND r.status IN ('ACTIVE', 'PAUSED')
                   WHERE f2.rule_id = v_rule.id
                   GROUP BY f2.ord) c
           WHERE f.rule_id = v_rule.id AND f.ord = c.ord;
      END CASE;
    END LOOP;
    PERFORM set_config('nudge.event_depth', '', true);

    -- to_jsonb(array_agg(...)), not jsonb_agg: jsonb_agg takes each value apart token by token
    -- (about 15% slower for a batch's effects). The answer is written as text, in jsonb's own
    -- order and spacing: building it as jsonb copied every effect twice more, token by token.
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY f.rule_id)) AS effects
        FROM pg_temp.nudge_batch_effect f GROUP BY f.ord
    ), recorded AS (
      INSERT INTO nudge.events AS ev OVERRIDING SYSTEM VALUE
      SELECT e.id, e.event_type, e.entity_type, e.entity_id, e.data, NULL, e.occurred_at, now(),
             NULL, 0, coalesce(x.effects, '[]'), NULL
        FROM pg_temp.nudge_batch_event e LEFT JOIN effects x ON x.ord = e.ord ORDER BY e.ord
      RETURNING ev.*)
    SELECT '[' || coalesce(string_agg(
             '{"event": ' || nudge.event_json(r)::text || ', "created": true, "effects": '
             || r.effects::text || '}', ', ' ORDER BY e.ord), '') || ']'
      INTO v_out
      FROM recorded r JOIN pg_temp.nudge_batch_event e ON e.id = r.id;
    RETURN v_out;
  EXCEPTION WHEN SQLSTATE 'NU000' OR SQLSTATE 'NU422' OR data_exception
                 OR integrity_constraint_violation THEN
    NULL;  -- rolled back to the block's start: the item-by-item path answers
  END;
  RETURN nudge.emit_events_one_by_one(p_items)::text;
END $$;
COMMENT ON FUNCTION nudge.record_events(jsonb) IS
  'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>].<field>: <problem>" or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';

CREATE OR REPLACE FUNCTION nudge.emit_events(p_items jsonb) RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT nudge.record_events(p_items)::jsonb
$$;

CREATE OR REPLACE FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean) RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
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
    ELSE
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open - 1))
                         || format('nudge.json_text(%s)', v_value);
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
  END LOOP;
  RETURN format('(%s)::jsonb', array_to_string(v_parts || quote_literal(v_rest), ' || '));
END $$;

-- The rules saved before: compiled again, without touching updated_at, the change log or the
-- audit (nothing a user changed).
ALTER TABLE nudge.rules DISABLE TRIGGER USER;
UPDATE nudge.rules r SET compiled = nudge.compile_rule(r);
ALTER TABLE nudge.rules ENABLE TRIGGER USER;
