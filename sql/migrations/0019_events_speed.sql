-- 0019: an event answered by rules costs less: a remind rule inserts its reminder directly when
-- nothing about it is out of the ordinary, and the rule context travels without a query.
--
-- Measured in the database (backend CPU per call, 2,000 calls in a DO block, the two rules of
-- scripts/bench.sh): a create 250 us, an event 752 us. The event's remind step rendered the
-- template into a JSON create item (nudge.reminder_item), then nudge.create_reminder_from_item
-- took it apart again and nudge.create_reminder checked every field once more, one statement
-- per check, although the rule's save had checked the template already; and each
-- `PERFORM set_config(...)` ran a query where an assignment is a simple expression.

-- The plain case of a remind rule: the template rendered once, every check a create makes done
-- in one expression, one INSERT, and anything out of the ordinary (a check that
-- fails, a stop flag already true, a live reminder of the same identity, a cron schedule, a
-- request) left to the exact path, which gives the same answer or the same error.
CREATE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events)
RETURNS nudge.reminders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_item     jsonb;
  v_payload  jsonb := '{}'::jsonb;
  v_interval integer;
  v_run_at   timestamptz;
  v_max_fires integer;
  v_ends_at  timestamptz;
  v_attempts integer;
  v_row      nudge.reminders;
BEGIN
  IF p_template ?| ARRAY['request', 'cron', 'timezone'] THEN
    RETURN NULL;
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || nudge.render_template(p_template - 'payload' - 'delay_seconds' - 'interval_minutes',
                                     p_event, false);
  IF p_template ? 'payload' THEN
    v_payload := nudge.render_template(p_template->'payload', p_event, true);
  END IF;
  IF v_item IS NULL OR v_payload IS NULL THEN
    RETURN NULL;  -- the event lacks a value: the exact path names the field
  END IF;
  v_interval := coalesce((v_item->>'interval_seconds')::integer,
                         (p_template->>'interval_minutes')::integer * 60);
  v_run_at := p_event.occurred_at + interval '1 second' *
                CASE WHEN v_item->>'schedule_type' = 'recurring'
                     THEN coalesce((p_template->>'delay_seconds')::integer, v_interval, 0)
                     ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  v_max_fires := (v_item->>'max_fires')::integer;
  v_ends_at := (v_item->>'ends_at')::timestamptz;
  v_attempts := (v_item->>'max_attempts')::integer;
  -- Every check of nudge.create_reminder, in one simple expression (no query); NULL fails.
  IF NOT coalesce(
       length(v_item->>'entity_type') BETWEEN 1 AND 200 AND length(v_item->>'entity_id') BETWEEN 1 AND 200
       AND length(v_item->>'event_type') BETWEEN 1 AND 200 AND v_item->>'channel' IN ('log', 'webhook', 'email')
       AND coalesce(length(v_item->>'target') <= 2048
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL, true)
       AND (NOT v_item ? 'misfire_policy' OR v_item->>'misfire_policy' = 'fire_once'
            OR (v_item->>'misfire_policy' IN ('skip', 'fire_all') AND v_item->>'schedule_type' <> 'one_time'))
       AND coalesce(v_attempts BETWEEN 1 AND 100, true)
       AND jsonb_typeof(v_payload) = 'object' AND pg_column_size(v_payload) <= 65536
       AND ((v_item->>'schedule_type' = 'one_time' AND v_interval IS NULL)
            OR (v_item->>'schedule_type' = 'recurring' AND v_interval BETWEEN 1 AND 31622400))
       AND ((NOT v_item ? 'stop_condition_type' AND NOT v_item ? 'stop_condition_value')
            OR (v_item->>'stop_condition_type' = 'db_check'
                AND length(v_item->>'stop_condition_value') BETWEEN 1 AND 200))
       AND coalesce(v_max_fires >= 1, true) AND coalesce(v_ends_at >= v_run_at, true), false) THEN
    RETURN NULL;
  END IF;
  IF v_item ? 'stop_condition_value' THEN
    PERFORM FROM nudge.status_flags f WHERE f.key = v_item->>'stop_condition_value' AND f.value;
    IF FOUND THEN RETURN NULL; END IF;
  END IF;
  INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    misfire_policy, max_attempts)
  VALUES (v_item->>'entity_type', v_item->>'entity_id', v_item->>'event_type', v_item->>'channel',
          v_item->>'target', v_payload, v_item->>'schedule_type', v_interval, v_run_at,
          v_item->>'stop_condition_type', v_item->>'stop_condition_value', v_max_fires, v_ends_at,
          coalesce(v_item->>'misfire_policy', 'fire_once'), v_attempts)
  ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
  RETURNING r.* INTO v_row;
  RETURN v_row;  -- all NULL when the identity is live
END $$;

COMMENT ON FUNCTION nudge.remind_plainly(jsonb, nudge.events) IS
  'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';

