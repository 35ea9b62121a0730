-- 0003: events and rules. "When X happens to E, remind after D, until Y happens, else escalate."
--
--   nudge.rules    {name, event_type, enabled, when, action}: how an event of event_type is
--                  answered. The action is one of: remind (a reminder template), set_flag (stops
--                  the reminders waiting on it), cancel (the entity's live reminders of a type).
--   nudge.events   every event, with the effects its rules had; an idempotency key makes a
--                  repeated event a no-op that answers as the first did.
--
-- nudge.emit_event runs in the caller's transaction: an application can emit
-- "interview_completed" in the very transaction that marks the interview completed, and if that
-- rolls back, no reminder exists. Nudge feeds its own lifecycle into the same rules as events
-- nudge.reminder_completed and nudge.reminder_failed, recorded in the transaction of the change
-- that caused them: that is how escalation works. A chain of events caused by rules stops at a
-- depth of 8: the event past it is recorded, refused, and its rules are not run.
--
-- Errors: 22023 for a rule that cannot be saved (the field path in COLUMN and the message);
-- NU422 for an event a rule cannot be rendered for ("rule <id>: <field path>: <problem>").

ALTER TABLE nudge.reminders
  ADD COLUMN rule_id  bigint,  -- the rule that created it (no key: a deleted rule leaves it be)
  ADD COLUMN event_id bigint;  -- the event that rule answered
-- While a rule's action runs, nudge.apply_rule names the rule and nudge.record_event the event in
-- two settings local to the transaction; a reminder created then records both, with no second
-- write. (Defaults set apart from ADD COLUMN, so existing rows are not rewritten.)
ALTER TABLE nudge.reminders
  ALTER COLUMN rule_id SET DEFAULT nullif(current_setting('nudge.rule_id', true), '')::bigint,
  ALTER COLUMN event_id SET DEFAULT nullif(current_setting('nudge.event_id', true), '')::bigint;

CREATE TABLE nudge.rules (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text        NOT NULL,
  event_type  text        NOT NULL,
  enabled     boolean     NOT NULL DEFAULT true,
  "when"      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  action      jsonb       NOT NULL,
  -- The action and conditions as SQL expressions over a batch of events (nudge.compile_rule),
  -- made whenever the rule is saved; not part of its public form.
  compiled    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT rule_name_is_1_to_200_chars CHECK (length(name) BETWEEN 1 AND 200),
  CONSTRAINT rule_event_type_is_1_to_200_chars CHECK (length(event_type) BETWEEN 1 AND 200),
  CONSTRAINT rule_when_is_object CHECK (jsonb_typeof("when") = 'object'),
  CONSTRAINT rule_action_is_object CHECK (jsonb_typeof(action) = 'object'),
  CONSTRAINT rule_action_is_at_most_64_kib CHECK (pg_column_size(action) <= 65536)
);
COMMENT ON TABLE nudge.rules IS
  'How events are answered: each enabled rule of an event''s type whose "when" holds runs its action (remind, set_flag or cancel); checked whenever it is saved.';
COMMENT ON COLUMN nudge.rules."when" IS
  'Equality conditions, all of which must hold: {"data.priority": "high", "entity_type": "interviewer"}.';
CREATE INDEX rules_enabled_by_event_type ON nudge.rules (event_type, id) WHERE enabled;

CREATE TABLE nudge.events (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_type     text        NOT NULL,
  entity_type    text        NOT NULL,
  entity_id      text        NOT NULL,
  data           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  key            text,
  occurred_at    timestamptz NOT NULL DEFAULT now(),
  received_at    timestamptz NOT NULL DEFAULT now(),
  cause_event_id bigint,
  depth          integer     NOT NULL DEFAULT 0,
  effects        jsonb       NOT NULL DEFAULT '[]'::jsonb,
  refused        text,
  CONSTRAINT event_type_of_event_is_1_to_200_chars CHECK (length(event_type) BETWEEN 1 AND 200),
  CONSTRAINT event_entity_type_is_1_to_200_chars CHECK (length(entity_type) BETWEEN 1 AND 200),
  CONSTRAINT event_entity_id_is_1_to_200_chars CHECK (length(entity_id) BETWEEN 1 AND 200),
  CONSTRAINT event_data_is_object CHECK (jsonb_typeof(data) = 'object'),
  CONSTRAINT event_data_is_at_most_64_kib CHECK (pg_column_size(data) <= 65536),
  CONSTRAINT event_key_is_1_to_200_chars CHECK (length(key) BETWEEN 1 AND 200),
  CONSTRAINT event_depth_is_not_negative CHECK (depth >= 0)
);
COMMENT ON TABLE nudge.events IS
  'Every event, posted or emitted by Nudge itself, with the effects its rules had; pruned after [history] retention_days.';
CREATE UNIQUE INDEX events_one_per_key ON nudge.events (key) WHERE key IS NOT NULL;
CREATE INDEX events_by_entity ON nudge.events (entity_type, entity_id, id);
CREATE INDEX events_by_type ON nudge.events (event_type, id);
CREATE INDEX events_by_received_at ON nudge.events USING brin (received_at);

-- ---------------------------------------------------------------------------------------------
-- JSON forms
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION nudge.reminder_json(r nudge.reminders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  -- The payload is the user's JSON, kept as it is (nulls inside it too): only unset fields of
  -- the reminder are left out.
  SELECT jsonb_build_object('payload', r.payload) || jsonb_strip_nulls(jsonb_build_object(
    'id', r.id, 'entity_type', r.entity_type, 'entity_id', r.entity_id,
    'event_type', r.event_type, 'channel', r.channel, 'target', r.target,
    'schedule_type', r.schedule_type,
    'interval_seconds', r.interval_seconds, 'cron', r.cron, 'timezone', r.timezone,
    'misfire_policy', r.misfire_policy, 'max_attempts', r.max_attempts,
    'next_run_at', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.next_run_at END,
    'retrying_occurrence', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') THEN r.occurrence_at END,
    'attempts', CASE WHEN r.status IN ('ACTIVE', 'PAUSED') AND r.occurrence_at IS NOT NULL
                     THEN r.attempt END,
    'stop_condition_type', r.stop_condition_type,
    'stop_condition_value', r.stop_condition_value, 'max_fires', r.max_fires,
    'ends_at', r.ends_at, 'fire_count', r.fire_count, 'status', r.status,
    'completed_reason', r.completed_reason, 'last_error', r.last_error,
    'rule_id', r.rule_id, 'event_id', r.event_id,
    'created_at', r.created_at, 'updated_at', r.updated_at, 'finished_at', r.finished_at))
$$;
COMMENT ON FUNCTION nudge.reminder_json(nudge.reminders) IS
  'The public JSON form of a reminder: every field that is set (nulls left out, the payload as stored), times in the session''s zone, the occurrence being retried and its attempts while there is one, the rule and event that created it, no lease internals.';

CREATE FUNCTION nudge.rule_json(r nudge.rules) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', r.id, 'name', r.name, 'event_type', r.event_type,
                            'enabled', r.enabled, 'when', r."when", 'action', r.action,
                            'created_at', r.created_at, 'updated_at', r.updated_at)
$$;
COMMENT ON FUNCTION nudge.rule_json(nudge.rules) IS 'The public JSON form of a rule.';

CREATE FUNCTION nudge.event_json(e nudge.events) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('data', e.data) || jsonb_strip_nulls(jsonb_build_object(
    'id', e.id, 'event_type', e.event_type, 'entity_type', e.entity_type,
    'entity_id', e.entity_id, 'key', e.key, 'occurred_at', e.occurred_at,
    'received_at', e.received_at, 'cause_event_id', e.cause_event_id, 'refused', e.refused))
$$;
COMMENT ON FUNCTION nudge.event_json(nudge.events) IS
  'The public JSON form of an event (without its effects): what happened to which entity, when, and for an event a rule caused, the event that caused it.';

-- ---------------------------------------------------------------------------------------------
-- Creating a reminder from a JSON item (batches, rules)
-- ---------------------------------------------------------------------------------------------

-- PL/pgSQL, not SQL: a SQL function that is not inlined plans its statement on every call
-- (90 us of a rule's 120).
CREATE FUNCTION nudge.create_reminder_from_item(p_item jsonb)
RETURNS TABLE (created boolean, reminder nudge.reminders)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY
  SELECT c.created, c.reminder
    FROM nudge.create_reminder(
           p_entity_type => p_item->>'entity_type',
           p_entity_id => p_item->>'entity_id',
           p_event_type => p_item->>'event_type',
           p_channel => p_item->>'channel',
           p_schedule_type => p_item->>'schedule_type',
           p_run_at => (p_item->>'run_at')::timestamptz,
           p_interval_seconds => (p_item->>'interval_seconds')::integer,
           p_target => p_item->>'target',
           p_payload => coalesce(p_item->'payload', '{}'::jsonb),
           p_stop_condition_type => p_item->>'stop_condition_type',
           p_stop_condition_value => p_item->>'stop_condition_value',
           p_max_fires => (p_item->>'max_fires')::integer,
           p_ends_at => (p_item->>'ends_at')::timestamptz,
           p_cron => p_item->>'cron',
           p_timezone => p_item->>'timezone',
           p_misfire_policy => p_item->>'misfire_policy',
           p_max_attempts => (p_item->>'max_attempts')::integer) c;
END $$;
COMMENT ON FUNCTION nudge.create_reminder_from_item(jsonb) IS
  'nudge.create_reminder with its arguments taken from a JSON object whose fields are its parameter names without the p_ prefix; the same answer and errors.';

CREATE OR REPLACE FUNCTION nudge.create_reminders_one_by_one(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_field  text;
  v_detail text;
BEGIN
  -- One exception block around the loop (one subtransaction per batch, not per item) so an
  -- error can say which item it came from.
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      IF v_item ? 'rule_id' THEN
        -- A reminder a rule creates records it and its event through the column defaults.
        PERFORM set_config('nudge.rule_id', v_item->>'rule_id', true),
                set_config('nudge.event_id', v_item->>'event_id', true);
      END IF;
      RETURN QUERY
        SELECT v_index, c.created, nudge.reminder_json(c.reminder)
          FROM nudge.create_reminder_from_item(v_item) c;
      IF v_item ? 'rule_id' THEN
        PERFORM set_config('nudge.rule_id', '', true), set_config('nudge.event_id', '', true);
      END IF;
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
    RAISE EXCEPTION 'items[%].%', v_index, v_detail
      USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
  END;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Errors inside a rule's action
-- ---------------------------------------------------------------------------------------------

-- While a rule's action runs, nudge.apply_rule names the rule and the template path in two
-- settings local to the transaction, so that a create or a flag refusing a rendered value
-- refuses the event (NU422) and says which rule and field: labelling the error where it starts
-- needs no exception block, whose subtransaction per rule would swamp a batch of events.
CREATE OR REPLACE FUNCTION nudge.reject(p_field text, p_problem text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rule text := nullif(current_setting('nudge.rule_id', true), '');
  v_path text := coalesce(current_setting('nudge.rule_path', true), '') || p_field;
BEGIN
  IF v_rule IS NOT NULL THEN
    RAISE EXCEPTION 'rule %: %: %', v_rule, v_path, p_problem
      USING ERRCODE = 'NU422', COLUMN = v_path, TABLE = v_rule;
  END IF;
  RAISE EXCEPTION '%: %', p_field, p_problem USING ERRCODE = '22023', COLUMN = p_field;
END $$;
COMMENT ON FUNCTION nudge.reject(text, text) IS
  'Always raises: 22023 "<field>: <problem>" with the field in COLUMN; while a rule''s action runs, NU422 "rule <id>: <template path><field>: <problem>" instead.';

-- Items may carry rule_id and event_id: the reminders a batch of events creates through its
-- rules record them, as one event's do through the column defaults.
CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb)
RETURNS TABLE (item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_plain boolean;
BEGIN
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    PERFORM nudge.reject('items', 'must be an array');
  END IF;
  -- Renamed with its new columns: a session that made the old table keeps it.
  CREATE TEMP TABLE IF NOT EXISTS nudge_create_item (
    item integer, entity_type text, entity_id text, event_type text, channel text,
    schedule_type text, run_at timestamptz, interval_seconds integer, target text,
    payload jsonb, stop_condition_type text, stop_condition_value text, max_fires integer,
    ends_at timestamptz, cron text, timezone text, zone text, cron_schedule nudge.cron,
    misfire_policy text, max_attempts integer, rule_id bigint, event_id bigint, id bigint,
    created boolean) ON COMMIT DELETE ROWS;
  DELETE FROM pg_temp.nudge_create_item;  -- a second batch in the same transaction
  BEGIN
    INSERT INTO pg_temp.nudge_create_item
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
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint, NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     CROSS JOIN LATERAL (
            SELECT CASE WHEN e.v->>'schedule_type' = 'cron'
                        THEN nudge.checked_timezone(coalesce(e.v->>'timezone', 'UTC')) END AS zone,
                   CASE WHEN e.v->>'schedule_type' = 'cron'
                        THEN nudge.cron_parse(e.v->>'cron') END AS parsed) c;

    SELECT NOT EXISTS (SELECT 1 FROM pg_temp.nudge_create_item b
                        WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                           OR jsonb_typeof(b.payload) <> 'object'
                           -- rules the create function checks and no constraint does
                           OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                           OR (b.schedule_type = 'cron' AND length(b.cron) > 200)
                           OR EXISTS (SELECT 1 FROM nudge.status_flags f
                                       WHERE f.key = b.stop_condition_value AND f.value))
       AND NOT EXISTS (SELECT 1 FROM pg_temp.nudge_create_item b
                        GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1)
      INTO v_plain;

    IF v_plain THEN
      WITH inserted AS (
        INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target,
                                          payload, schedule_type, interval_seconds, next_run_at,
                                          stop_condition_type, stop_condition_value, max_fires,
                                          ends_at, cron, timezone, cron_schedule, misfire_policy,
                                          max_attempts, rule_id, event_id)
        SELECT b.entity_type, b.entity_id, b.event_type, b.channel, b.target, b.payload,
               b.schedule_type, b.interval_seconds, b.run_at, b.stop_condition_type,
               b.stop_condition_value, b.max_fires, b.ends_at, b.cron, b.zone,
               b.cron_schedule, b.misfire_policy, b.max_attempts, b.rule_id, b.event_id
          FROM pg_temp.nudge_create_item b ORDER BY b.item
        ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED')
        DO NOTHING
        RETURNING r.id, r.entity_type, r.entity_id, r.event_type)
      UPDATE pg_temp.nudge_create_item b SET id = i.id, created = true
        FROM inserted i
       WHERE (b.entity_type, b.entity_id, b.event_type) = (i.entity_type, i.entity_id, i.event_type);
      -- Items whose identity is already live: that reminder is the answer.
      UPDATE pg_temp.nudge_create_item b SET id = r.id, created = false
        FROM nudge.reminders r
       WHERE b.id IS NULL AND r.status IN ('ACTIVE', 'PAUSED')
         AND (r.entity_type, r.entity_id, r.event_type) = (b.entity_type, b.entity_id, b.event_type);
      v_plain := NOT EXISTS (SELECT 1 FROM pg_temp.nudge_create_item b WHERE b.id IS NULL);
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
      FROM pg_temp.nudge_create_item b JOIN nudge.reminders r ON r.id = b.id
     ORDER BY b.item;
END $$;
COMMENT ON FUNCTION nudge.create_reminders(jsonb) IS
  'Creates (or finds) every item of p_items (JSON objects with the fields of nudge.create_reminder, without the p_ prefix, plus rule_id and event_id for reminders rules create) in one transaction and answers exactly as nudge.create_reminders_one_by_one would, with one set-based INSERT when every item is plainly valid, new and distinct.';

-- ---------------------------------------------------------------------------------------------
-- Templates: {{entity_type}}, {{entity_id}}, {{event_type}}, {{event_id}}, {{data.some.path}}
-- ---------------------------------------------------------------------------------------------

-- One placeholder, with the name in the second group; spaces inside the braces are allowed.
-- Written out in each function (a constant function would be called per match).

CREATE FUNCTION nudge.placeholder_problem(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_name ~ '^(entity_type|entity_id|event_type|event_id|data(\.[A-Za-z0-9_-]+)+)$'
              THEN NULL
              ELSE format('{{%s}} is not a placeholder (known: {{entity_type}}, {{entity_id}}, '
                          '{{event_type}}, {{event_id}}, {{data.some.path}})', p_name) END
$$;
COMMENT ON FUNCTION nudge.placeholder_problem(text) IS
  'NULL when p_name names a value of an event (entity_type, entity_id, event_type, event_id, data.<path>), else why not.';

CREATE FUNCTION nudge.event_value(p_event nudge.events, p_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT CASE p_name
           WHEN 'entity_type' THEN to_jsonb(p_event.entity_type)
           WHEN 'entity_id' THEN to_jsonb(p_event.entity_id)
           WHEN 'event_type' THEN to_jsonb(p_event.event_type)
           WHEN 'event_id' THEN to_jsonb(p_event.id)
           ELSE p_event.data #> string_to_array(substr(p_name, 6), '.') END
$$;
COMMENT ON FUNCTION nudge.event_value(nudge.events, text) IS
  'The value a placeholder name stands for in an event (data.<path> walks objects and array indexes); NULL when the event has no such value.';

-- Every placeholder of p_text is known (22023 naming p_field otherwise), and no brace is left
-- unclosed.
CREATE FUNCTION nudge.check_placeholders(p_text text, p_field text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_name text;
BEGIN
  IF position('{{' IN p_text) = 0 AND position('}}' IN p_text) = 0 THEN
    RETURN;
  END IF;
  FOR v_name IN SELECT m[2] FROM regexp_matches(p_text, '(\{\{\s*([^{}]*?)\s*\}\})', 'g') m LOOP
    IF nudge.placeholder_problem(v_name) IS NOT NULL THEN
      PERFORM nudge.reject(p_field, nudge.placeholder_problem(v_name));
    END IF;
  END LOOP;
  IF regexp_replace(p_text, '\{\{\s*[^{}]*?\s*\}\}', '', 'g') ~ '\{\{|\}\}' THEN
    PERFORM nudge.reject(p_field, 'has a {{ or }} that does not close a placeholder');
  END IF;
END $$;
COMMENT ON FUNCTION nudge.check_placeholders(text, text) IS
  'Raises 22023 naming p_field when p_text holds an unknown placeholder or a brace pair that is not one; otherwise does nothing.';

-- p_text with each placeholder replaced by the event's value as text (a string as it is, other
-- JSON as JSON text). With p_typed, a text that is exactly one placeholder becomes the value
-- itself, of any JSON type (payloads keep numbers and objects). A missing value raises NU422.
CREATE FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text,
                                  p_typed boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_out   text := '';
  v_rest  text := p_text;
  v_open  integer;
  v_close integer;
  v_name  text;
  v_value jsonb;
BEGIN
  -- Scanned by position, not by a regular expression (5x slower per call): a saved template's
  -- placeholders are known to be well formed (nudge.check_placeholders).
  IF p_text IS NULL OR position('{{' IN p_text) = 0 THEN
    RETURN to_jsonb(p_text);
  END IF;
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    v_name := btrim(substr(v_rest, v_open + 2, v_close - 1));
    v_value := nudge.event_value(p_event, v_name);
    IF v_value IS NULL THEN
      RAISE EXCEPTION 'rule %: %: the event has no % for {{%}}',
        current_setting('nudge.rule_id', true), p_field, v_name, v_name
        USING ERRCODE = 'NU422', COLUMN = p_field,
              TABLE = current_setting('nudge.rule_id', true);
    END IF;
    IF p_typed AND v_out = '' AND btrim(substr(v_rest, 1, v_open - 1)) = ''
       AND btrim(substr(v_rest, v_open + v_close + 3)) = '' THEN
      RETURN v_value;  -- the whole text is this one placeholder
    END IF;
    v_out := v_out || substr(v_rest, 1, v_open - 1)
             || CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
    v_rest := substr(v_rest, v_open + v_close + 3);
  END LOOP;
  RETURN to_jsonb(v_out || v_rest);
END $$;
COMMENT ON FUNCTION nudge.render_text(text, nudge.events, text, boolean) IS
  'p_text with every placeholder replaced by the event''s value (as text; with p_typed a text that is one placeholder becomes the value itself); NU422 naming p_field when the event lacks a value.';

CREATE FUNCTION nudge.render_json(p_value jsonb, p_event nudge.events, p_field text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_out jsonb;
BEGIN
  IF position('{{' IN p_value::text) = 0 THEN
    RETURN p_value;
  END IF;
  CASE jsonb_typeof(p_value)
    WHEN 'string' THEN
      RETURN nudge.render_text(p_value #>> '{}', p_event, p_field, true);
    WHEN 'object' THEN
      SELECT coalesce(jsonb_object_agg(k, nudge.render_json(v, p_event, p_field || '.' || k)),
                      '{}'::jsonb)
        INTO v_out FROM jsonb_each(p_value) AS x(k, v);
      RETURN v_out;
    WHEN 'array' THEN
      SELECT coalesce(jsonb_agg(nudge.render_json(v, p_event, format('%s[%s]', p_field, i - 1))
                                ORDER BY i), '[]'::jsonb)
        INTO v_out FROM jsonb_array_elements(p_value) WITH ORDINALITY AS x(v, i);
      RETURN v_out;
    ELSE
      RETURN p_value;
  END CASE;
END $$;
COMMENT ON FUNCTION nudge.render_json(jsonb, nudge.events, text) IS
  'A JSON value with the placeholders of every string in it rendered for the event (a string that is one placeholder takes the value''s own JSON type); NU422 naming the field path when the event lacks a value.';

-- The fast way to render a whole template: one pass over its JSON text and one parse, where
-- rendering value by value cost a query per object. A placeholder is replaced by the value's
-- text, JSON-escaped; with p_typed, a string that is one placeholder ("{{data.x}}") becomes the
-- value itself. NULL when the event lacks a value: nudge.render_json then says which field.
CREATE FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events, p_typed boolean)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rest  text := p_template::text;
  v_out   text := '';
  v_open  integer;
  v_close integer;
  v_value jsonb;
  v_text  text;
BEGIN
  IF position('{{' IN v_rest) = 0 THEN
    RETURN p_template;
  END IF;
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    v_value := nudge.event_value(p_event, btrim(substr(v_rest, v_open + 2, v_close - 1)));
    IF v_value IS NULL THEN
      RETURN NULL;
    END IF;
    IF p_typed AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
       AND substr(v_rest, v_open + v_close + 3, 1) = '"'
       AND (v_open = 2 OR substr(v_rest, v_open - 2, 1) <> '\') THEN
      -- "{{data.x}}": the quotes go, the value stays whatever JSON it is.
      v_out := v_out || substr(v_rest, 1, v_open - 2) || v_value::text;
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSE
      v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
      v_text := to_jsonb(v_text)::text;  -- escaped for inside a JSON string, quotes and all
      v_out := v_out || substr(v_rest, 1, v_open - 1) || substr(v_text, 2, length(v_text) - 2);
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
  END LOOP;
  RETURN (v_out || v_rest)::jsonb;
END $$;
COMMENT ON FUNCTION nudge.render_template(jsonb, nudge.events, boolean) IS
  'A JSON template with every placeholder rendered for the event (with p_typed a string that is one placeholder becomes the value itself, of its own JSON type); NULL when the event lacks a value.';

-- ---------------------------------------------------------------------------------------------
-- Checking a rule when it is saved
-- ---------------------------------------------------------------------------------------------

-- The fields a remind template may hold: those of a create, with delay_seconds instead of
-- run_at, and the entity optional (default: the event's).
CREATE FUNCTION nudge.template_field_type(p_field text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_field IN ('entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'cron',
                     'timezone', 'target', 'stop_condition_type', 'stop_condition_value',
                     'ends_at', 'misfire_policy') THEN 'string'
    WHEN p_field IN ('interval_seconds', 'interval_minutes', 'max_fires', 'max_attempts',
                     'delay_seconds') THEN 'number'
    WHEN p_field = 'payload' THEN 'object'
  END
$$;
COMMENT ON FUNCTION nudge.template_field_type(text) IS
  'The JSON type of a field of a remind template (string, number or object), NULL for a field a template cannot hold.';

-- Checks the shape of an object: every key is one of p_known (22023 naming the first unknown
-- one, under p_prefix).
CREATE FUNCTION nudge.check_keys(p_object jsonb, p_known text[], p_prefix text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key text;
BEGIN
  FOR v_key IN SELECT k FROM jsonb_object_keys(p_object) k ORDER BY k LOOP
    IF NOT v_key = ANY (p_known) THEN
      PERFORM nudge.reject(p_prefix || v_key, 'is not a known field');
    END IF;
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.check_keys(jsonb, text[], text) IS
  'Raises 22023 naming p_prefix||key for the first key of p_object (in key order) that is not in p_known; otherwise does nothing.';

-- The create item a remind template gives for an event: rendered, with the entity defaulting to
-- the event's and the first fire from delay_seconds after the event. With p_sample, the data
-- placeholders that make up a whole target stand for a target that suits the channel, so a
-- template can be checked when the data is not known yet.
CREATE FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_fields  jsonb := p_template - 'payload' - 'delay_seconds' - 'interval_minutes';
  v_item    jsonb := nudge.render_template(v_fields, p_event, false);
  v_payload jsonb := nudge.render_template(p_template->'payload', p_event, true);
  v_key     text;
  v_value   jsonb;
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
  IF p_template ? 'interval_minutes' THEN
    v_item := v_item || jsonb_build_object('interval_seconds',
                                           (p_template->>'interval_minutes')::integer * 60);
  END IF;
  RETURN v_item || jsonb_build_object('run_at', p_event.occurred_at + interval '1 second' *
    CASE WHEN v_item->>'schedule_type' = 'recurring'
         THEN coalesce((p_template->>'delay_seconds')::integer,
                       (v_item->>'interval_seconds')::integer, 0)
         ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END);
END $$;
COMMENT ON FUNCTION nudge.reminder_item(jsonb, nudge.events) IS
  'The create item a remind template gives for an event: every string rendered, the entity defaulting to the event''s, run_at delay_seconds after the event occurred (recurring: by default one interval); NU422 when the event lacks a value.';

CREATE FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    IF v_type = 'number' AND NOT (v_value::text ~ '^-?[0-9]{1,10}$') THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a whole number');
    END IF;
    IF v_type = 'string' THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    PERFORM nudge.check_placeholders(s, 'action.reminder.payload')
       FROM jsonb_path_query(p_template->'payload', '$.**') j,
            LATERAL (SELECT j #>> '{}' AS s) x
      WHERE jsonb_typeof(j) = 'string';
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
END $$;
COMMENT ON FUNCTION nudge.check_remind_template(jsonb, text) IS
  'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, an unknown placeholder, or anything a create would refuse for a sample event; otherwise does nothing.';

-- The template with every data placeholder replaced by a sample value (a target made of data
-- only by an address that suits the channel), for checking.
CREATE FUNCTION nudge.sample_template(p_template jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(
           CASE WHEN p_template->>'target' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                THEN jsonb_set(p_template, '{target}',
                               to_jsonb(CASE p_template->>'channel'
                                          WHEN 'email' THEN 'sample@example.com'
                                          ELSE 'https://example.com/sample' END))
                ELSE p_template END::text,
           '\{\{\s*data\.[^{}]*?\s*\}\}', 'sample', 'g')::jsonb
$$;
COMMENT ON FUNCTION nudge.sample_template(jsonb) IS
  'A remind template with its data placeholders replaced by sample values, a target made of data only by an address that suits the channel.';

CREATE FUNCTION nudge.check_rule(p_rule nudge.rules) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_type  text := p_rule.action->>'type';
  v_key   text;
  v_value jsonb;
BEGIN
  IF p_rule.name IS NULL OR length(p_rule.name) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('name', 'must be 1 to 200 characters');
  END IF;
  IF p_rule.event_type IS NULL OR length(p_rule.event_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters');
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
         OR length(p_rule.action->'flag'->>'key') NOT BETWEEN 1 AND 200 THEN
        PERFORM nudge.reject('action.flag.key', 'must be a flag key of 1 to 200 characters');
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
END $$;
COMMENT ON FUNCTION nudge.check_rule(nudge.rules) IS
  'Raises 22023 naming the field (name, event_type, when.<path>, action.<path>) when a rule cannot be saved: an unknown field or placeholder, a wrong type, or a template a create would refuse; otherwise does nothing.';

CREATE FUNCTION nudge.rule_is_checked_before_saving() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM nudge.check_rule(NEW);
  NEW.compiled := nudge.compile_rule(NEW);
  NEW.updated_at := now();
  RETURN NEW;
END $$;
COMMENT ON FUNCTION nudge.rule_is_checked_before_saving() IS
  'Trigger: every inserted or updated rule passes nudge.check_rule (plain SQL included) and is compiled for batches of events; updated_at tells when it last changed.';

CREATE TRIGGER rule_is_checked_before_saving
  BEFORE INSERT OR UPDATE ON nudge.rules
  FOR EACH ROW EXECUTE FUNCTION nudge.rule_is_checked_before_saving();

-- ---------------------------------------------------------------------------------------------
-- Compiling a rule for batches of events
--
-- A batch runs each rule once over all its events with one statement, built from SQL
-- expressions made when the rule is saved: a template becomes nested replace() calls over its
-- JSON text, every piece of user text inside quote_literal. The expressions read a row `e` of
-- the batch (id, event_type, entity_type, entity_id, data, occurred_at); a value the event
-- lacks makes the result NULL, and the batch then takes the item-by-item path, which names it.
-- ---------------------------------------------------------------------------------------------

-- STABLE, as to_jsonb is: declared IMMUTABLE it would not be inlined, and a batch calls it for
-- every placeholder of every event.
CREATE FUNCTION nudge.json_text(p_value jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT left(right(to_jsonb(coalesce(p_value #>> '{}', p_value::text))::text, -1), -1)
$$;
COMMENT ON FUNCTION nudge.json_text(jsonb) IS
  'A JSON value as text escaped for the inside of a JSON string (a string''s own text, anything else its JSON text).';

CREATE FUNCTION nudge.placeholder_sql(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE p_name
           WHEN 'entity_type' THEN 'to_jsonb(e.entity_type)'
           WHEN 'entity_id' THEN 'to_jsonb(e.entity_id)'
           WHEN 'event_type' THEN 'to_jsonb(e.event_type)'
           WHEN 'event_id' THEN 'to_jsonb(e.id)'
           ELSE format('(e.data #> %L::text[])', string_to_array(substr(p_name, 6), '.')::text) END
$$;
COMMENT ON FUNCTION nudge.placeholder_sql(text) IS
  'The SQL expression (over a batch row e) for the JSON value a known placeholder name stands for.';

CREATE FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_sql   text := quote_literal(p_template::text);
  v_match text[];
  v_value text;
BEGIN
  FOR v_match IN SELECT DISTINCT ON (m[1]) m
                   FROM regexp_matches(p_template::text, '(\{\{\s*([^{}]*?)\s*\}\})', 'g') m LOOP
    v_value := nudge.placeholder_sql(btrim(v_match[2]));
    IF p_typed THEN
      -- "{{x}}" (not an escaped \") becomes the value itself.
      v_sql := format('regexp_replace(%s, %L, replace((%s)::text, %L, %L), %L)', v_sql,
                      '(?<!\\)"' || regexp_replace(v_match[1], '([][\\^$.|?*+(){}])', '\\\1', 'g')
                        || '"',
                      v_value, '\', '\\', 'g');
    END IF;
    v_sql := format('replace(%s, %L, nudge.json_text(%s))', v_sql, v_match[1], v_value);
  END LOOP;
  RETURN format('(%s)::jsonb', v_sql);
END $$;
COMMENT ON FUNCTION nudge.compile_template(jsonb, boolean) IS
  'The SQL expression (over a batch row e) that renders a JSON template as nudge.render_template would, NULL where the event lacks a value.';

CREATE FUNCTION nudge.compile_rule(p_rule nudge.rules) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_template jsonb := p_rule.action->'reminder';
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
      RETURN v_out || jsonb_build_object(
        'fields', nudge.compile_template(v_template - 'payload' - 'delay_seconds' - 'interval_minutes'
                                         || CASE WHEN v_template ? 'interval_minutes'
                                                 THEN jsonb_build_object('interval_seconds',
                                                        (v_template->>'interval_minutes')::integer * 60)
                                                 ELSE '{}'::jsonb END, false),
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
COMMENT ON FUNCTION nudge.compile_rule(nudge.rules) IS
  'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind fields, payload and run_at; for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';

-- ---------------------------------------------------------------------------------------------
-- Managing rules
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.create_rule(p_name text, p_event_type text, p_action jsonb,
                                  p_when jsonb DEFAULT '{}'::jsonb, p_enabled boolean DEFAULT true)
RETURNS nudge.rules
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO nudge.rules (name, event_type, action, "when", enabled)
  VALUES (p_name, p_event_type, p_action, coalesce(p_when, '{}'::jsonb), coalesce(p_enabled, true))
  RETURNING *
$$;
COMMENT ON FUNCTION nudge.create_rule(text, text, jsonb, jsonb, boolean) IS
  'Saves a new rule (enabled unless p_enabled is false) after nudge.check_rule; 22023 naming the field otherwise.';

CREATE FUNCTION nudge.update_rule(p_id bigint, p_name text DEFAULT NULL,
                                  p_event_type text DEFAULT NULL, p_action jsonb DEFAULT NULL,
                                  p_when jsonb DEFAULT NULL, p_enabled boolean DEFAULT NULL)
RETURNS nudge.rules
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rule nudge.rules;
BEGIN
  UPDATE nudge.rules
     SET name = coalesce(p_name, name), event_type = coalesce(p_event_type, event_type),
         action = coalesce(p_action, action), "when" = coalesce(p_when, "when"),
         enabled = coalesce(p_enabled, enabled)
   WHERE id = p_id
  RETURNING * INTO v_rule;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'rule % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_rule;
END $$;
COMMENT ON FUNCTION nudge.update_rule(bigint, text, text, jsonb, jsonb, boolean) IS
  'Changes the given parts of a rule (NULL keeps one) after nudge.check_rule; the reminders it already created are left as they are; NU404 for a missing rule, 22023 naming the field for a bad one.';

CREATE FUNCTION nudge.delete_rule(p_id bigint) RETURNS nudge.rules
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rule nudge.rules;
BEGIN
  DELETE FROM nudge.rules WHERE id = p_id RETURNING * INTO v_rule;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'rule % does not exist', p_id USING ERRCODE = 'NU404';
  END IF;
  RETURN v_rule;
END $$;
COMMENT ON FUNCTION nudge.delete_rule(bigint) IS
  'Deletes a rule and returns it; the reminders it created are left as they are; NU404 for a missing rule.';

-- ---------------------------------------------------------------------------------------------
-- Running rules
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.rule_matches(p_when jsonb, p_event nudge.events) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_when = '{}'::jsonb
      OR NOT EXISTS (SELECT 1 FROM jsonb_each(p_when) AS c(name, value)
                      WHERE nudge.event_value(p_event, c.name) IS DISTINCT FROM c.value)
$$;
COMMENT ON FUNCTION nudge.rule_matches(jsonb, nudge.events) IS
  'True when every condition of p_when holds for the event: the named value exists and equals the given JSON value.';

-- Runs one rule's action for an event; its effect as JSON. A template the event cannot fill, or
-- that fills to a value a create refuses, raises NU422 "rule <id>: <field>: <problem>".
CREATE FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_made      record;
  v_created   boolean;
  v_reminder  nudge.reminders;
  v_flag      nudge.status_flags;
  v_cancelled bigint[];
  v_effect    jsonb;
BEGIN
  PERFORM set_config('nudge.rule_id', p_rule.id::text, true);
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      PERFORM set_config('nudge.rule_path', 'action.reminder.', true);
      SELECT c.created, c.reminder INTO v_made
        FROM nudge.create_reminder_from_item(
               nudge.reminder_item(p_rule.action->'reminder', p_event)) c;
      v_created := v_made.created;
      v_reminder := v_made.reminder;  -- rule_id and event_id: the columns' defaults
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'remind',
                                     'reminder', nudge.reminder_json(v_reminder),
                                     'created', v_created);
    WHEN 'set_flag' THEN
      PERFORM set_config('nudge.rule_path', 'action.flag.', true);
      v_flag := nudge.set_flag(nudge.render_text(p_rule.action->'flag'->>'key', p_event,
                                                 'action.flag.key') #>> '{}',
                               (p_rule.action->'flag'->>'value')::boolean);
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'set_flag',
                                     'flag', to_jsonb(v_flag));
    ELSE
      PERFORM set_config('nudge.rule_path', 'action.cancel.', true);
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
COMMENT ON FUNCTION nudge.apply_rule(nudge.rules, nudge.events) IS
  'Runs one rule''s action for an event (leaving the rule named in nudge.rule_id for the caller to restore) and returns its effect ({rule_id, type, reminder, created} | {rule_id, type, flag} | {rule_id, type, cancelled}); a template the event cannot fill, or that fills to a value a create or a flag refuses, raises NU422 "rule <id>: <field path>: <problem>".';

-- Records an event and runs its rules; p_own marks Nudge's own events (nudge.*).
CREATE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text,
                                   p_data jsonb, p_key text, p_occurred_at timestamptz,
                                   p_own boolean)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    PERFORM set_config('nudge.event_depth', (v_depth + 1)::text, true),
            set_config('nudge.event_id', v_event.id::text, true);
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
    PERFORM set_config('nudge.event_depth', v_depth::text, true),
            set_config('nudge.event_id', coalesce(v_cause, ''), true),
            set_config('nudge.rule_id', coalesce(v_rule_id, ''), true),
            set_config('nudge.rule_path', coalesce(v_path, ''), true);
  END IF;
  v_event.effects := v_effects;
  INSERT INTO nudge.events OVERRIDING SYSTEM VALUE SELECT v_event.*;
  RETURN jsonb_build_object('created', true, 'event', nudge.event_json(v_event),
                            'effects', v_effects);
END $$;
COMMENT ON FUNCTION nudge.record_event(text, text, text, jsonb, text, timestamptz, boolean) IS
  'Records an event and runs every enabled rule of its type whose conditions hold; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing; a chain deeper than 8 events is recorded as refused and its rules are not run.';

CREATE FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text,
                                 p_data jsonb DEFAULT '{}'::jsonb, p_key text DEFAULT NULL,
                                 p_occurred_at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters');
  END IF;
  IF p_event_type LIKE 'nudge.%' THEN
    PERFORM nudge.reject('event_type', 'must not start with "nudge.": those are Nudge''s own');
  END IF;
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters');
  END IF;
  IF p_data IS NULL OR jsonb_typeof(p_data) <> 'object' THEN
    PERFORM nudge.reject('data', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_data) > 65536 THEN
    PERFORM nudge.reject('data', 'must be at most 64 KiB');
  END IF;
  IF length(p_key) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('key', 'must be 1 to 200 characters');
  END IF;
  RETURN nudge.record_event(p_event_type, p_entity_type, p_entity_id, p_data, p_key,
                            p_occurred_at, false);
END $$;
COMMENT ON FUNCTION nudge.emit_event(text, text, text, jsonb, text, timestamptz) IS
  'Records an event and runs every enabled rule of its type whose conditions hold, in the caller''s transaction; answers {created, event, effects}. The same key again answers the first event and effects with created = false and changes nothing, even when sent concurrently. A rule that cannot be rendered for a posted event raises NU422 (nothing is written); for Nudge''s own events it is recorded in the effects. A chain deeper than 8 events is recorded as refused and its rules are not run.';

-- The item-by-item path of nudge.emit_events: exact errors, keys, and events that share an
-- entity (whose order matters).
CREATE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_item   jsonb;
  v_index  integer := 0;
  v_out    jsonb[] := '{}';  -- appended in place; a jsonb array would be copied whole each time
  v_field  text;
  v_detail text;
  v_state  text;
BEGIN
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      v_out := v_out || nudge.emit_event(
                 p_event_type => v_item->>'event_type', p_entity_type => v_item->>'entity_type',
                 p_entity_id => v_item->>'entity_id',
                 p_data => coalesce(v_item->'data', '{}'::jsonb), p_key => v_item->>'key',
                 p_occurred_at => (v_item->>'occurred_at')::timestamptz);
      v_index := v_index + 1;
    END LOOP;
  EXCEPTION WHEN invalid_parameter_value OR SQLSTATE 'NU422' THEN
    GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT,
                            v_state = RETURNED_SQLSTATE;
    RAISE EXCEPTION '%', CASE WHEN v_state = 'NU422' THEN format('items[%s]: %s', v_index, v_detail)
                              ELSE format('items[%s].%s', v_index, v_detail) END
      USING ERRCODE = v_state, COLUMN = format('items[%s].%s', v_index, v_field);
  END;
  RETURN to_jsonb(v_out);
END $$;
COMMENT ON FUNCTION nudge.emit_events_one_by_one(jsonb) IS
  'nudge.emit_event for every item of p_items, in order, all or nothing; an error names its item: 22023 "items[<index>].<field>: <problem>" or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';

CREATE FUNCTION nudge.emit_events(p_items jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_rule  nudge.rules;
  v_items jsonb;
  v_out   jsonb;
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
          EXECUTE format(
            'INSERT INTO pg_temp.nudge_batch_effect (ord, i, rule_id, item)
             SELECT e.ord, row_number() OVER (ORDER BY e.ord) - 1, %s,
                    jsonb_build_object(''entity_type'', e.entity_type, ''entity_id'', e.entity_id)
                               || %s || coalesce(jsonb_build_object(''payload'', %s), ''{}'')
                               || jsonb_build_object(''run_at'', %s, ''rule_id'', %s,
                                                     ''event_id'', e.id)
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.id, v_rule.compiled->>'fields', coalesce(v_rule.compiled->>'payload', 'NULL'),
            v_rule.compiled->>'run_at', v_rule.id, v_rule.event_type, v_rule.compiled->>'when');
          IF EXISTS (SELECT 1 FROM pg_temp.nudge_batch_effect f
                      WHERE f.rule_id = v_rule.id AND (f.item IS NULL OR
                            (v_rule.action->'reminder' ? 'payload' AND NOT f.item ? 'payload'))) THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          v_items := (SELECT jsonb_agg(f.item ORDER BY f.ord) FROM pg_temp.nudge_batch_effect f
                       WHERE f.rule_id = v_rule.id);
          IF v_items IS NOT NULL THEN
            UPDATE pg_temp.nudge_batch_effect f
               SET effect = jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                               'reminder', c.reminder, 'created', c.created)
              FROM nudge.create_reminders(v_items) c
             WHERE f.rule_id = v_rule.id AND f.i = c.item;
          END IF;
        WHEN 'set_flag' THEN
          EXECUTE format(
            'INSERT INTO pg_temp.nudge_batch_effect (ord, i, rule_id, item)
             SELECT e.ord, e.ord, %s, jsonb_build_object(''key'', (%s) #>> ''{}'')
               FROM pg_temp.nudge_batch_event e WHERE e.event_type = %L AND %s',
            v_rule.id, v_rule.compiled->>'key', v_rule.event_type, v_rule.compiled->>'when');
          IF EXISTS (SELECT 1 FROM pg_temp.nudge_batch_effect f
                      WHERE f.rule_id = v_rule.id
                        AND coalesce(length(f.item->>'key'), 0) NOT BETWEEN 1 AND 200) THEN
            RAISE EXCEPTION USING ERRCODE = 'NU000';
          END IF;
          -- One row per key: every event that sets a key sets it to the rule's one value.
          WITH set AS (
            INSERT INTO nudge.status_flags AS sf (key, value)
            SELECT DISTINCT f.item->>'key', (v_rule.action->'flag'->>'value')::boolean
              FROM pg_temp.nudge_batch_effect f WHERE f.rule_id = v_rule.id
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
            RETURNING sf.*),
          by_key AS (SELECT set.key, to_jsonb(set) AS flag FROM set)
          UPDATE pg_temp.nudge_batch_effect f
             SET effect = jsonb_build_object('rule_id', v_rule.id, 'type', 'set_flag',
                                             'flag', k.flag)
            FROM by_key k WHERE f.rule_id = v_rule.id AND k.key = f.item->>'key';
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

    WITH effects AS (
      SELECT f.ord, jsonb_agg(f.effect ORDER BY f.rule_id) AS effects
        FROM pg_temp.nudge_batch_effect f GROUP BY f.ord
    ), recorded AS (
      INSERT INTO nudge.events AS ev OVERRIDING SYSTEM VALUE
      SELECT e.id, e.event_type, e.entity_type, e.entity_id, e.data, NULL, e.occurred_at, now(),
             NULL, 0, coalesce(x.effects, '[]'), NULL
        FROM pg_temp.nudge_batch_event e LEFT JOIN effects x ON x.ord = e.ord ORDER BY e.ord
      RETURNING ev.*)
    SELECT jsonb_agg(jsonb_build_object('created', true, 'event', nudge.event_json(r),
                                        'effects', r.effects) ORDER BY e.ord)
      INTO v_out
      FROM recorded r JOIN pg_temp.nudge_batch_event e ON e.id = r.id;
    RETURN v_out;
  EXCEPTION WHEN SQLSTATE 'NU000' OR SQLSTATE 'NU422' OR data_exception
                 OR integrity_constraint_violation THEN
    NULL;  -- rolled back to the block's start: the item-by-item path answers
  END;
  RETURN nudge.emit_events_one_by_one(p_items);
END $$;
COMMENT ON FUNCTION nudge.emit_events(jsonb) IS
  'Records every item of p_items (objects with event_type, entity_type, entity_id, data, key, occurred_at) and runs their rules as nudge.emit_event would, in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>].<field>: <problem>" or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';

-- ---------------------------------------------------------------------------------------------
-- Nudge's own lifecycle, as events
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.emit_reminder_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.status = 'FAILED' THEN
    PERFORM nudge.record_event('nudge.reminder_failed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reminder', nudge.reminder_json(NEW),
                                                  'last_error', NEW.last_error),
                               NULL, NULL, true);
  ELSE
    PERFORM nudge.record_event('nudge.reminder_completed', NEW.entity_type, NEW.entity_id,
                               jsonb_build_object('reason', NEW.completed_reason,
                                                  'reminder', nudge.reminder_json(NEW)),
                               NULL, NULL, true);
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.emit_reminder_event() IS
  'Trigger: a reminder that ends other than by its one fire emits nudge.reminder_completed (data.reason: max_fires, ends_at, stop_condition or cancelled; data.reminder) or nudge.reminder_failed (data.reminder, data.last_error) for its entity, in the same transaction.';

-- A one_time reminder completing by its fire ('fired') is the normal end of most reminders and
-- emits nothing: it would put an event on the worker's hottest path.
CREATE TRIGGER reminder_end_emits_an_event
  AFTER UPDATE OF status ON nudge.reminders
  FOR EACH ROW
  WHEN (OLD.status IN ('ACTIVE', 'PAUSED') AND NEW.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
        AND NEW.completed_reason <> 'fired')
  EXECUTE FUNCTION nudge.emit_reminder_event();

CREATE TRIGGER reminder_created_stopped_emits_an_event
  AFTER INSERT ON nudge.reminders
  FOR EACH ROW
  WHEN (NEW.status = 'COMPLETED')
  EXECUTE FUNCTION nudge.emit_reminder_event();

-- ---------------------------------------------------------------------------------------------
-- Stop flags set in bulk
-- ---------------------------------------------------------------------------------------------

-- A batch of events sets a flag per event: one statement for all of them, not a PL/pgSQL call
-- per row. The keys go to the index as an array, as the transition table has no statistics.
DROP TRIGGER status_flag_true_completes_its_reminders ON nudge.status_flags;
DROP FUNCTION nudge.complete_reminders_stopped_by_flag();

CREATE FUNCTION nudge.complete_reminders_stopped_by_flags() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE nudge.reminders
     SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(), updated_at = now()
   WHERE stop_condition_type = 'db_check'
     AND stop_condition_value = ANY (ARRAY(SELECT f.key FROM changed_flags f WHERE f.value))
     AND status IN ('ACTIVE', 'PAUSED');
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.complete_reminders_stopped_by_flags() IS
  'Trigger: every live reminder stopped by a flag that is true after an insert or update statement is COMPLETED (stop_condition) in the same transaction, so none is claimed after it commits.';

-- Transition tables take one event per trigger, and no column list.
CREATE TRIGGER status_flags_inserted_true_complete_their_reminders
  AFTER INSERT ON nudge.status_flags
  REFERENCING NEW TABLE AS changed_flags
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.complete_reminders_stopped_by_flags();
CREATE TRIGGER status_flags_updated_true_complete_their_reminders
  AFTER UPDATE ON nudge.status_flags
  REFERENCING NEW TABLE AS changed_flags
  FOR EACH STATEMENT EXECUTE FUNCTION nudge.complete_reminders_stopped_by_flags();

-- ---------------------------------------------------------------------------------------------
-- Waking the workers
-- ---------------------------------------------------------------------------------------------

-- A session that sends the wake-up hint itself after commit (nudge-api) has no use for the
-- insert trigger: its condition skips the call (and with it 5% of a create).
DROP TRIGGER reminder_insert_wakes_workers ON nudge.reminders;
CREATE TRIGGER reminder_insert_wakes_workers
  AFTER INSERT ON nudge.reminders
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT
  WHEN (current_setting('nudge.notify_after_commit', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION nudge.wake_workers_for_inserted();

-- ---------------------------------------------------------------------------------------------
-- History
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION nudge.prune_history(p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_executions integer;
  v_attempts   integer;
  v_reminders  integer;
  v_events     integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('nudge.prune_history')) THEN
    RETURN 0;
  END IF;
  DELETE FROM nudge.executions e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.executions x
                              WHERE x.fired_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_executions = ROW_COUNT;
  DELETE FROM nudge.delivery_attempts a
   WHERE a.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.delivery_attempts x
                              WHERE x.attempted_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_attempts = ROW_COUNT;
  DELETE FROM nudge.reminders r
   WHERE r.id = ANY (ARRAY(SELECT x.id FROM nudge.reminders x
                            WHERE x.status IN ('COMPLETED', 'CANCELLED', 'FAILED')
                              AND x.finished_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_reminders = ROW_COUNT;
  DELETE FROM nudge.events e
   WHERE e.ctid = ANY (ARRAY(SELECT x.ctid FROM nudge.events x
                              WHERE x.received_at < now() - p_keep LIMIT p_limit));
  GET DIAGNOSTICS v_events = ROW_COUNT;
  RETURN v_executions + v_attempts + v_reminders + v_events;
END $$;
COMMENT ON FUNCTION nudge.prune_history(interval, integer) IS
  'Deletes up to p_limit each of executions, delivery attempts, finished reminders and events older than p_keep; when several workers call it at once only one does the work; returns how many rows went.';
