-- 0044: what the SQL functions take is what the REST API takes. Found by trying Nudge as a new
-- user.
--
-- 1. nudge.create_reminders (and so nudge.create_reminders_one_by_one) took any key in an item
--    and ignored those it did not know ("bogus": 1 made a reminder), and ignored
--    interval_minutes, which REST takes. An unknown key is now refused with 22023
--    "items[<index>].<key>: is not a known field", and interval_minutes is read as REST reads it
--    (1 to 527040, not with interval_seconds, only for recurring reminders). nudge.emit_events
--    refuses an unknown key of an event the same way. The fast paths check keys in the pass
--    that reads the items (jsonb - text[]: no query and no regexp per item).
-- 2. nudge.pause_reminders, resume_reminders and cancel_reminders answered count 0 for
--    p_channel => 'sms' and for p_ids => '{}', where REST answers 400: they now raise 22023
--    naming channel or ids.
-- 3. A log reminder took a target and ignored it, and an entity_type, entity_id or event_type
--    of only white space was taken where '' was refused. nudge.create_reminder refuses both (so
--    do the batch, REST and rules, which all create through it); reminders made before keep
--    their rows.

-- The fields a create item may hold: nudge.create_reminder's parameters without the p_, the
-- REST API's interval_minutes, and the rule and event a rule's reminder records.
CREATE FUNCTION nudge.create_item_fields() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT ARRAY['entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'run_at',
               'interval_seconds', 'interval_minutes', 'target', 'payload',
               'stop_condition_type', 'stop_condition_value', 'max_fires', 'ends_at', 'cron',
               'timezone', 'misfire_policy', 'max_attempts', 'request', 'rule_id', 'event_id']
$$;
COMMENT ON FUNCTION nudge.create_item_fields() IS 'The keys an item of nudge.create_reminders may hold: the parameters of nudge.create_reminder without p_, interval_minutes, rule_id and event_id.';

-- The fields an event item may hold.
CREATE FUNCTION nudge.event_item_fields() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT ARRAY['event_type', 'entity_type', 'entity_id', 'data', 'key', 'occurred_at']
$$;
COMMENT ON FUNCTION nudge.event_item_fields() IS 'The keys an item of nudge.emit_events may hold: the parameters of nudge.emit_event without p_.';

