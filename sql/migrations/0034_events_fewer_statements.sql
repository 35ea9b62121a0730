-- 0034: an event runs fewer PL/pgSQL statements, queries and SET clauses on its way.
--
-- Measured with callgrind on postgres --single (bench.sh's two event rules, 20,000 events before,
-- the difference of 10 and 60 calls, each its own transaction): in a transaction, a PL/pgSQL
-- statement that is a simple expression costs about 2k instructions, one that runs a query
-- (PERFORM, INSERT, IF EXISTS) about 30k, and a call of a function with a SET clause 12k more
-- than one without. A single event 3,665k -> 3,535k instructions (folded statements and the
-- reminders' insert trigger 30k, the flag words' list 38k, five SET clauses fewer 62k); a single
-- nudge.create_reminder 1,389k -> 1,364k (the insert trigger).

-- A statement that inserts reminders records them in one query: the change log's row and the
-- wake-up hint (the same as nudge.queue_wake_up's) together, instead of an INSERT, an IF EXISTS
-- over the new rows, a call of nudge.queue_wake_up and its PERFORM.
CREATE OR REPLACE FUNCTION nudge.record_inserted_reminders() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hint text;  -- pg_notify's answer, unused
BEGIN
  -- Only what a statement asked for directly, in a session that audits, outside rules.
  IF pg_trigger_depth() = 1
     AND current_setting('nudge.audit', true) IS DISTINCT FROM 'off'
     AND coalesce(NULLIF(current_setting('nudge.event_depth', true), ''), '0') = '0' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    SELECT NULLIF(current_setting('nudge.actor', true), ''),
           NULLIF(current_setting('nudge.route', true), ''), 'reminder', i.id::text, 'insert'
      FROM inserted i;
  END IF;
  -- A session that notifies after its commit itself (nudge.notify_after_commit) needs no hint.
  WITH logged AS (
    INSERT INTO nudge.changes (kind, change, object_ids)
    SELECT 'reminder', 'created', array_agg(i.id) FROM inserted i HAVING count(*) > 0)
  SELECT pg_notify('nudge_due', '')::text INTO v_hint
   WHERE coalesce(current_setting('nudge.notify_after_commit', true), '') <> 'on'
     AND EXISTS (SELECT 1 FROM inserted i WHERE i.status = 'ACTIVE');
  RETURN NULL;
END $$;
COMMENT ON FUNCTION nudge.record_inserted_reminders() IS 'Statement trigger on reminders: for the rows an INSERT added, one nudge.audit row each (with nudge.actor, nudge.route and session_user) unless the statement ran in a trigger, in a session with nudge.audit = off or while rules run; one nudge.changes row (reminder, created) naming them all; and one wake-up hint when one of them is ACTIVE, unless the session has nudge.notify_after_commit = on.';

-- The checks of a posted event in one expression; the first failing one names its field, as before.
CREATE OR REPLACE FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text,
                                            p_data jsonb DEFAULT '{}'::jsonb, p_key text DEFAULT NULL,
                                            p_occurred_at timestamptz DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT coalesce(length(p_event_type) BETWEEN 1 AND 200 AND p_event_type NOT LIKE 'nudge.%'
                  AND length(p_entity_type) BETWEEN 1 AND 200
                  AND length(p_entity_id) BETWEEN 1 AND 200
                  AND jsonb_typeof(p_data) = 'object' AND pg_column_size(p_data) <= 65536
                  AND coalesce(length(p_key) BETWEEN 1 AND 200, true), false) THEN
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
  END IF;
  RETURN nudge.record_event(p_event_type, p_entity_type, p_entity_id, p_data, p_key,
                            p_occurred_at, false);
END $$;

-- The settings an event's rules run under are saved, set and given back in one statement each.
CREATE OR REPLACE FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text,
                                              p_data jsonb, p_key text, p_occurred_at timestamptz,
                                              p_own boolean) RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  -- A rule's action can complete reminders, whose lifecycle events run rules in turn: the
  -- depth of this event in that chain, and the event whose rules are running (so also the
  -- cause of any event they emit), travel in settings local to the transaction.
  v_depth   integer := coalesce(nullif(current_setting('nudge.event_depth', true), ''), '0')::integer;
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
                 CASE WHEN v_depth >= 8 THEN 'a chain of rules deeper than 8 events: not run' END)
             ::nudge.events;
  IF v_event.refused IS NULL THEN
    v_rules := ARRAY(SELECT r FROM nudge.rules r
                      WHERE r.event_type = p_event_type AND r.enabled ORDER BY r.id);
  ELSE
    RAISE WARNING 'nudge: event % (%) refused: %', v_event.id, p_event_type, v_event.refused;
  END IF;
  IF cardinality(v_rules) > 0 THEN
    v_set := set_config('nudge.event_depth', (v_depth + 1)::text, true)
             || set_config('nudge.event_id', v_event.id::text, true);
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

