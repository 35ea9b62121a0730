-- 0095: a webhook target (or a contact's webhook address) can be a URL the worker keeps as a
-- secret: {{secret.NAME}} alone, filled in by the worker as header secrets are. A Slack incoming
-- webhook's URL is its credential, and it was shown to every token that can read (explore10a).
-- The whole URL is the secret, so whoever set it chose where it goes: a value from an event's
-- data that reads {{secret.NAME}} can only send to that URL. The breaker counts such a target
-- under {{secret.NAME}}. Rules keep the placeholder as written when they render a target.


CREATE FUNCTION nudge.secret_address_name(p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  SELECT substring(p_address from '^\{\{secret\.([a-z0-9_]{1,64})\}\}$')
$_$;

COMMENT ON FUNCTION nudge.secret_address_name(p_address text) IS 'The NAME of an address written {{secret.NAME}} alone, without spaces (NAME: 1 to 64 of a-z, 0-9 and _): a webhook URL the worker keeps as a secret; NULL for any other text.';

CREATE OR REPLACE FUNCTION nudge.address_problem(p_channel text, p_address text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $_$
DECLARE
  v_port text;
BEGIN
  IF p_address IS NULL THEN
    RETURN NULL;
  END IF;
  -- A webhook's URL kept whole in a secret the worker holds (the operator chose where it goes).
  IF p_channel = 'webhook' AND nudge.secret_address_name(p_address) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF p_channel = 'webhook' THEN
    -- The host is a name or an IPv4 address, or an IPv6 address in brackets.
    IF NOT (p_address ~* '^https?://([^/?#@\s]+@)?([a-z0-9.\-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$'
            AND length(p_address) <= 2048) THEN
      RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535), '
             'or {{secret.NAME}} alone for a URL kept in the worker''s secrets';
    END IF;
    -- A port is 1 to 65535; read only when there may be one (a regexp_match on every URL cost
    -- a create 190k instructions, three times the check above).
    IF strpos(substr(p_address, 9), ':') > 0 THEN
      v_port := substring(p_address from '^[^/]*//(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):([0-9]+)');
      IF v_port::integer NOT BETWEEN 1 AND 65535 THEN
        RETURN 'must be an http:// or https:// URL without spaces (a port from 1 to 65535), '
             'or {{secret.NAME}} alone for a URL kept in the worker''s secrets';
      END IF;
    END IF;
  END IF;
  IF p_channel = 'email'
     AND NOT (p_address ~ '^[!-~]+$'
              AND p_address ~ '^[^@<>(),;:"\[\]\\]+@[^@<>(),;:"\[\]\\]+\.[^@<>(),;:"\[\]\\]+$'
              AND p_address !~ '(^\.|\.@|@\.|\.\.|\.$)'
              AND length(p_address) <= 254) THEN
    RETURN 'must be an email address like someone@example.com, in plain ASCII';
  END IF;
  RETURN NULL;
END $_$;

COMMENT ON FUNCTION nudge.address_problem(p_channel text, p_address text) IS 'NULL when the address suits the channel as a worker will deliver it (webhook: {{secret.NAME}} alone (NAME: 1 to 64 of a-z, 0-9 and _), for a URL the worker keeps as a secret, or an http(s) URL of at most 2048 characters without spaces whose host is a name, an IPv4 or a bracketed IPv6 address and whose port, if any, is 1 to 65535; email: one plain ASCII address of at most 254 characters, no dot at either end of its two parts nor two in a row; other channels: anything), else the problem in words.';


CREATE OR REPLACE FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer DEFAULT NULL::integer, p_null_is_missing boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_rest  text := p_text;
  -- The pieces, joined once at the end (appending to one text copied it every time); each is
  -- appended on its own, so the array grows in place.
  v_parts text[] := '{}';
  v_bytes bigint := 0;
  v_open  integer;
  v_close integer;
  v_value jsonb;
  v_text  text;
BEGIN
  IF position('{{' IN v_rest) = 0 THEN
    RETURN p_text;
  END IF;
  LOOP
    v_open := position('{{' IN v_rest);
    EXIT WHEN v_open = 0;
    v_close := position('}}' IN substr(v_rest, v_open + 2));
    EXIT WHEN v_close = 0;
    -- {{data.a.0}} is the value at path data, a, 0 (objects and array indexes).
    v_value := p_values #> string_to_array(btrim(substr(v_rest, v_open + 2, v_close - 1)), '.');
    IF v_value IS NULL AND left(btrim(substr(v_rest, v_open + 2, v_close - 1)), 7) = 'secret.' THEN
      -- {{secret.NAME}} (a webhook target kept in a secret) is the worker's to fill: as written.
      v_text := substr(v_rest, 1, v_open + v_close + 2);
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSIF v_value IS NULL THEN
      RETURN NULL;
    ELSIF p_escape = 'json_typed' AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
       AND substr(v_rest, v_open + v_close + 3, 1) = '"'
       AND (v_open = 2 OR substr(v_rest, v_open - 2, 1) <> '\') THEN
      -- "{{data.x}}": the quotes go, the value stays whatever JSON it is.
      v_text := substr(v_rest, 1, v_open - 2) || v_value::text;
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSE
      IF p_null_is_missing AND jsonb_typeof(v_value) = 'null' THEN
        RETURN NULL;
      END IF;
      v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
      IF p_escape IN ('json', 'json_typed') THEN
        -- Escaped for inside a JSON string, quotes and all (inline: a call costs 7 us).
        v_text := to_jsonb(v_text)::text;
        v_text := substr(v_text, 2, length(v_text) - 2);
      ELSIF p_escape = 'form' THEN
        v_text := nudge.form_encoded(v_text);
      ELSIF p_escape = 'url' THEN
        v_text := nudge.uri_component_encoded(v_text);
      END IF;
      v_text := substr(v_rest, 1, v_open - 1) || v_text;
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
    v_parts := v_parts || v_text;
    v_bytes := v_bytes + octet_length(v_text);
    IF v_bytes > p_max_bytes THEN
      RETURN array_to_string(v_parts, '');  -- longer than the limit already: the caller refuses it
    END IF;
  END LOOP;
  RETURN array_to_string(v_parts, '') || v_rest;
END $$;

COMMENT ON FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer, p_null_is_missing boolean) IS 'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, url percent-encodes it as one URI component (nudge.uri_component_encoded), text inserts it as it is; strings as their text, other values as JSON); {{secret.NAME}} left as written (the worker fills it); NULL when another value is missing, or with p_null_is_missing is a null to put inside text; once the text passes p_max_bytes (when given) rendering stops and the part rendered, longer than p_max_bytes, is the answer; time linear in the text rendered.';


CREATE OR REPLACE FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean DEFAULT false) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
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
    IF left(v_name, 7) = 'secret.' THEN
      -- A webhook target kept in a secret: the worker's to fill, as written.
      v_out := v_out || substr(v_rest, 1, v_open + v_close + 2);
      v_rest := substr(v_rest, v_open + v_close + 3);
      CONTINUE;
    END IF;
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
    -- Inside text, a null would be the word "null" ("Your feedback on null is due").
    IF jsonb_typeof(v_value) = 'null' THEN
      RAISE EXCEPTION 'rule %: %: the event''s % is null, which {{%}} cannot put in text',
        current_setting('nudge.rule_id', true), p_field, v_name, v_name
        USING ERRCODE = 'NU422', COLUMN = p_field,
              TABLE = current_setting('nudge.rule_id', true);
    END IF;
    v_out := v_out || substr(v_rest, 1, v_open - 1)
             || CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
    v_rest := substr(v_rest, v_open + v_close + 3);
  END LOOP;
  RETURN to_jsonb(v_out || v_rest);
END $$;

COMMENT ON FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean) IS 'p_text with every placeholder but {{secret.NAME}} (left as written, for the worker) replaced by the event''s value (as text; with p_typed a text that is one placeholder becomes the value itself, a null included); NU422 naming p_field when the event lacks a value, or has null for one put in text.';