-- White space only: an inlined expression (btrim, no regexp), as '' is refused. NULL for NULL.
CREATE FUNCTION nudge.is_blank(p_text text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT btrim(p_text, E' \t\n\r\f\x0B') = ''
$$;
COMMENT ON FUNCTION nudge.is_blank(p_text text) IS 'true when p_text is empty or holds only spaces, tabs, line breaks, form feeds or vertical tabs; NULL for NULL.';

-- 1. Checking keys costs one operator when each is known: it now runs for every item of a
-- batch that takes the exact path.
CREATE OR REPLACE FUNCTION nudge.check_keys(p_object jsonb, p_known text[], p_prefix text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key text;
BEGIN
  IF p_object - p_known = '{}'::jsonb THEN
    RETURN;  -- every key is known: one operator, no query
  END IF;
  FOR v_key IN SELECT k FROM jsonb_object_keys(p_object) k ORDER BY k LOOP
    IF NOT v_key = ANY (p_known) THEN
      PERFORM nudge.reject(p_prefix || v_key, 'is not a known field');
    END IF;
  END LOOP;
END $$;

-- 3. Names of only white space, and a log reminder's target, are refused.
CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_row     nudge.reminders;
  v_run_at  timestamptz;
  v_stopped boolean := false;
  v_parsed  nudge.cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_type) THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_id) THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_event_type) THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_channel = 'log' AND p_target IS NOT NULL THEN
    PERFORM nudge.reject('target',
                         'a log reminder has no target (its fires go to the worker''s log)');
  END IF;
  IF length(p_target) > 2048 THEN
    PERFORM nudge.reject('target', 'must be at most 2048 characters');
  END IF;
  IF nudge.address_problem(p_channel, p_target) IS NOT NULL THEN
    PERFORM nudge.reject('target', nudge.address_problem(p_channel, p_target));
  END IF;
  IF p_misfire_policy IS NOT NULL AND p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge.reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy IN ('skip', 'fire_all') AND p_schedule_type = 'one_time' THEN
    PERFORM nudge.reject('misfire_policy', 'is only for recurring and cron reminders');
  END IF;
  IF p_max_attempts IS NOT NULL AND p_max_attempts NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('max_attempts', 'must be 1 to 100');
  END IF;
  IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
    PERFORM nudge.reject('payload', 'must be a JSON object');
  END IF;
  IF pg_column_size(p_payload) > 65536 THEN
    PERFORM nudge.reject('payload', 'must be at most 64 KiB');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
      PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
    END IF;
  ELSIF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF length(p_cron) > 200 THEN PERFORM nudge.reject('cron', 'must be at most 200 characters'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron reminders');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
  ELSE
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_schedule_type <> 'cron' AND (p_cron IS NOT NULL OR p_timezone IS NOT NULL) THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron reminders');
  END IF;
  v_run_at := nudge.first_run_at(p_schedule_type, p_run_at, v_parsed, v_zone);
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge.reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200) THEN
    PERFORM nudge.reject('stop_condition_value', 'must be a flag key of 1 to 200 characters');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge.reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;
  -- The request is checked by the trigger reminder_request_is_checked as the row is written.

  IF p_stop_condition_type = 'db_check' THEN
    SELECT coalesce(f.value, false) INTO v_stopped
      FROM nudge.status_flags f WHERE f.key = p_stop_condition_value;
    v_stopped := coalesce(v_stopped, false);
  END IF;

  LOOP
    -- A stopped reminder is inserted COMPLETED, which the identity index does not cover: look
    -- for the live one ourselves. Two such racing creates can only add finished rows.
    IF v_stopped THEN
      SELECT r.* INTO v_row FROM nudge.reminders r
       WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
         AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
      IF FOUND THEN
        RETURN QUERY SELECT false, v_row;
        RETURN;
      END IF;
    END IF;
    INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                      schedule_type, interval_seconds, next_run_at,
                                      stop_condition_type, stop_condition_value, max_fires, ends_at,
                                      cron, timezone, cron_schedule, misfire_policy, max_attempts,
                                      status, completed_reason, finished_at, request)
    VALUES (p_entity_type, p_entity_id, p_event_type, p_channel, p_target, p_payload,
            p_schedule_type, p_interval_seconds, v_run_at,
            p_stop_condition_type, p_stop_condition_value, p_max_fires, p_ends_at,
            CASE WHEN p_schedule_type = 'cron' THEN p_cron END, v_zone, v_parsed,
            coalesce(p_misfire_policy, 'fire_once'), p_max_attempts,
            CASE WHEN v_stopped THEN 'COMPLETED' ELSE 'ACTIVE' END,
            CASE WHEN v_stopped THEN 'stop_condition' END,
            CASE WHEN v_stopped THEN now() END,
            nullif(p_request, 'null'::jsonb))
    ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
    RETURNING r.* INTO v_row;
    IF FOUND THEN
      RETURN QUERY SELECT true, v_row;
      RETURN;
    END IF;
    -- Someone holds this identity: return their reminder. If it finished in between, insert again.
    SELECT r.* INTO v_row FROM nudge.reminders r
     WHERE r.entity_type = p_entity_type AND r.entity_id = p_entity_id
       AND r.event_type = p_event_type AND r.status IN ('ACTIVE', 'PAUSED');
    IF FOUND THEN
      RETURN QUERY SELECT false, v_row;
      RETURN;
    END IF;
  END LOOP;
END $$;

COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls; bad input (a name empty, over 200 characters or only white space, a target a log reminder cannot have, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires.';

-- 1. An item's interval_minutes, as REST reads it.
CREATE OR REPLACE FUNCTION nudge.create_reminder_from_item(p_item jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_minutes integer := (p_item->>'interval_minutes')::integer;
BEGIN
  -- As the REST API reads it.
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
           p_payload => coalesce(p_item->'payload', '{}'::jsonb),
           p_stop_condition_type => p_item->>'stop_condition_type',
           p_stop_condition_value => p_item->>'stop_condition_value',
           p_max_fires => (p_item->>'max_fires')::integer,
           p_ends_at => (p_item->>'ends_at')::timestamptz,
           p_cron => p_item->>'cron',
           p_timezone => p_item->>'timezone',
           p_misfire_policy => p_item->>'misfire_policy',
           p_max_attempts => (p_item->>'max_attempts')::integer,
           p_request => p_item->'request') c;
END $$;

COMMENT ON FUNCTION nudge.create_reminder_from_item(p_item jsonb) IS 'nudge.create_reminder with its arguments taken from a JSON object whose fields are its parameter names without the p_ prefix, or interval_minutes (1 to 527040, recurring only, not with interval_seconds: 22023 naming it otherwise) in place of interval_seconds; the same answer and errors. Other keys are not looked at.';

CREATE OR REPLACE FUNCTION nudge.item_type_problem(p_item jsonb) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_field text;
BEGIN
  FOREACH v_field IN ARRAY ARRAY['run_at', 'ends_at'] LOOP
    BEGIN
      PERFORM (p_item->>v_field)::timestamptz;
    EXCEPTION WHEN data_exception THEN
      RETURN v_field || ': must be an RFC 3339 time such as 2027-01-01T09:00:00Z';
    END;
  END LOOP;
  FOREACH v_field IN ARRAY ARRAY['interval_seconds', 'interval_minutes', 'max_fires', 'max_attempts'] LOOP
    BEGIN
      PERFORM (p_item->>v_field)::integer;
    EXCEPTION WHEN data_exception THEN
      RETURN v_field || ': must be a whole number from -2147483648 to 2147483647';
    END;
  END LOOP;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.item_type_problem(p_item jsonb) IS 'For a create item that failed: "<field>: <problem>" for its first time field (run_at, ends_at) or whole-number field (interval_seconds, interval_minutes, max_fires, max_attempts) whose text is not of that type, or NULL when each is.';

-- 1. A batch's unknown key, or an item with both intervals, takes the exact path.
CREATE OR REPLACE FUNCTION nudge.create_reminders(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
           coalesce(e.v->'payload', '{}'::jsonb), e.v->>'stop_condition_type',
           e.v->>'stop_condition_value', (e.v->>'max_fires')::integer,
           (e.v->>'ends_at')::timestamptz, e.v->>'cron', e.v->>'timezone', NULL, NULL,
           coalesce(e.v->>'misfire_policy', 'fire_once'), (e.v->>'max_attempts')::integer,
           (e.v->>'rule_id')::bigint, (e.v->>'event_id')::bigint,
           nullif(e.v->'request', 'null'::jsonb), NULL, NULL
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(v, ord)
     -- An item with a key it should not have is left out, which sends the batch down the exact
     -- path: one that is not known, or both intervals. (A bad interval_minutes, like a bad
     -- interval_seconds, fails a constraint.)
     WHERE e.v - nudge.create_item_fields() = '{}'::jsonb
       AND NOT e.v ?& ARRAY['interval_seconds', 'interval_minutes'];
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_plain := v_rows = jsonb_array_length(p_items) AND nudge.create_staged_reminders();
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

COMMENT ON FUNCTION nudge.create_reminders(p_items jsonb) IS 'Creates (or finds) every item of p_items (JSON objects with the fields of nudge.create_reminder, without the p_ prefix, or interval_minutes for interval_seconds, plus rule_id and event_id for reminders rules create) in one transaction and answers exactly as nudge.create_reminders_one_by_one would (an unknown key raises 22023 naming items[<index>].<key>), with one set-based INSERT when every item is plainly valid, new and distinct.';

-- 1. The exact path names an item's unknown key.
CREATE OR REPLACE FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) RETURNS TABLE(item integer, created boolean, reminder jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
      -- Typos are refused, not ignored, as by the REST API. (An item that is not an object
      -- has no keys: its entity_type is missing.)
      IF jsonb_typeof(v_item) = 'object' THEN
        PERFORM nudge.check_keys(v_item, nudge.create_item_fields(), '');
      END IF;
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
  EXCEPTION
    WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
      RAISE EXCEPTION 'items[%].%', v_index, v_detail
        USING ERRCODE = '22023', COLUMN = format('items[%s].%s', v_index, v_field);
    WHEN data_exception THEN  -- a cast of the item's text: say which field
      v_detail := nudge.item_type_problem(v_item);
      IF v_detail IS NULL THEN
        RAISE;
      END IF;
      RAISE EXCEPTION 'items[%].%', v_index, v_detail
        USING ERRCODE = '22023',
              COLUMN = format('items[%s].%s', v_index, split_part(v_detail, ':', 1));
  END;
END $$;

COMMENT ON FUNCTION nudge.create_reminders_one_by_one(p_items jsonb) IS 'Creates (or finds) every item of p_items with nudge.create_reminder_from_item, in order, in one transaction, one row per item; if any item holds a key nudge.create_item_fields does not name, is rejected, or holds a time or whole number that is not one, nothing is created and the 22023 error names it: "items[<index>].<field>: <problem>".';

-- 3. The set-based create leaves blank names and a log reminder's target to the exact path.
CREATE OR REPLACE FUNCTION nudge.create_staged_reminders() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- A cron's zone, parsed expression and first fire, and a recurring reminder's default start:
  -- a bad expression or zone raises 22023 and sends the batch down the exact path.
  UPDATE pg_temp.nudge_new_reminder b
     SET zone = s.zone, cron_schedule = s.parsed,
         run_at = nudge.first_run_at(b.schedule_type, b.run_at, s.parsed, s.zone)
    FROM (SELECT b2.item,
                 CASE WHEN b2.schedule_type = 'cron'
                      THEN nudge.checked_timezone(coalesce(b2.timezone, 'UTC')) END AS zone,
                 CASE WHEN b2.schedule_type = 'cron' THEN nudge.cron_parse(b2.cron) END AS parsed
            FROM pg_temp.nudge_new_reminder b2
           WHERE b2.schedule_type = 'cron' OR (b2.schedule_type = 'recurring' AND b2.run_at IS NULL)
          OFFSET 0) s
   WHERE b.item = s.item;

  IF EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
              WHERE b.ends_at < b.run_at OR b.run_at IS NULL
                 OR jsonb_typeof(b.payload) <> 'object'
                 OR nudge.is_blank(b.entity_type) OR nudge.is_blank(b.entity_id)
                 OR nudge.is_blank(b.event_type) OR (b.channel = 'log' AND b.target IS NOT NULL)
                 -- rules the create function checks and no constraint does
                 OR (b.schedule_type <> 'cron' AND (b.cron IS NOT NULL OR b.timezone IS NOT NULL))
                 OR (b.schedule_type = 'cron' AND length(b.cron) > 200))
     -- The stop flags looked up by key in one index scan: as a correlated EXISTS, the planner
     -- (no statistics on the temporary table) hashed every true flag instead.
     OR EXISTS (SELECT 1 FROM nudge.status_flags f
                 WHERE f.key = ANY (ARRAY(SELECT b.stop_condition_value
                                            FROM pg_temp.nudge_new_reminder b
                                           WHERE b.stop_condition_value IS NOT NULL))
                   AND f.value)
     OR EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b
                 GROUP BY b.entity_type, b.entity_id, b.event_type HAVING count(*) > 1) THEN
    RETURN false;
  END IF;

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
  RETURN NOT EXISTS (SELECT 1 FROM pg_temp.nudge_new_reminder b WHERE b.id IS NULL);