-- apply_rule: the plain remind first; set_config as assignments.
CREATE OR REPLACE FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_made      record;
  v_created   boolean := true;
  v_reminder  nudge.reminders;
  v_flag      nudge.status_flags;
  v_cancelled bigint[];
  v_effect    jsonb;
  v_set       text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  v_set := set_config('nudge.rule_id', p_rule.id::text, true);
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      v_set := set_config('nudge.rule_path', 'action.reminder.', true);
      v_reminder := nudge.remind_plainly(p_rule.action->'reminder', p_event);
      IF v_reminder.id IS NULL THEN
        SELECT c.created, c.reminder INTO v_made
          FROM nudge.create_reminder_from_item(
                 nudge.reminder_item(p_rule.action->'reminder', p_event)) c;
        v_created := v_made.created;
        v_reminder := v_made.reminder;
      END IF;
      -- rule_id and event_id: the columns' defaults
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'remind',
                                     'reminder', nudge.reminder_json(v_reminder),
                                     'created', v_created);
    WHEN 'set_flag' THEN
      v_set := set_config('nudge.rule_path', 'action.flag.', true);
      v_flag := nudge.set_flag(nudge.render_text(p_rule.action->'flag'->>'key', p_event,
                                                 'action.flag.key') #>> '{}',
                               (p_rule.action->'flag'->>'value')::boolean);
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'set_flag',
                                     'flag', to_jsonb(v_flag));
    ELSE
      v_set := set_config('nudge.rule_path', 'action.cancel.', true);
      SELECT coalesce(array_agg((nudge.cancel_reminder(r.id)).id ORDER BY r.id), '{}')
        INTO v_cancelled
        FROM nudge.reminders r
       WHERE r.entity_type = coalesce(nudge.render_text(p_rule.action->'cancel'->>'entity_type',
                                                        p_event, 'action.cancel.entity_type') #>> '{}',
                                      p_event.entity_type)
         AND r.entity_id = coalesce(nudge.render_text(p_rule.action->'cancel'->>'entity_id',
                                                      p_event, 'action.cancel.entity_id') #>> '{}',
                                    p_event.entity_id)
         AND r.event_type = nudge.render_text(p_rule.action->'cancel'->>'event_type', p_event,
                                              'action.cancel.event_type') #>> '{}'
         AND r.status IN ('ACTIVE', 'PAUSED');
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'cancel',
                                     'cancelled', to_jsonb(v_cancelled));
  END CASE;
  RETURN v_effect;
END $$;

