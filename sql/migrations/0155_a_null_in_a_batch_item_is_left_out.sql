-- 0155: a JSON null for an item's payload, request or data is the same as leaving it out, as
-- REST and nudge.item_value_problem read it: the items' values were taken whole, so
-- nudge.create_reminders('[{..., "payload": null}]') and nudge.emit_events('[{..., "data": null}]')
-- were refused ("items[0].payload: must be a JSON object") while the same item over REST was taken.

CREATE OR REPLACE FUNCTION nudge.create_reminder_from_item(p_item jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_minutes integer := (p_item->>'interval_minutes')::integer;
BEGIN
  -- As the REST API reads it: times with their offsets (a rule's ends_at filled from an event's
  -- data is checked here), so no session's zone decides what they mean.
  IF NOT coalesce(nudge.is_rfc3339(p_item->>'run_at'), true) THEN
    PERFORM nudge.reject('run_at', 'must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z');
  END IF;
  IF NOT coalesce(nudge.is_rfc3339(p_item->>'ends_at'), true) THEN
    PERFORM nudge.reject('ends_at', 'must be an RFC 3339 time with an offset, e.g. 2026-01-31T09:00:00Z');
  END IF;
  IF v_minutes IS NOT NULL THEN
    IF p_item->>'interval_seconds' IS NOT NULL THEN
      PERFORM nudge.reject('interval_minutes',
                           'give interval_seconds or interval_minutes, not both');
    ELSIF p_item->>'schedule_type' = 'one_time' THEN
      PERFORM nudge.reject('interval_minutes', 'is only for recurring reminders');
    ELSIF p_item->>'schedule_type' = 'cron' THEN
      PERFORM nudge.reject('interval_minutes', 'is not for cron reminders');
    ELSIF v_minutes NOT BETWEEN 1 AND 527040 THEN
      PERFORM nudge.reject('interval_minutes', 'must be 1 to 527040 (366 days)');
    END IF;
  END IF;
  RETURN QUERY
  SELECT c.created, c.reminder
    FROM nudge.create_reminder(
           p_entity_type => p_item->>'entity_type',
           p_entity_id => p_item->>'entity_id',
           p_event_type => p_item->>'event_type',
           p_channel => p_item->>'channel',
           p_schedule_type => p_item->>'schedule_type',
           p_run_at => (p_item->>'run_at')::timestamptz,
           p_interval_seconds => coalesce((p_item->>'interval_seconds')::integer, v_minutes * 60),
           p_target => p_item->>'target',
           p_payload => coalesce(nullif(p_item->'payload', 'null'::jsonb), '{}'::jsonb),
           p_stop_condition_type => p_item->>'stop_condition_type',
           p_stop_condition_value => p_item->>'stop_condition_value',
           p_max_fires => (p_item->>'max_fires')::integer,
           p_ends_at => (p_item->>'ends_at')::timestamptz,
           p_cron => p_item->>'cron',
           p_timezone => p_item->>'timezone',
           p_misfire_policy => p_item->>'misfire_policy',
           p_max_attempts => (p_item->>'max_attempts')::integer,
           p_request => nullif(p_item->'request', 'null'::jsonb)) c;
END $$;

COMMENT ON FUNCTION nudge.create_reminder_from_item(p_item jsonb) IS 'nudge.create_reminder with its arguments taken from a JSON object whose fields are its parameter names without the p_ prefix, or interval_minutes (1 to 527040, recurring only, not with interval_seconds: 22023 naming it otherwise) in place of interval_seconds, and run_at and ends_at as RFC 3339 text with an offset (22023 naming the field otherwise); the same answer and errors. Other keys are not looked at.';

CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_plain boolean;
  v_rows  bigint;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  PERFORM nudge.new_reminder_stage();
  BEGIN
    INSERT INTO pg_temp.nudge_new_reminder
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type', (e.v->>'run_at')::timestamptz,
           coalesce((e.v->>'interval_seconds')::integer,
                    (e.v->>'interval_minutes')::integer * 60), e.v->>'target',
           coalesce(nullif(e.v->'payload', 'null'::jsonb), '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, e.v->>'cron', e.v->>'timezone', NULL, NULL,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint,
           nullif(e.v->'request', 'null'::jsonb), NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     -- An item with a key it should not have is left out, which sends the batch down the exact
     -- path: one that is not known, or both intervals. (A bad interval_minutes, like a bad
     -- interval_seconds, fails a constraint.) So is one with a value REST would not take as
     -- it is typed.
     WHERE e.v - nudge.create_item_fields() = '{}'::jsonb
       AND NOT e.v ?& ARRAY['interval_seconds', 'interval_minutes']
       AND nudge.item_values_are_plain(e.v);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    -- Every time as REST writes one: one match over the batch's times.
    v_plain := v_rows = jsonb_array_length(p_items)
               AND (SELECT nudge.are_rfc3339(array_agg(e.v->>'run_at') || array_agg(e.v->>'ends_at'))
                      FROM jsonb_array_elements(p_items) AS e(v))
               AND nudge.create_staged_reminders();
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_time_zone_displacement_value
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge.create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  -- Each staged reminder by its id (OFFSET 0 keeps the lookup a lookup: as a join it could be
  -- planned, on a small table, as a merge join walking the whole primary key).
  RETURN QUERY
    SELECT b.item, b.created, x.r
      FROM pg_temp.nudge_new_reminder b
     CROSS JOIN LATERAL (SELECT r FROM nudge.reminders r WHERE r.id = b.id OFFSET 0) x
     ORDER BY b.item;
END $$;

COMMENT ON FUNCTION nudge.create_reminders(p_items jsonb) IS 'Creates (or finds) every item of p_items (JSON objects with the fields of nudge.create_reminder, without the p_ prefix, or interval_minutes for interval_seconds, plus rule_id and event_id for reminders rules create) in one transaction, one row per item with the reminder (a nudge.reminders row, as nudge.create_reminder answers), exactly as nudge.create_reminders_one_by_one would (an item that is not an object, an unknown key, a value of the wrong JSON type or a time that is not RFC 3339 with an offset raises 22023 naming items[<index>] or items[<index>].<field>), with one set-based INSERT when every item is plainly valid, new and distinct.';

CREATE OR REPLACE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_out    jsonb[] := '{}';  -- appended in place; a jsonb array would be copied whole each time
  v_field  text;
  v_detail text;
  v_state  text;
BEGIN
  -- Every key's lock first, in one order for every batch (nudge.record_event takes them again):
  -- two batches sharing keys in different orders waited on each other, a deadlock.
  PERFORM pg_advisory_xact_lock(k.lock)
     FROM (SELECT DISTINCT hashtextextended('nudge.events.key ' || (x.v->>'key'), 0) AS lock
             FROM jsonb_array_elements(p_items) AS x(v)
            WHERE jsonb_typeof(x.v) = 'object' AND jsonb_typeof(x.v->'key') = 'string') k
    ORDER BY k.lock;
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      PERFORM nudge.check_item(v_item, nudge.event_item_fields());
      v_out := v_out || nudge.emit_event(
                 p_event_type => v_item->>'event_type', p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_data => coalesce(nullif(v_item->'data', 'null'::jsonb), '{}'::jsonb), p_key => v_item->>'key',
                 p_occurred_at => (v_item->>'occurred_at')::timestamptz);
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION
    WHEN invalid_parameter_value OR SQLSTATE 'NU422' THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT,
                              v_state = RETURNED_SQLSTATE;
      PERFORM nudge.reject_item(v_index, v_state, v_field, v_detail);
    WHEN data_exception THEN  -- an occurred_at PostgreSQL cannot read (February 30, +20:00)
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      PERFORM nudge.reject_item(v_index, '22023', split_part(v_detail, ':', 1), v_detail);
  END;
  RETURN to_jsonb(v_out);
END $$;

COMMENT ON FUNCTION nudge.emit_events_one_by_one(p_items jsonb) IS 'nudge.emit_event for every item of p_items, in order, all or nothing, the keys'' locks taken first in one global order (batches sharing keys never deadlock); an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value nudge.item_value_problem refuses, an occurred_at PostgreSQL cannot read) or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';

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
                   GROUP BY e.entity_type, e.entity_id HAVING count(*) > 1) THEN
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
                   ORDER BY r.id LOOP
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

COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name, a value of the wrong JSON type, an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause, and are bounded as n chains of 1,000 events would be (n items), in all.';