END $$;

COMMENT ON FUNCTION nudge.create_staged_reminders() IS 'Creates (or finds, by identity) the reminders staged in pg_temp.nudge_new_reminder with one set-based INSERT and sets each row''s id and created; false when a row is not plainly valid, new and distinct (its stop flag already true, two rows of one identity, a name of only white space, a log reminder''s target, a bound the create function checks: nothing is written) or was neither inserted nor found live (a concurrent create), so the caller takes the item-by-item path; a value a constraint refuses raises its error.';

-- 3. A rule's plain create leaves them to the exact path too.
CREATE OR REPLACE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) RETURNS nudge.reminders
LANGUAGE plpgsql
AS $$
DECLARE
  v_item     jsonb;
  v_payload  jsonb;
  v_interval integer;
  v_run_at   timestamptz;
  v_row      nudge.reminders;
BEGIN
  IF p_template ?| ARRAY['request', 'cron', 'timezone'] THEN
    RETURN NULL;
  END IF;
  v_item := jsonb_build_object('entity_type', p_event.entity_type, 'entity_id', p_event.entity_id)
            || nudge.render_template(p_template - 'payload' - 'delay_seconds' - 'interval_minutes',
                                     p_event, false);
  v_payload := CASE WHEN p_template ? 'payload'
                    THEN nudge.render_template(p_template->'payload', p_event, true)
                    ELSE '{}'::jsonb END;
  v_interval := coalesce((v_item->>'interval_seconds')::integer,
                         (p_template->>'interval_minutes')::integer * 60);
  v_run_at := p_event.occurred_at + interval '1 second' *
                CASE WHEN v_item->>'schedule_type' = 'recurring'
                     THEN coalesce((p_template->>'delay_seconds')::integer, v_interval, 0)
                     ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  -- Every check of nudge.create_reminder, in one simple expression (no query); NULL fails, and
  -- so does an event that lacks a value (the exact path names the field).
  IF NOT coalesce(
       v_item IS NOT NULL AND v_payload IS NOT NULL
       AND length(v_item->>'entity_type') BETWEEN 1 AND 200 AND length(v_item->>'entity_id') BETWEEN 1 AND 200
       AND length(v_item->>'event_type') BETWEEN 1 AND 200 AND v_item->>'channel' IN ('log', 'webhook', 'email')
       AND NOT (nudge.is_blank(v_item->>'entity_type') OR nudge.is_blank(v_item->>'entity_id')
                OR nudge.is_blank(v_item->>'event_type'))
       AND (v_item->>'channel' <> 'log' OR NOT v_item ? 'target')
       AND coalesce(length(v_item->>'target') <= 2048
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL, true)
       AND (NOT v_item ? 'misfire_policy' OR v_item->>'misfire_policy' = 'fire_once'
            OR (v_item->>'misfire_policy' IN ('skip', 'fire_all') AND v_item->>'schedule_type' <> 'one_time'))
       AND coalesce((v_item->>'max_attempts')::integer BETWEEN 1 AND 100, true)
       AND jsonb_typeof(v_payload) = 'object' AND pg_column_size(v_payload) <= 65536
       AND ((v_item->>'schedule_type' = 'one_time' AND v_interval IS NULL)
            OR (v_item->>'schedule_type' = 'recurring' AND v_interval BETWEEN 1 AND 31622400))
       AND ((NOT v_item ? 'stop_condition_type' AND NOT v_item ? 'stop_condition_value')
            OR (v_item->>'stop_condition_type' = 'db_check'
                AND length(v_item->>'stop_condition_value') BETWEEN 1 AND 200))
       AND coalesce((v_item->>'max_fires')::integer >= 1, true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true), false) THEN
    RETURN NULL;
  END IF;
  INSERT INTO nudge.reminders AS r (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, interval_seconds, next_run_at,
                                    stop_condition_type, stop_condition_value, max_fires, ends_at,
                                    misfire_policy, max_attempts)
  SELECT v_item->>'entity_type', v_item->>'entity_id', v_item->>'event_type', v_item->>'channel',
         v_item->>'target', v_payload, v_item->>'schedule_type', v_interval, v_run_at,
         v_item->>'stop_condition_type', v_item->>'stop_condition_value',
         (v_item->>'max_fires')::integer, (v_item->>'ends_at')::timestamptz,
         coalesce(v_item->>'misfire_policy', 'fire_once'), (v_item->>'max_attempts')::integer
   WHERE NOT EXISTS (SELECT 1 FROM nudge.status_flags f
                      WHERE f.key = v_item->>'stop_condition_value' AND f.value)
  ON CONFLICT (entity_type, entity_id, event_type) WHERE status IN ('ACTIVE', 'PAUSED') DO NOTHING
  RETURNING r.* INTO v_row;
  RETURN v_row;  -- all NULL when the identity is live or its stop flag is true