-- The rule's name and field path are set in one statement.
CREATE OR REPLACE FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  v_made      record;
  v_created   boolean := true;
  v_reminder  nudge.reminders;
  v_flag      nudge.status_flags;
  v_cancelled bigint[];
  v_effect    jsonb;
  v_set       text;  -- set_config's answer, unused: an assignment is cheaper than PERFORM's query
BEGIN
  CASE p_rule.action->>'type'
    WHEN 'remind' THEN
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.reminder.', true);
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
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.flag.', true);
      v_flag := nudge.set_flag(nudge.render_text(p_rule.action->'flag'->>'key', p_event,
                                                 'action.flag.key') #>> '{}',
                               (p_rule.action->'flag'->>'value')::boolean);
      v_effect := jsonb_build_object('rule_id', p_rule.id, 'type', 'set_flag',
                                     'flag', to_jsonb(v_flag));
    ELSE
      v_set := set_config('nudge.rule_id', p_rule.id::text, true)
               || set_config('nudge.rule_path', 'action.cancel.', true);
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

-- Both checks of a flag in one expression on the way to the write.
CREATE OR REPLACE FUNCTION nudge.set_flag(p_key text, p_value boolean) RETURNS nudge.status_flags
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_flag nudge.status_flags;
BEGIN
  IF NOT coalesce(length(p_key) BETWEEN 1 AND 200 AND p_value IS NOT NULL, false) THEN
    IF p_key IS NULL OR length(p_key) NOT BETWEEN 1 AND 200 THEN
      PERFORM nudge.reject('key', 'must be 1 to 200 characters');
    END IF;
    PERFORM nudge.reject('value', 'must be true or false');
  END IF;
  LOOP
    INSERT INTO nudge.status_flags AS f (key, value) VALUES (p_key, p_value)
    ON CONFLICT (key) DO NOTHING
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
    UPDATE nudge.status_flags AS f SET value = p_value WHERE f.key = p_key
    RETURNING f.* INTO v_flag;
    EXIT WHEN FOUND;
  END LOOP;
  RETURN v_flag;
END $$;

-- The stop flag is looked up by the INSERT itself (a stopped reminder inserts no row, as the
-- identity's live reminder does not), and the parts of the item are read where they are used.
CREATE OR REPLACE FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events)
RETURNS nudge.reminders
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

