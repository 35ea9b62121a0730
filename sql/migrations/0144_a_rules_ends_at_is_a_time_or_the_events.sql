-- 0144: a remind rule's ends_at (explore26a #3). A data placeholder alone ({{data.deadline}})
-- is a time the event gives, checked at each event as a create checks one (RFC 3339 with an
-- offset, else 422 naming the rule and action.reminder.ends_at); it was refused when the rule was
-- saved, with PostgreSQL's own message and no field. A written ends_at must be RFC 3339 with an
-- offset, as a create's: "tomorrow" or "2030-01-01" were saved, and read at each event in the
-- session's zone (the same rule gave different instants over REST and from SQL).
--
-- Bodies only.

CREATE OR REPLACE FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    IF v_type = 'number' AND NOT (v_value::text ~ '^-?[0-9]+$') THEN
      PERFORM nudge.reject('action.reminder.' || v_key, 'must be a whole number');
    END IF;
    -- A whole number too long for an integer is out of the field's own range.
    IF v_type = 'number' AND v_value::text::numeric NOT BETWEEN -2147483648 AND 2147483647 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           format('must be a whole number from %s to %s',
                                  (nudge.whole_number_bounds(v_key))[1],
                                  (nudge.whole_number_bounds(v_key))[2]));
    END IF;
    -- A target may be a URL the worker keeps as a secret, named whole; a secret is nothing else.
    IF v_type = 'string' AND v_value #>> '{}' ~ '\{\{\s*secret\.'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.reject('action.reminder.' || v_key, CASE WHEN v_key = 'target'
        THEN 'a secret stands for a whole target: {{secret.NAME}} alone, the URL its value'
        ELSE 'cannot hold a secret: {{secret.NAME}} stands only for a whole webhook target or '
             'in request.headers' END);
    END IF;
    IF v_type = 'string'
       AND NOT (v_key = 'target' AND nudge.secret_address_name(v_value #>> '{}') IS NOT NULL) THEN
      PERFORM nudge.check_placeholders(v_value #>> '{}', 'action.reminder.' || v_key);
    END IF;
    -- These decide how every reminder of the rule is checked, when it is saved: one event's
    -- data cannot choose them (a timezone can: it is checked again at each event).
    IF v_key IN ('channel', 'schedule_type', 'cron', 'misfire_policy', 'stop_condition_type')
       AND strpos(v_value #>> '{}', '{{') > 0 THEN
      PERFORM nudge.reject('action.reminder.' || v_key,
                           'cannot hold placeholders: it is the same for every reminder the rule creates');
    END IF;
    -- A time is one value, never pieced together, and always with its offset: read in each
    -- session's zone, "2030-01-01" was a different instant over REST and from SQL (explore26a #3).
    IF v_key = 'ends_at' AND strpos(v_value #>> '{}', '{{') > 0
       AND NOT v_value #>> '{}' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$' THEN
      PERFORM nudge.reject('action.reminder.ends_at',
        'a placeholder stands for the whole time ({{data.deadline}}), whose value is an RFC 3339 time with an offset');
    ELSIF v_key = 'ends_at' AND strpos(v_value #>> '{}', '{{') = 0
          AND nudge.item_value_problem('ends_at', v_value) IS NOT NULL THEN
      PERFORM nudge.reject('action.reminder.ends_at', nudge.item_value_problem('ends_at', v_value));
    END IF;
  END LOOP;
  IF p_template ? 'payload' THEN
    -- Each string named by its place (action.reminder.payload.a[1]), as an event's missing
    -- value is named.
    PERFORM nudge.check_placeholders(s.value, s.place)
       FROM nudge.json_strings(p_template->'payload', 'action.reminder.payload') s;
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
  -- Said as REST's create says it (the sample create would state the range of a NULL).
  IF p_template->>'schedule_type' = 'recurring'
     AND NOT p_template ?| ARRAY['interval_seconds', 'interval_minutes'] THEN
    PERFORM nudge.reject('action.reminder.interval_seconds',
                         'is required for recurring (or interval_minutes)');
  END IF;

  -- Rendered for a sample event and created as a create would be, then rolled back: the
  -- template is checked like a create. Data placeholders stand for sample values; a target
  -- that is only data stands for an address that suits the channel.
  v_sample := ROW(0, p_event_type, 'sample', 'sample', '{}'::jsonb, NULL, now(), now(), NULL, 0,
                  '[]'::jsonb, NULL)::nudge.events;
  v_item := nudge.reminder_item(nudge.sample_template(p_template), v_sample);
  BEGIN
    -- Its end, were it created ended, is no event (nudge.emit_reminder_event); undone with it.
    PERFORM set_config('nudge.checking_rule', 'on', true);
    PERFORM * FROM nudge.create_reminder_from_item(v_item);
    RAISE EXCEPTION USING ERRCODE = 'NU000';  -- undo the sample reminder
  EXCEPTION
    WHEN SQLSTATE 'NU000' THEN NULL;
    WHEN invalid_parameter_value THEN
      GET STACKED DIAGNOSTICS v_field = COLUMN_NAME, v_detail = MESSAGE_TEXT;
      RAISE EXCEPTION 'action.reminder.%', v_detail
        USING ERRCODE = '22023', COLUMN = 'action.reminder.' || v_field;
  END;
END $_$;

COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder (in the payload, named by its place: action.reminder.payload.a[1]), a {{secret.NAME}} anywhere but alone in target, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, an ends_at that is neither an RFC 3339 time with an offset nor one data placeholder alone, or anything a create would refuse for a sample event; otherwise does nothing.';

CREATE OR REPLACE FUNCTION nudge.sample_template(p_template jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $_$
  SELECT regexp_replace(
           CASE WHEN p_template->>'target' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                THEN jsonb_set(p_template - 'request', '{target}',
                               to_jsonb(CASE p_template->>'channel'
                                          WHEN 'email' THEN 'sample@example.com'
                                          ELSE 'https://example.com/sample' END))
                ELSE p_template - 'request' END::text,
           '\{\{\s*data\.[^{}]*?\s*\}\}', 'sample', 'g')::jsonb
         || CASE WHEN p_template ? 'request'
                 THEN jsonb_build_object('request', p_template->'request') ELSE '{}'::jsonb END
         || CASE WHEN p_template->>'timezone' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                 THEN jsonb_build_object('timezone', 'UTC') ELSE '{}'::jsonb END
         || CASE WHEN p_template->>'ends_at' ~ '^\s*\{\{\s*data\.[^{}]*\}\}\s*$'
                 THEN jsonb_build_object('ends_at', '9999-12-31T00:00:00Z') ELSE '{}'::jsonb END
$_$;

COMMENT ON FUNCTION nudge.sample_template(p_template jsonb) IS 'A remind template with its data placeholders replaced by sample values (the request, whose placeholders are the reminder''s, left as it is), a target made of data only by an address that suits the channel, a timezone made of data only by UTC, an ends_at made of data only by 9999-12-31T00:00:00Z.';

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

COMMENT ON FUNCTION nudge.create_reminder_from_item(p_item jsonb) IS 'nudge.create_reminder with its arguments taken from a JSON object whose fields are its parameter names without the p_ prefix, or interval_minutes (1 to 527040, recurring only, not with interval_seconds: 22023 naming it otherwise) in place of interval_seconds, and run_at and ends_at as RFC 3339 text with an offset (22023 naming the field otherwise); the same answer and errors. Other keys are not looked at.';

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
  v_item := nudge.with_webhook_target(v_item, p_template, p_event);
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
                    AND nudge.address_problem(v_item->>'channel', v_item->>'target') IS NULL
                    AND (strpos(v_item->>'target', '{{') = 0
                         OR (nudge.secret_address_name(v_item->>'target') IS NOT NULL
                             AND nudge.unknown_secret_problem(v_item->>'target') IS NULL)), true)
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
       AND coalesce(nudge.is_rfc3339(v_item->>'ends_at'), true)
       AND coalesce((v_item->>'ends_at')::timestamptz >= v_run_at, true)
       AND nudge.time_problem((v_item->>'ends_at')::timestamptz) IS NULL
       AND NOT coalesce(nudge.is_blank(v_item->>'stop_condition_value'), false)
       AND v_run_at <= nudge.latest_fire(), false) THEN
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

COMMENT ON FUNCTION nudge.remind_plainly(p_template jsonb, p_event nudge.events) IS 'Creates the reminder a checked remind template gives for an event, as nudge.create_reminder would create it from nudge.reminder_item, and returns it, when the event fills the template, every field passes a create''s checks, its stop flag is not true and its identity is not live, and the template has no cron, timezone or request; otherwise writes nothing and returns a row of NULLs.';

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
           x.v->>'entity_type', x.v->>'entity_id', coalesce(x.v->'data', '{}'::jsonb),
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