-- record_event: the rule context set by assignments, not by queries.
CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text,
                                              p_entity_id text, p_data jsonb, p_key text,
                                              p_occurred_at timestamptz, p_own boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
  v_cause   text := current_setting('nudge.event_id', true);
  v_rule_id text := current_setting('nudge.rule_id', true);
  v_path    text := current_setting('nudge.rule_path', true);
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
                 CASE WHEN v_depth > 0 THEN nullif(v_cause, '')::bigint END, v_depth, '[]'::jsonb,
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run' END)
             ::nudge.events;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled ORDER BY r.id);
  ELSE
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true);
    v_set := set_config('nudge.event_id', v_event.id::text, true);
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
        END;
      ELSE
        v_effects := v_effects || nudge.apply_rule(v_rule, v_event);
      END IF;
    END LOOP;
    -- This event may be Nudge's own, emitted while another rule's action runs: that rule's
    -- context comes back.
    v_set := set_config('nudge.event_depth', v_depth::text, true);
    v_set := set_config('nudge.event_id', coalesce(v_cause, ''), true);
    v_set := set_config('nudge.rule_id', coalesce(v_rule_id, ''), true);
    v_set := set_config('nudge.rule_path', coalesce(v_path, ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;

-- create_reminders: a batch's stop flags are found by key (one index scan). The correlated
-- EXISTS it had was planned, with no statistics on the temporary table, as a hash of every true
-- flag: each batch of events read the whole flags table (56 ms a batch at 135,000 flags).
CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb)
RETURNS TABLE(item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_plain boolean;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Renamed with its new columns: a session that made the old table keeps it.
  CREATE TEMP TABLE IF NOT EXISTS nudge_new_reminder (
    item integer, entity_type text, entity_id text, event_type text, channel text,
    schedule_type text, run_at timestamptz, interval_seconds integer, target text,
    payload jsonb, stop_condition_type text, stop_condition_value text, max_fires integer,
    ends_at timestamptz, cron text, timezone text, zone text, cron_schedule nudge.cron,
    misfire_policy text, max_attempts integer, rule_id bigint, event_id bigint, request jsonb,
    id bigint, created boolean) ON COMMIT DELETE ROWS;
  DELETE FROM pg_temp.nudge_new_reminder;  -- a second batch in the same transaction
  BEGIN
    INSERT INTO pg_temp.nudge_new_reminder
    SELECT (e.ord - 1)::integer, e.v->>'entity_type', e.v->>'entity_id', e.v->>'event_type',
           e.v->>'channel', e.v->>'schedule_type',
           -- A bad expression or zone raises 22023 and sends the batch down the exact path.
           nudge.first_run_at(e.v->>'schedule_type', (e.v->>'run_at')::timestamptz, c.parsed,
                              c.zone),
           (e.v->>'interval_seconds')::integer, e.v->>'target',
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, e.v->>'cron', e.v->>'timezone', c.zone, c.parsed,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint,
           nullif(e.v->'request', 'null'::jsonb), NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     CROSS JOIN LATERAL (
            SELECT CASE WHEN e.v->>'schedule_type' = 'cron'
                        THEN nudge.checked_timezone(coalesce(e.v->>'timezone', 'UTC')) END AS zone,
                   CASE WHEN e.v->>'schedule_type' = 'cron'
                        THEN nudge.cron_parse(e.v->>'cron') END AS parsed) c;

    SELECT NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
                        WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                           OR jsonb_typeof(b.payload) <> 'object'
                           -- rules the create function checks and no constraint does
                           OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                           OR (b.schedule_type = 'cron' AND length(b.cron) > 200))
       -- The stop flags looked up by key in one index scan: as a correlated EXISTS, the planner
       -- (no statistics on the temporary table) hashed every true flag instead.
       AND NOT EXISTS (SELECT 1 FROM nudge.status_flags f
                        WHERE f.key = ANY (ARRAY(SELECT b.stop_condition_value
                                                   FROM pg_temp.nudge_new_reminder b
                                                  WHERE b.stop_condition_value IS NOT NULL))
                          AND f.value)
       AND NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
                        GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1)
      INTO v_plain;

    IF v_plain THEN
      WITH inserted AS (
        INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target,
                                          payload, schedule_type, interval_seconds, next_run_at,
                                          stop_condition_type, stop_condition_value, max_fires,
                                          ends_at, cron, timezone, cron_schedule, misfire_policy,
                                          max_attempts, rule_id, event_id, request)
        SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
               b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
               b.stop_condition_value, b.max_fires, b.ends_at, b.cron, b.zone,
               b.cron_schedule, b.misfire_policy, b.max_attempts, b.rule_id, b.event_id,
               b.request
          FROM pg_temp.nudge_new_reminder b ORDER BY b.item
        ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
        DO NOTHING
        RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
      UPDATE pg_temp.nudge_new_reminder b SET id = i.id, created = true
        FROM inserted i
       WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
      -- Items whose identity is already live: that reminder is the answer.
      UPDATE pg_temp.nudge_new_reminder b SET id = r.id, created = false
        FROM nudge.reminders r
       WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
      v_plain := NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b WHERE b.id IS NULL);
    END IF;
  EXCEPTION WHEN invalid_parameter_value OR check_violation OR not_null_violation
                 OR invalid_datetime_format OR datetime_field_overflow
                 OR invalid_text_representation OR numeric_value_out_of_range THEN
    v_plain := false;  -- rolled back to the block's start: the exact path says what was wrong
  END;

  IF NOT v_plain THEN
    RETURN QUERY SELECT * FROM nudge.create_reminders_one_by_one(p_items);
    RETURN;
  END IF;
  RETURN QUERY
    SELECT b.item, b.created, nudge.reminder_json(r)
      FROM pg_temp.nudge_new_reminder b JOIN nudge.reminders r ON r.id = b.id
     ORDER BY b.item;
END $$;

-- emit_events: a remind rule's items are rendered in one pass, and each effect row is written
-- once (no item rows to update); a flag rule's keys travel as arrays; the JSON arrays are built
-- with to_jsonb(array_agg()). A template without a payload takes the set-based path too (its
-- items said "payload": null, which sent the whole batch item by item).
CREATE OR REPLACE FUNCTION nudge.emit_events(p_items jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rule    nudge.rules;
  v_items   jsonb;
  v_ords    integer[];
  v_keys    text[];
  v_missing boolean;
  v_out     jsonb;
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
    -- (about 15% slower for a batch's effects and answer).
    WITH effects AS (
      SELECT f.ord, to_jsonb(array_agg(f.effect ORDER BY f.rule_id)) AS effects
        FROM pg_temp.nudge_batch_effect f GROUP BY f.ord
    ), recorded AS (
      INSERT INTO nudge.events AS ev OVERRIDING SYSTEM VALUE
      SELECT e.id, e.event_type, e.entity_type, e.entity_id, e.data, NULL, e.occurred_at, now(),
             NULL, 0, coalesce(x.effects, '[]'), NULL
        FROM pg_temp.nudge_batch_event e LEFT JOIN effects x ON x.ord = e.ord ORDER BY e.ord
      RETURNING ev.*)
    SELECT to_jsonb(array_agg(jsonb_build_object('created', true, 'event', nudge.event_json(r),
                                                 'effects', r.effects) ORDER BY e.ord))
      INTO v_out
      FROM recorded r JOIN pg_temp.nudge_batch_event e ON e.id = r.id;
    RETURN v_out;
  EXCEPTION WHEN SQLSTATE 'NU000' OR SQLSTATE 'NU422' OR data_exception
                 OR integrity_constraint_violation THEN
    NULL;  -- rolled back to the block's start: the item-by-item path answers
  END;
  RETURN nudge.emit_events_one_by_one(p_items);
END $$;
