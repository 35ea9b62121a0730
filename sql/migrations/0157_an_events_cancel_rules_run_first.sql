-- 0157: an event's cancel rules run before its other rules (explore31b F2). In id order alone,
-- "on interview_rescheduled: remind interview_reminder" made before "on interview_rescheduled:
-- cancel interview_reminder" found the live reminder (a create of a live identity answers it),
-- then cancelled it: the interview was left with no reminder at all. Effects are listed in the
-- order the rules ran. (And the batches' guarantees say which of Nudge's own events name their
-- cause: explore31b F6.)

CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  -- Events in this chain so far, this one included, refused ones too: its root starts the count.
  v_count   integer := CASE WHEN v_depth = 0 THEN 1
                            ELSE coalesce(nullif(current_setting('nudge.chain_events', true), ''),
                                          '0')::integer + 1 END;
  -- nudge.event_id, nudge.rule_id and nudge.rule_path as they were: the first is the cause.
  v_saved   text[] := ARRAY[current_setting('nudge.event_id', true),
                            current_setting('nudge.rule_id', true),
                            current_setting('nudge.rule_path', true)];
  v_event   nudge.events;
  v_rules   nudge.rules[];
  v_rule    nudge.rules;
  v_effects jsonb := '[]'::jsonb;
  v_set     text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  IF p_key IS NOT NULL THEN
    -- The same key again (perhaps at this moment, from another session: the lock waits for
    -- it to end): the first answer, and nothing changes.
    PERFORM pg_advisory_xact_lock(hashtextextended('nudge.events.key ' || p_key, 0));
    SELECT * INTO v_event FROM nudge.events WHERE key = p_key;
    IF FOUND THEN
      RETURN jsonb_build_object('created', false, 'event', nudge.event_json(v_event),
                                'effects', v_event.effects);
    END IF;
  END IF;

  -- The id first, the row last: rules need the id, and the row is written once, effects and all.
  v_event := ROW(nextval('nudge.events_id_seq'), p_event_type, p_entity_type, p_entity_id, p_data,
                 p_key, coalesce(p_occurred_at, now()), now(),
                 CASE WHEN v_depth > 0 THEN nullif(v_saved[1], '')::bigint END, v_depth, '[]'::jsonb,
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run'
                      WHEN v_count > 1000 THEN 'a chain of rules of more than 1000 events: not run'
                 END)
             ::nudge.events;
  IF v_depth > 0 THEN
    -- Every event of a chain counts, refused ones too: counted only where rules ran, a chain
    -- of 1,000 such events, each running 10 rules, wrote 10,011 events and 9,991 reminders in
    -- 17.8 s (explore26a #2).
    v_set := set_config('nudge.chain_events', v_count::text, true);
  END IF;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled
                      -- Cancels first: "cancel, then remind" of one event type replaces a live
                      -- reminder whichever rule was made first (explore31b F2).
                      ORDER BY (r.action->>'type') <> 'cancel', r.id);
  ELSIF current_setting('nudge.chain_warned', true) IS DISTINCT FROM 'on' THEN
    -- Once per chain (each refused event is in nudge.events): one per event flooded the log.
    v_set := set_config('nudge.chain_warned', 'on', true);
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    -- Only events whose rules run can cause more: they carry the chain's count (a root starts
    -- a new chain, warned of nothing yet).
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true)
             || set_config('nudge.event_id', v_event.id::text, true)
             || set_config('nudge.chain_events', v_count::text, true)
             || CASE WHEN v_depth = 0 THEN set_config('nudge.chain_warned', 'off', true) ELSE '' END;
    FOREACH v_rule IN ARRAY v_rules LOOP
      CONTINUE WHEN v_rule."when" <> '{}'::jsonb AND NOT nudge.rule_matches(v_rule."when", v_event);
      IF p_own THEN
        -- Nudge's own events never fail the change that caused them (a worker's finish, a
        -- flag): a rule that cannot run for one is recorded with its error instead.
        BEGIN
          v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
        EXCEPTION WHEN SQLSTATE 'NU422' OR invalid_parameter_value THEN
          v_effects := v_effects || jsonb_build_object('rule_id', v_rule.id,
                                                       'type', v_rule.action->>'type',
                                                       'error', SQLERRM);
          -- Counted for the workers' /metrics (nudge_rule_failures_total) in whichever session
          -- it happens: a sequence, as it must count without a lock or a row written.
          PERFORM nextval('nudge.rule_failures');
          -- Else nobody hears of it (an escalation silently missing): once per transaction,
          -- as a worker's finish may end many reminders of one failing rule.
          IF current_setting('nudge.rule_failure_warned', true) IS DISTINCT FROM 'on' THEN
            v_set := set_config('nudge.rule_failure_warned', 'on', true);
            RAISE WARNING 'nudge: rule % did not run for event % (%): %', v_rule.id, v_event.id,
              p_event_type, SQLERRM;
          END IF;
        END;
      ELSE
        v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
      END IF;
    END LOOP;
    -- This event may be Nudge's own, emitted while another rule's action runs: that rule's
    -- context comes back.
    v_set := set_config('nudge.event_depth', v_depth::text, true)
             || set_config('nudge.event_id', coalesce(v_saved[1], ''), true)
             || set_config('nudge.rule_id', coalesce(v_saved[2], ''), true)
             || set_config('nudge.rule_path', coalesce(v_saved[3], ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;

COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold, its cancel rules first, then the others, each in id order; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing, counted in the sequence nudge.rule_failures (also when the transaction rolls back), and PostgreSQL''s log gets one warning per transaction; an event deeper than 8 in a chain of rules, or past the 1,000th event of its chain (every event counts, refused ones too), is recorded as refused and its rules are not run (one warning per chain).';

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

COMMENT ON FUNCTION nudge.emit_events(p_items jsonb) IS 'Records every item of p_items (objects with event_type, entity_type, entity_id, data, key, occurred_at, and no other key) and runs their rules as nudge.emit_event would, in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>]: must be a JSON object" or "items[<index>].<field>: <problem>" (an unknown key: "items[<index>].<key>: is not a known field"; a value of the wrong JSON type: "must be a string, not a number"; an occurred_at that is not RFC 3339 with an offset) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that its cancel rules cause when each rule runs once over all its events do not name their cause (all others do), and are bounded as n chains of 1,000 events would be (n items), in all.';