CREATE OR REPLACE FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
    IF left(btrim(substr(v_rest, v_open + 2, v_close - 1)), 7) = 'secret.' THEN
      -- A webhook target kept in a secret: the worker's to fill, as written.
      v_parts := v_parts || quote_literal(substr(v_rest, 1, v_open + v_close + 2));
      v_rest := substr(v_rest, v_open + v_close + 3);
    ELSIF p_typed AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
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
END $_$;

COMMENT ON FUNCTION nudge.compile_template(p_template jsonb, p_typed boolean, p_url boolean) IS 'The SQL expression (over a batch row e) that renders a JSON template as nudge.render_template would (with p_url each value amid the text percent-encoded as one URI component, as nudge.with_webhook_target renders a webhook target), {{secret.NAME}} left as written (the worker fills it), NULL where the event lacks a value.';


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

COMMENT ON FUNCTION nudge.check_remind_template(p_template jsonb, p_event_type text) IS 'Raises 22023 naming the field (action.reminder.<field>) when a remind template holds an unknown field, a wrong type, a whole number out of its field''s range (too long for an integer: the range is stated), an unknown placeholder, a {{secret.NAME}} anywhere but alone in target, a placeholder in channel, schedule_type, cron, misfire_policy or stop_condition_type, or anything a create would refuse for a sample event; otherwise does nothing.';


