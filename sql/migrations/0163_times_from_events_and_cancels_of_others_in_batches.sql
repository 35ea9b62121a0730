-- 0163: what trying to break 0157 and 0161 found (explore31d).
-- F2: a batch whose items cancel another entity's reminders runs item by item: rule by rule,
-- every cancel ran first, so an item's cancel missed the reminder an earlier item made (one by
-- one, or with a key on any item, it was cancelled). F1: a time from an event's data that is
-- well formed but does not exist (2031-02-30, an offset of +16:00) is refused naming the rule
-- and action.reminder.run_at or ends_at, not with PostgreSQL's bare message. F3: a batch's
-- run_at before year 1 (run_at from data less a delay) was created in year 1 AD; it is now
-- refused as one event's is. Rules with a run_at are compiled again.

CREATE FUNCTION nudge.check_template_time(p_text text, p_field text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at timestamptz;
BEGIN
  v_at := p_text::timestamptz;
EXCEPTION WHEN data_exception THEN
  PERFORM nudge.reject(p_field, 'must be an RFC 3339 time that exists, with an offset within '
                                '±15:59, e.g. 2026-01-31T09:00:00Z');
END $$;

COMMENT ON FUNCTION nudge.check_template_time(p_text text, p_field text) IS 'Raises as nudge.reject does, naming p_field, when p_text (an RFC 3339 time a rule rendered from an event) is not a time PostgreSQL can read (a date that does not exist, an offset past 15:59); otherwise does nothing.';

CREATE FUNCTION nudge.template_time(p_text text, p_delay_seconds bigint) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at timestamptz;
BEGIN
  IF NOT coalesce(nudge.is_rfc3339(p_text), false) THEN
    RAISE EXCEPTION 'not an RFC 3339 time' USING ERRCODE = '22007';
  END IF;
  v_at := p_text::timestamptz + interval '1 second' * p_delay_seconds;
  IF nudge.time_problem(v_at) IS NOT NULL OR v_at > nudge.latest_fire() THEN
    RAISE EXCEPTION 'out of range' USING ERRCODE = '22008';
  END IF;
  RETURN v_at;
END $$;

COMMENT ON FUNCTION nudge.template_time(p_text text, p_delay_seconds bigint) IS 'The first fire p_delay_seconds after p_text, a rule''s run_at rendered from an event, for a set-wise batch; a data exception (22007, 22008) when p_text is not an RFC 3339 time with an offset or the fire falls outside the times Nudge keeps, so that the batch names the item one by one.';

CREATE OR REPLACE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_rule     nudge.rules;
  v_items    jsonb;
  v_ords     integer[];
  v_count    bigint;
  v_missing  boolean;
  v_rendered text;     -- a remind rule's templated fields, rendered as jsonb
  v_unfilled text;     -- whether one of them lacks a value
  v_values   text;     -- every field of the staging table, from them
  v_keys     text[];
  v_out      text;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Made once per session; asked first, as CREATE ... IF NOT EXISTS tells the client each time
  -- (a NOTICE) that it exists. Keyed: without statistics the planner would join these row by
  -- row against each other.
  IF to_regclass('pg_temp.nudge_batch_event') IS NULL THEN
    CREATE TEMP TABLE nudge_batch_event (
      ord integer PRIMARY KEY, id bigint, event_type text, entity_type text, entity_id text,
      data jsonb, occurred_at timestamptz) ON COMMIT DELETE ROWS;
  END IF;
  -- i: the effect's place among its rule's items (the item index of nudge.create_reminders).
  IF to_regclass('pg_temp.nudge_batch_effect') IS NULL THEN
    CREATE TEMP TABLE nudge_batch_effect (
      rule_id bigint, ord integer, i integer, item jsonb, effect jsonb,
      PRIMARY KEY (rule_id, i)) ON COMMIT DELETE ROWS;
  END IF;
  DELETE FROM pg_temp.nudge_batch_event;
  DELETE FROM pg_temp.nudge_batch_effect;
  -- Each rule runs once over all its events, in rule order, so each event sees its own rules in
  -- the order one event would. Anything out of the ordinary takes the item-by-item path, which
  -- gives the exact error or the same answer: a bad item, a key (its first answer is replayed),
  -- two events of one entity (their order matters), a value an event lacks.
  BEGIN
    INSERT INTO pg_temp.nudge_batch_event
    SELECT (x.ord - 1)::integer, nextval('nudge.events_id_seq'), x.v->>'event_type',
           x.v->>'entity_type', x.v->>'entity_id', coalesce(nullif(x.v->'data', 'null'::jsonb), '{}'::jsonb),
           coalesce((x.v->>'occurred_at')::timestamptz, now())
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(v, ord)
     -- An unknown key is left out too, and a value REST would not take as it is typed: the
     -- item-by-item path names it.
     WHERE NOT x.v ? 'key' AND x.v - nudge.event_item_fields() = '{}'::jsonb
       AND nudge.item_values_are_plain(x.v);
    IF (SELECT count(*) FROM pg_temp.nudge_batch_event) <> jsonb_array_length(p_items)
       -- every occurred_at as REST writes one, in one match over the batch's
       OR NOT (SELECT nudge.are_rfc3339(array_agg(x.v->>'occurred_at'))
                 FROM jsonb_array_elements(p_items) AS x(v))
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   WHERE length(e.event_type) NOT BETWEEN 1 AND 200 OR e.event_type LIKE 'nudge.%'
                      OR length(e.entity_type) NOT BETWEEN 1 AND 200
                      OR length(e.entity_id) NOT BETWEEN 1 AND 200 OR e.event_type IS NULL
                      OR nudge.is_blank(e.event_type) OR nudge.is_blank(e.entity_type)
                      OR nudge.is_blank(e.entity_id)
                      OR e.entity_type IS NULL OR e.entity_id IS NULL
                      OR nudge.time_problem(e.occurred_at) IS NOT NULL
                      OR jsonb_typeof(e.data) <> 'object' OR pg_column_size(e.data) > 65536)
       OR EXISTS (SELECT 1 FROM pg_temp.nudge_batch_event e
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1)
       -- A cancel of another entity's reminders may end one an earlier item makes: only in
       -- the items' order, one by one (rule by rule, every cancel ran first: explore31d F2).
       OR EXISTS (SELECT 1 FROM nudge.rules r
                   WHERE r.enabled AND r.action->>'type' = 'cancel'
                     AND r.action->'cancel' ?| ARRAY['entity_type', 'entity_id']
                     AND r.event_type IN (SELECT e.event_type FROM pg_temp.nudge_batch_event e)) THEN
      RAISE EXCEPTION USING ERRCODE = 'NU000';
    END IF;
    -- Each item is a chain of its own, as one posted event is: n roots and their caused events
    -- stay within n x 1,000 (nudge.record_event refuses an event whose count passes 1,000).
    PERFORM set_config('nudge.event_depth', '1', true),
            set_config('nudge.chain_events',
                       (jsonb_array_length(p_items) - 1000 * (jsonb_array_length(p_items) - 1))::text,
                       true);
    FOR v_rule IN SELECT * FROM nudge.rules r
                   WHERE r.enabled
                     AND r.event_type IN (SELECT DISTINCT e.event_type FROM pg_temp.nudge_batch_event e)
                   ORDER BY (r.action->>'type') <> 'cancel', r.id LOOP  -- as nudge.record_event
      CASE v_rule.action->>'type'
        WHEN 'remind' THEN
          -- The rule's reminders go straight into the create's staging table, one row per event,
          -- each template rendered once (a MATERIALIZED row); the same statement says whether
          -- the events filled every field. A field the template does not give is NULL (the
          -- entity: the event's), as a create item without it.
          SELECT string_agg(format('%s AS %I', v_rule.compiled->'columns'->>c.name, c.name), ', ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 -- (A time from the event's data must be RFC 3339 with an offset too.)
                 string_agg(CASE c.name WHEN 'ends_at'
                                 THEN 'x.ends_at IS NULL OR NOT nudge.is_rfc3339(x.ends_at #>> ''{}'')'
                                 ELSE format('x.%I IS NULL', c.name) END, ' OR ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(CASE c.name WHEN 'misfire_policy'
                                 THEN format('coalesce(%s, ''fire_once'')', v.value)
                                 ELSE v.value END, ', ' ORDER BY c.ord)
            INTO v_rendered, v_unfilled, v_values
            FROM unnest(ARRAY['entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type',
                              'interval_seconds', 'target', 'stop_condition_type',
                              'stop_condition_value', 'max_fires', 'ends_at', 'cron', 'timezone',
                              'misfire_policy', 'max_attempts'],
                        ARRAY['text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text',
                              'text', 'integer', 'timestamptz', 'text', 'text', 'text', 'integer'])
                 WITH ORDINALITY AS c(name, type, ord)
           CROSS JOIN LATERAL (
                 SELECT CASE WHEN v_rule.compiled->'columns' ? c.name
                             THEN format('(x.%I #>> ''{}'')::%s', c.name, c.type)
                             WHEN c.name IN ('entity_type', 'entity_id')
                             THEN format('x.event_%s', c.name)
                             ELSE format('NULL::%s', c.type) END AS value) v;
          PERFORM nudge.new_reminder_stage();
          EXECUTE format(
            'WITH x AS MATERIALIZED (
               SELECT e.ord, e.id, e.entity_type AS event_entity_type,
                      e.entity_id AS event_entity_id, %s AS run_at, %s::jsonb AS payload%s
                 FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s
             ), staged AS (
               INSERT INTO pg_temp.nudge_new_reminder (
                 entity_type, entity_id, event_type, channel, schedule_type, interval_seconds,
                 target, stop_condition_type, stop_condition_value, max_fires, ends_at, cron,
                 timezone, misfire_policy, max_attempts, item, run_at, payload, rule_id,
                 event_id, request)
               SELECT %s, x.ord, x.run_at, coalesce(x.payload, ''{}''), %s, x.id, %L::jsonb
                 FROM x)
             SELECT count(*), coalesce(bool_or(%s OR (%L AND x.payload IS NULL)), false) FROM x',
            v_rule.compiled->>'run_at', coalesce(v_rule.compiled->>'payload', 'NULL'),
            coalesce(', ' || v_rendered, ''), v_rule.event_type, v_rule.compiled->>'when',
            v_values,
            v_rule.id, nullif(v_rule.compiled->'request', 'null'::jsonb),
            coalesce(v_unfilled, 'false'), v_rule.action->'reminder' ? 'payload')
            INTO v_count, v_missing;
          IF v_missing THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';  -- the item-by-item path names the value
          ELSIF v_count = 0 THEN
            NULL;
          ELSIF nudge.create_staged_reminders() THEN
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, b.item, b.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', nudge.reminder_json(r), 'created', b.created)
              FROM pg_temp.nudge_new_reminder b JOIN nudge.reminders r ON r.id = b.id;
          ELSE
            -- Not plainly new and distinct (a stop flag already true, say): this rule's
            -- reminders are created one by one, as nudge.create_reminders would.
            SELECT array_agg(b.item ORDER BY b.item),
                   jsonb_agg(jsonb_build_object(
                     'entity_type', b.entity_type, 'entity_id', b.entity_id,
                     'event_type', b.event_type, 'channel', b.channel,
                     -- Times as RFC 3339 in UTC, which the items' check takes in any
                     -- session zone (jsonb writes the session's offset, to the second).
                     'schedule_type', b.schedule_type,
                     'run_at', nudge.rfc3339_in_zone(b.run_at, 'UTC'),
                     'interval_seconds', b.interval_seconds, 'target', b.target,
                     'payload', b.payload, 'stop_condition_type', b.stop_condition_type,
                     'stop_condition_value', b.stop_condition_value, 'max_fires', b.max_fires,
                     'ends_at', nudge.rfc3339_in_zone(b.ends_at, 'UTC'), 'cron', b.cron,
                     'timezone', b.timezone,
                     'misfire_policy', b.misfire_policy, 'max_attempts', b.max_attempts,
                     'rule_id', b.rule_id, 'event_id', b.event_id, 'request', b.request)
                     ORDER BY b.item)
              INTO v_ords, v_items
              FROM pg_temp.nudge_new_reminder b;
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, v_ords[c.item + 1], c.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', nudge.reminder_json(c.reminder), 'created', c.created)
              FROM nudge.create_reminders_one_by_one(v_items) c;
          END IF;
        WHEN 'set_flag' THEN
          EXECUTE format(
            'SELECT array_agg(e.ord ORDER BY e.ord), array_agg((%s) #>> ''{}'' ORDER BY e.ord)
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.compiled->>'key', v_rule.event_type, v_rule.compiled->>'when')
            INTO v_ords, v_keys;
          IF EXISTS (SELECT 1 FROM unnest(v_keys) AS k(key)
                      WHERE coalesce(length(k.key), 0) NOT BETWEEN 1 AND 200
                         OR nudge.is_blank(k.key)) THEN
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
            -- As nudge.apply_rule cancels: those still live once locked, in id order.
            FROM (SELECT m.ord, array_agg(m.id ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL) AS ids
                    FROM (SELECT f2.ord, CASE WHEN r.id IS NOT NULL
                                              THEN nudge.cancel_if_live(r.id) END AS id
                            FROM pg_temp.nudge_batch_effect f2
                            LEFT JOIN nudge.reminders r
                              ON r.entity_type = f2.item->>'entity_type'
                             AND r.entity_id = f2.item->>'entity_id'
                             AND r.event_type = f2.item->>'event_type'
                             AND r.status IN ('ACTIVE', 'PAUSED')
                           WHERE f2.rule_id = v_rule.id
                           ORDER BY r.id) m
                   GROUP BY m.ord) c
           WHERE f.rule_id = v_rule.id AND f.ord = c.ord;
      END CASE;
    END LOOP;
    PERFORM set_config('nudge.event_depth', '', true), set_config('nudge.chain_events', '', true);

    -- to_jsonb(array_agg(...)), not jsonb_agg: jsonb_agg takes each value apart token by token
    -- (about 15% slower for a batch's effects). The answer is written as text, in jsonb's own
    -- order and spacing: building it as jsonb copied every effect twice more, token by token.
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY (f.effect->>'type') <> 'cancel', f.rule_id)) AS effects
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

COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules (in nudge.record_event''s order) in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value of the wrong JSON type, an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that its cancel rules cause when each rule runs once over all its events do not name their cause (all others do), and are bounded as n chains of 1,000 events would be (n items), in all.';

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
        -- From the template's own run_at (nudge.template_time: a value that is no time, or
        -- one out of range, fails the set-wise path, and the events are taken one by one to
        -- name it).
        'run_at', CASE WHEN v_template ? 'run_at'
                       THEN format('nudge.template_time((%s) #>> ''{}'', %s)',
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

COMMENT ON FUNCTION nudge.compile_rule(p_rule nudge.rules) IS 'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind columns (each field of the template as a jsonb expression, a webhook target''s values amid its text as URI components), request (as it is), payload and run_at (from the template''s own run_at by nudge.template_time, which raises a data exception where the event gives no time for it); for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';

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
  IF p_template ? 'ends_at' AND v_item ? 'ends_at' THEN
    PERFORM nudge.check_template_time(v_item->>'ends_at', 'ends_at');
  END IF;
  -- From the time the event gives (run_at, delay_seconds before or after it), else from when
  -- the event occurred.
  IF p_template ? 'run_at' THEN
    IF nudge.item_value_problem('run_at', v_item->'run_at') IS NOT NULL THEN
      PERFORM nudge.reject('run_at', nudge.item_value_problem('run_at', v_item->'run_at'));
    END IF;
    PERFORM nudge.check_template_time(v_item->>'run_at', 'run_at');
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

UPDATE nudge.rules r SET compiled = nudge.compile_rule(r) WHERE r.action->'reminder' ? 'run_at';