END $$;

-- 2. An empty id list and a channel that is not one are refused, as REST refuses them.
CREATE OR REPLACE FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- At most this many change per call; "more" tells the caller to call again.
  c_limit   constant integer := 10000;
  v_from    text[] := CASE p_change WHEN 'pause' THEN '{ACTIVE}'
                                    WHEN 'resume' THEN '{PAUSED}'
                                    ELSE '{ACTIVE,PAUSED}' END;
  v_ids     bigint[];
  v_more    boolean;
BEGIN
  IF p_ids IS NULL AND p_status IS NULL AND p_entity_type IS NULL AND p_entity_id IS NULL
     AND p_event_type IS NULL AND p_channel IS NULL THEN
    PERFORM nudge.reject('filter', 'name ids or at least one of status, entity_type, entity_id, '
                                   'event_type, channel (status ACTIVE matches every active reminder)');
  END IF;
  IF cardinality(p_ids) NOT BETWEEN 1 AND 1000 THEN
    PERFORM nudge.reject('ids', 'must hold 1 to 1000 reminder ids');
  END IF;
  IF p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
  END IF;
  IF p_status IS NOT NULL
     AND p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED', 'FAILED') THEN
    PERFORM nudge.reject('status', 'must be one of ACTIVE, PAUSED, COMPLETED, CANCELLED, FAILED');
  END IF;

  SELECT array_agg(m.id ORDER BY m.id) INTO v_ids
    FROM (SELECT r.id FROM nudge.reminders r
           WHERE r.status = ANY (v_from)
             AND (p_ids IS NULL OR r.id = ANY (p_ids))
             AND (p_status IS NULL OR r.status = p_status)
             AND (p_entity_type IS NULL OR r.entity_type = p_entity_type)
             AND (p_entity_id IS NULL OR r.entity_id = p_entity_id)
             AND (p_event_type IS NULL OR r.event_type = p_event_type)
             AND (p_channel IS NULL OR r.channel = p_channel)
           ORDER BY r.id LIMIT c_limit + 1
             FOR UPDATE) m;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > c_limit;
  v_ids := v_ids[1:c_limit];

  PERFORM CASE p_change WHEN 'pause' THEN nudge.pause_reminder(i.id)
                        WHEN 'resume' THEN nudge.resume_reminder(i.id)
                        ELSE nudge.cancel_reminder(i.id) END
     FROM unnest(v_ids) WITH ORDINALITY AS i(id, n) ORDER BY i.n;
  RETURN jsonb_build_object('count', cardinality(v_ids), 'ids', to_jsonb(v_ids), 'more', v_more);