CREATE OR REPLACE FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_target text DEFAULT NULL::text, p_payload jsonb DEFAULT '{}'::jsonb, p_stop_condition_type text DEFAULT NULL::text, p_stop_condition_value text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_misfire_policy text DEFAULT NULL::text, p_max_attempts integer DEFAULT NULL::integer, p_request jsonb DEFAULT NULL::jsonb) RETURNS TABLE(created boolean, reminder nudge.reminders)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
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
  IF strpos(p_target, '{{') > 0 AND nudge.secret_address_name(p_target) IS NULL THEN
    PERFORM nudge.reject('target', 'a reminder''s target is not a template; rules render {{...}} '
                                   'in theirs');
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
    PERFORM nudge.reject('payload', 'must be at most 64 KiB as stored (jsonb: deep nesting makes it larger than its text)');
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
  END IF;
  IF nudge.time_problem(p_ends_at) IS NOT NULL THEN
    PERFORM nudge.reject('ends_at', nudge.time_problem(p_ends_at));
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is only for recurring reminders');
    END IF;
  ELSIF p_schedule_type = 'recurring' THEN
    IF p_interval_seconds IS NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is required for recurring');
    END IF;
    IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
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
  IF v_run_at IS NULL THEN  -- (only a cron schedule can have none: nudge.cron_next)
    PERFORM nudge.reject('cron', nudge.cron_horizon_problem());
  END IF;
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject('run_at', 'the first fire must not be after 9999-12-31T23:59:59Z');
  END IF;
  IF p_stop_condition_type IS NULL AND p_stop_condition_value IS NOT NULL THEN
    PERFORM nudge.reject('stop_condition_type', 'is required with stop_condition_value');
  ELSIF p_stop_condition_type IS NOT NULL AND p_stop_condition_type <> 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  ELSIF p_stop_condition_type = 'db_check'
        AND (p_stop_condition_value IS NULL OR length(p_stop_condition_value) NOT BETWEEN 1 AND 200
             OR nudge.is_blank(p_stop_condition_value)) THEN
    PERFORM nudge.reject('stop_condition_value',
                         'must be a flag key of 1 to 200 characters, not only white space');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  IF p_ends_at IS NOT NULL AND p_ends_at < v_run_at THEN
    PERFORM nudge.reject('ends_at', 'must not be before the first fire (run_at)');
  END IF;
  -- Checked before a live reminder of the same identity can be answered, so a bad request is
  -- refused whatever exists (the trigger reminder_request_is_checked checks it again as the row
  -- is written, for plain SQL).
  IF nullif(p_request, 'null'::jsonb) IS NOT NULL THEN  -- (JSON null: no request, as stored)
    PERFORM nudge.check_request(p_request, p_channel, p_payload);
  END IF;

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

COMMENT ON FUNCTION nudge.create_reminder(p_entity_type text, p_entity_id text, p_event_type text, p_channel text, p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_target text, p_payload jsonb, p_stop_condition_type text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone, p_cron text, p_timezone text, p_misfire_policy text, p_max_attempts integer, p_request jsonb) IS 'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request; a log one without a target), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls; bad input (a name or stop flag key empty, over 200 characters or only white space, a target a log reminder cannot have or one holding {{ (a target is not a template) other than a webhook''s {{secret.NAME}} alone, a run_at or ends_at before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z, infinities included, or a first fire after it, a payload over 64 KiB as stored, ...) raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires.';


CREATE OR REPLACE FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) RETURNS nudge.contacts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_contact nudge.contacts;
  v_problem text;
BEGIN
  -- As a reminder's: a contact no reminder can use is refused.
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_type) THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200
     OR nudge.is_blank(p_entity_id) THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters, not only white space');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be webhook or email');
  END IF;
  IF p_address IS NULL THEN
    PERFORM nudge.reject('address', 'is required');
  END IF;
  v_problem := nudge.address_problem(p_channel, p_address);
  IF v_problem IS NOT NULL THEN
    PERFORM nudge.reject('address', v_problem);
  END IF;
  -- Sent as written, as a reminder's target is: braces would go out literally.
  IF strpos(p_address, '{{') > 0 AND nudge.secret_address_name(p_address) IS NULL THEN
    PERFORM nudge.reject('address', 'a contact''s address is not a template: it is sent as written, so it must not hold {{');
  END IF;
  INSERT INTO nudge.contacts AS c (entity_type, entity_id, channel, address)
  VALUES (p_entity_type, p_entity_id, p_channel, p_address)
  ON CONFLICT ON CONSTRAINT one_address_per_entity_and_channel
  DO UPDATE SET address = EXCLUDED.address
  RETURNING c.* INTO v_contact;
  RETURN v_contact;
END $$;

COMMENT ON FUNCTION nudge.put_contact(p_entity_type text, p_entity_id text, p_channel text, p_address text) IS 'Sets where (p_entity_type, p_entity_id) is reached on p_channel (webhook or email), replacing the old address from the next claim on; 22023 naming the field for bad input (an entity_type or entity_id empty, over 200 characters or only white space, a channel or address that is not one, an address holding {{, which would be sent literally, other than a webhook''s {{secret.NAME}} alone); returns the contact.';


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
                         OR nudge.secret_address_name(v_item->>'target') IS NOT NULL), true)
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


-- A target holds no {{ but as a webhook URL kept in a secret, named whole.
ALTER DOMAIN nudge.reminder_target DROP CONSTRAINT target_is_no_template;
ALTER DOMAIN nudge.reminder_target
    ADD CONSTRAINT target_is_no_template
    CHECK (strpos(VALUE, '{{') = 0 OR nudge.secret_address_name(VALUE) IS NOT NULL) NOT VALID;