-- A key that is not letters only skips the list of the parser's words: a lookup in it built its
-- hash table of 190 words in every transaction that wrote a sentence with a flag (41k
-- instructions of an event whose reminder has a stop flag).
CREATE OR REPLACE FUNCTION nudge.words_flag(p_key text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
  -- A key the parser would read as something else (a word of the grammar, a date, a number) or
  -- that is not one plain token is quoted, with \ and " escaped. The words are
  -- api/word_lexicon.cpp's reserved_words(); tests/api/schedule_words_test.cpp reads each back.
  SELECT CASE WHEN p_key ~ '^[A-Za-z_][A-Za-z0-9_:.-]*$'
                   -- Every word is letters only: a key with anything else is none of them, and
                   -- the words' hash table (built per transaction) is not needed.
                   AND (p_key !~ '^[A-Za-z]+$' OR NOT lower(p_key) = ANY (ARRAY[
                'a', 'aedt', 'aest', 'akst', 'am', 'an', 'and', 'annually', 'apr', 'april', 'at',
                'aug', 'august', 'between', 'bst', 'cdt', 'cest', 'cet', 'cron', 'cst', 'daily',
                'day', 'days', 'dec', 'december', 'each', 'edt', 'eest', 'eet', 'eight', 'eleven',
                'est', 'every', 'feb', 'february', 'five', 'for', 'four', 'fri', 'friday',
                'fridays', 'from', 'gmt', 'hour', 'hourly', 'hours', 'hr', 'hrs', 'hst', 'in', 'is',
                'ist', 'jan', 'january', 'jst', 'jul', 'july', 'jun', 'june', 'kst', 'last', 'mar',
                'march', 'may', 'mdt', 'midnight', 'min', 'mins', 'minute', 'minutes', 'mon',
                'monday', 'mondays', 'month', 'monthly', 'months', 'most', 'msk', 'mst', 'next',
                'nine', 'noon', 'nov', 'november', 'now', 'oct', 'october', 'of', 'on', 'once',
                'one', 'only', 'past', 'pdt', 'pm', 'pst', 'sat', 'saturday', 'saturdays', 'sec',
                'second', 'seconds', 'secs', 'sep', 'sept', 'september', 'seven', 'six', 'starting',
                'sun', 'sunday', 'sundays', 'ten', 'the', 'this', 'three', 'through', 'thru', 'thu',
                'thur', 'thurs', 'thursday', 'thursdays', 'till', 'time', 'times', 'to', 'today',
                'tomorrow', 'tonight', 'true', 'tue', 'tues', 'tuesday', 'tuesdays', 'twelve',
                'two', 'until', 'utc', 'wed', 'wednesday', 'wednesdays', 'week', 'weekday',
                'weekdays', 'weekend', 'weekends', 'weekly', 'weeks', 'west', 'wet', 'year',
                'yearly', 'years', 'yesterday']))
              THEN p_key
              ELSE '"' || replace(replace(p_key, '\', '\\'), '"', '\"') || '"' END
$_$;

-- nudge.record_event, nudge.apply_rule, nudge.remind_plainly and nudge.render_text are only ever
-- called by functions that pin search_path (nudge.emit_event, the reminder event trigger, and one
-- another), so they run under that path without a SET clause of their own: 12k instructions a
-- call, five calls per event with bench.sh's two rules (those above are created without it).
ALTER FUNCTION nudge.render_text(text, nudge.events, text, boolean) RESET search_path;

-- Their guarantees are unchanged.
COMMENT ON FUNCTION nudge.emit_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone) IS 'Records an event and runs every enabled rule of its type whose conditions hold, in the caller''s transaction; answers {created, event, effects}. The same key again answers the first event and effects with created = false and changes nothing, even when sent concurrently. A rule that cannot be rendered for a posted event raises NU422 (nothing is written); for Nudge''s own events it is recorded in the effects. A chain deeper than 8 events is recorded as refused and its rules are not run.';
COMMENT ON FUNCTION nudge.record_event(p_event_type text, p_entity_type text, p_entity_id text, p_data jsonb, p_key text, p_occurred_at timestamp with time zone, p_own boolean) IS 'Records an event and runs every enabled rule of its type whose conditions hold; answers {created, event, effects}; the same key again answers the first event and effects and changes nothing; for Nudge''s own events (p_own) a rule that cannot run is recorded in the effects instead of failing; a chain deeper than 8 events is recorded as refused and its rules are not run.';
COMMENT ON FUNCTION nudge.apply_rule(p_rule nudge.rules, p_event nudge.events) IS 'Runs one rule''s action for an event (leaving the rule named in nudge.rule_id for the caller to restore) and returns its effect ({rule_id, type, reminder, created} | {rule_id, type, flag} | {rule_id, type, cancelled}); a template the event cannot fill, or that fills to a value a create or a flag refuses, raises NU422 "rule <id>: <field path>: <problem>".';
COMMENT ON FUNCTION nudge.set_flag(p_key text, p_value boolean) IS 'Sets a flag as INSERT ... ON CONFLICT DO UPDATE on nudge.status_flags would (an insert for a new key, an update for an existing one), so a true value completes the reminders waiting on it in the same transaction; returns the flag; 22023 naming key or value for bad input.';
COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';
COMMENT ON FUNCTION nudge.words_flag(p_key text) IS 'A stop flag key as the sentence gives it: as is when the parser reads it back as a flag, else in double quotes with \ and " escaped.';