END $$;

COMMENT ON FUNCTION nudge.change_matching_reminders(p_change text, p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses, resumes or cancels (p_change) up to 10,000 reminders that can take that change and match every given filter, in id order, each through the single-reminder function; answers {count, ids, more}; ids empty or over 1,000, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.pause_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Pauses up to 10,000 ACTIVE reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.pause_reminder would each; answers {count, ids, more}; more = true when others still match; ids empty or over 1,000, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.resume_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Resumes up to 10,000 PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.resume_reminder would each (missed occurrences follow the misfire policy); answers {count, ids, more}; ids empty or over 1,000, a status or channel that is not one, or no filter at all raises 22023 naming it.';
COMMENT ON FUNCTION nudge.cancel_reminders(p_ids bigint[], p_status text, p_entity_type text, p_entity_id text, p_event_type text, p_channel text) IS 'Cancels up to 10,000 ACTIVE or PAUSED reminders matching every given filter (ids: 1 to 1,000) in one transaction, as nudge.cancel_reminder would each (each emits nudge.reminder_completed with reason cancelled); answers {count, ids, more}; ids empty or over 1,000, a status or channel that is not one, or no filter at all raises 22023 naming it.';

-- 1. An event's unknown key takes the item-by-item path, which names it.
CREATE OR REPLACE FUNCTION nudge.record_events(p_items jsonb) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
     -- An unknown key is left out too: the item-by-item path names it.
     WHERE NOT x.v ? 'key' AND x.v - nudge.event_item_fields() = '{}'::jsonb;
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
          -- The rule's reminders go straight into the create's staging table, one row per event,
          -- each template rendered once (a MATERIALIZED row); the same statement says whether
          -- the events filled every field. A field the template does not give is NULL (the
          -- entity: the event's), as a create item without it.
          SELECT string_agg(format('%s AS %I', v_rule.compiled->'columns'->>c.name, c.name), ', ')
                   FILTER (WHERE v_rule.compiled->'columns' ? c.name),
                 string_agg(format('x.%I IS NULL', c.name), ' OR ')
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
                     'schedule_type', b.schedule_type, 'run_at', b.run_at,
                     'interval_seconds', b.interval_seconds, 'target', b.target,
                     'payload', b.payload, 'stop_condition_type', b.stop_condition_type,
                     'stop_condition_value', b.stop_condition_value, 'max_fires', b.max_fires,
                     'ends_at', b.ends_at, 'cron', b.cron, 'timezone', b.timezone,
                     'misfire_policy', b.misfire_policy, 'max_attempts', b.max_attempts,
                     'rule_id', b.rule_id, 'event_id', b.event_id, 'request', b.request)
                     ORDER BY b.item)
              INTO v_ords, v_items
              FROM pg_temp.nudge_new_reminder b;
            INSERT INTO pg_temp.nudge_batch_effect (rule_id, ord, i, effect)
            SELECT v_rule.id, v_ords[c.item + 1], c.item,
                   jsonb_build_object('rule_id', v_rule.id, 'type', 'remind',
                                      'reminder', c.reminder, 'created', c.created)
              FROM nudge.create_reminders_one_by_one(v_items) c;
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

COMMENT ON FUNCTION nudge.record_events(p_items jsonb) IS 'nudge.emit_events answered as the text of its jsonb (the same key order and spacing), for the API: records every item of p_items and runs their rules in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name) or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';
COMMENT ON FUNCTION nudge.emit_events(p_items jsonb) IS 'Records every item of p_items (objects with event_type, entity_type, entity_id, data, key, occurred_at, and no other key) and runs their rules as nudge.emit_event would, in one transaction, all or nothing, with each rule run once over all its events when no two share an entity and none has a key; an error names its item: 22023 "items[<index>].<field>: <problem>" (an unknown key: "items[<index>].<key>: is not a known field") or NU422 "items[<index>]: rule <id>: <field path>: <problem>"; Nudge''s own events that batch causes do not name their cause.';

CREATE OR REPLACE FUNCTION nudge.emit_events_one_by_one(p_items jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
      IF jsonb_typeof(v_item) = 'object' THEN
        PERFORM nudge.check_keys(v_item, nudge.event_item_fields(), '');
      END IF;
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

COMMENT ON FUNCTION nudge.emit_events_one_by_one(p_items jsonb) IS 'nudge.emit_event for every item of p_items, in order, all or nothing; an error names its item: 22023 "items[<index>].<field>: <problem>" (also for a key nudge.event_item_fields does not name) or NU422 "items[<index>]: rule <id>: <field path>: <problem>".';
