-- 0086: a placeholder inside a rule's webhook target stays in its slot, and a JSON body is JSON.
-- A rule's target "https://tracker.example/api/tickets/{{data.id}}/status" took the event's id as
-- it was: an id "../../admin" sent the request (and its secret headers) to /admin/status, "T-1#"
-- cut the path, and "{{data.tenant}}.example.com" with a tenant "127.0.0.1:8081/x#" changed the
-- host. Such a value is now percent-encoded as one URI component (RFC 3986: only letters,
-- digits and -._~ stay; "." and ".." whole are encoded too), as a URI template's {var} is. A
-- target that is one placeholder alone ("{{data.callback_url}}") still takes the value as the
-- whole URL. And a string body with a JSON content_type wrote its values as text, so a value
-- with a quote broke the JSON or added keys: such a body with placeholders is refused at
-- create (as JSON, an object or array, its values are escaped).

CREATE FUNCTION nudge.uri_component_encoded(p_text text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  -- A run at a time, as nudge.form_encoded. "." and ".." alone would be dot segments, which
  -- clients resolve (a/../b is b): encoded, they are names.
  SELECT CASE WHEN p_text IN ('.', '..') THEN replace(p_text, '.', '%2E')
              ELSE coalesce(string_agg(
                     CASE WHEN m[1] IS NOT NULL THEN m[1]
                          ELSE regexp_replace(upper(encode(convert_to(m[2], 'UTF8'), 'hex')),
                                              '(..)', '%\1', 'g')
                     END, '' ORDER BY n), '') END
    FROM regexp_matches(p_text, '([A-Za-z0-9._~-]+)|([^A-Za-z0-9._~-]+)', 'g')
         WITH ORDINALITY AS s(m, n)
$$;

COMMENT ON FUNCTION nudge.uri_component_encoded(p_text text) IS 'p_text as one URI component (RFC 3986): ASCII letters, digits and -._~ as they are, every other UTF-8 byte as %XX, and "." or ".." alone as %2E or %2E%2E.';

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
    IF v_value IS NULL THEN
      RETURN NULL;
    END IF;
    IF p_escape = 'json_typed' AND v_open > 1 AND substr(v_rest, v_open - 1, 1) = '"'
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

COMMENT ON FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer, p_null_is_missing boolean) IS 'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, url percent-encodes it as one URI component (nudge.uri_component_encoded), text inserts it as it is; strings as their text, other values as JSON); NULL when a value is missing, or with p_null_is_missing is a null to put inside text; once the text passes p_max_bytes (when given) rendering stops and the part rendered, longer than p_max_bytes, is the answer; time linear in the text rendered.';

CREATE FUNCTION nudge.with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
  SELECT CASE WHEN p_item->>'channel' = 'webhook' AND strpos(p_template->>'target', '{{') > 0
                   AND p_template->>'target' !~ '^\s*\{\{[^{}]*\}\}\s*$'
              THEN p_item || jsonb_build_object('target', nudge.render_placeholders(
                     p_template->>'target',
                     jsonb_build_object('entity_type', p_event.entity_type,
                                        'entity_id', p_event.entity_id,
                                        'event_type', p_event.event_type, 'event_id', p_event.id,
                                        'data', p_event.data),
                     'url', p_null_is_missing => true))
              ELSE p_item END
$_$;

COMMENT ON FUNCTION nudge.with_webhook_target(p_item jsonb, p_template jsonb, p_event nudge.events) IS 'p_item (a remind template rendered for p_event) with, for a webhook whose template target has placeholders amid other text, the target rendered again with each value percent-encoded as one URI component, so that no value changes the host, path or query around it; a target that is one placeholder alone, any other channel, and a NULL item are left as they are.';

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
                    AND strpos(v_item->>'target', '{{') = 0, true)
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
  v_run_at := p_event.occurred_at + interval '1 second' *
    CASE WHEN v_item->>'schedule_type' = 'recurring'
         THEN coalesce((p_template->>'delay_seconds')::integer,
                       (v_item->>'interval_seconds')::integer, 0)
         ELSE coalesce((p_template->>'delay_seconds')::integer, 0) END;
  -- The template holds no run_at: name what put the first fire so late.
  IF v_run_at > nudge.latest_fire() THEN
    PERFORM nudge.reject(CASE WHEN p_template ? 'delay_seconds' THEN 'delay_seconds'
                              ELSE 'interval_seconds' END,
                         format('puts the first fire after 9999-12-31T23:59:59Z (the event occurred at %s)',
                                to_char(p_event.occurred_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
  END IF;
  RETURN v_item || jsonb_build_object('run_at', v_run_at);
END $$;

COMMENT ON FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events) IS 'The create item a remind template gives for an event: every string rendered (a webhook target''s values amid other text percent-encoded, nudge.with_webhook_target; the request copied as it is), the entity defaulting to the event''s, run_at delay_seconds after the event occurred (recurring: by default one interval); NU422 when the event lacks a value or that first fire would be after 9999-12-31T23:59:59Z (naming delay_seconds, or the interval it defaulted to).';

CREATE OR REPLACE FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  v_method  text := coalesce(p_request->>'method', 'POST');
  v_body    jsonb := p_request->'body';
  v_type    text := p_request->>'content_type';
  v_name    text;
  v_value   jsonb;
  v_field   text;
  v_seen    text[] := '{}';
BEGIN
  IF p_request IS NULL THEN
    RETURN;
  END IF;
  IF jsonb_typeof(p_request) <> 'object' THEN
    PERFORM nudge.reject('request', 'must be a JSON object: {"method", "headers", "body", "content_type"}');
  END IF;
  IF p_channel IS DISTINCT FROM 'webhook' THEN
    PERFORM nudge.reject('request', 'is only for webhook reminders');
  END IF;
  PERFORM nudge.check_keys(p_request, ARRAY['method', 'headers', 'body', 'content_type'],
                           'request.');
  IF p_request ? 'method' AND (jsonb_typeof(p_request->'method') <> 'string'
                               OR v_method NOT IN ('POST', 'PUT', 'PATCH', 'GET', 'DELETE')) THEN
    PERFORM nudge.reject('request.method', 'must be one of POST, PUT, PATCH, GET, DELETE');
  END IF;

  -- Headers: names are RFC 7230 tokens Nudge does not set itself; values are one line of text.
  IF p_request ? 'headers' THEN
    IF jsonb_typeof(p_request->'headers') <> 'object' THEN
      PERFORM nudge.reject('request.headers', 'must be a JSON object of header names and values');
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(p_request->'headers')) > 20 THEN
      PERFORM nudge.reject('request.headers', 'must hold at most 20 headers');
    END IF;
    FOR v_name, v_value IN SELECT k, v FROM jsonb_each(p_request->'headers') AS x(k, v) ORDER BY k
    LOOP
      v_field := 'request.headers.' || v_name;
      IF v_name !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,100}$' THEN
        -- Not named in the field: a name may hold a line break. Quoted as JSON instead.
        PERFORM nudge.reject('request.headers', format(
          '%s is not a header name: 1 to 100 letters, digits and !#$%%&''*+-.^_`|~ (an RFC 7230 token)',
          to_jsonb(left(v_name, 100))));
      END IF;
      IF lower(v_name) IN ('host', 'content-length', 'transfer-encoding', 'connection',
                           'idempotency-key') OR lower(v_name) LIKE 'nudge-%' THEN
        PERFORM nudge.reject(v_field, 'is set by Nudge and cannot be given');
      END IF;
      IF lower(v_name) = 'content-type' THEN
        PERFORM nudge.reject(v_field, 'is set from request.content_type');
      END IF;
      IF lower(v_name) = ANY (v_seen) THEN
        PERFORM nudge.reject(v_field, 'is given twice (header names ignore case)');
      END IF;
      v_seen := v_seen || lower(v_name);
      IF jsonb_typeof(v_value) <> 'string' THEN
        PERFORM nudge.reject(v_field, 'must be a string');
      END IF;
      IF length(v_value #>> '{}') > 2048 THEN
        PERFORM nudge.reject(v_field, 'must be at most 2048 characters');
      END IF;
      IF (v_value #>> '{}') ~ '[\x01-\x08\x0a-\x1f\x7f]' THEN
        PERFORM nudge.reject(v_field, 'must not hold line breaks or other control characters');
      END IF;
      PERFORM nudge.check_request_text(v_value #>> '{}', v_field, true, p_payload);
    END LOOP;
  END IF;

  IF p_request ? 'content_type' AND (jsonb_typeof(p_request->'content_type') <> 'string'
       OR length(v_type) > 200
       OR v_type !~ '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\s*(;[^\x01-\x1f\x7f]*)?$') THEN
    PERFORM nudge.reject('request.content_type',
                         'must be a media type of at most 200 characters, e.g. text/plain; charset=utf-8');
  END IF;

  -- The body: a JSON template, or a string template with its content type.
  IF p_request ? 'body' THEN
    IF v_method IN ('GET', 'DELETE') THEN
      PERFORM nudge.reject('request.body', 'is not for ' || v_method || ': GET and DELETE send no body');
    END IF;
    IF jsonb_typeof(v_body) = 'null' THEN
      PERFORM nudge.reject('request.body', 'must be a JSON template or a string with content_type');
    END IF;
    IF octet_length(CASE WHEN jsonb_typeof(v_body) = 'string' THEN v_body #>> '{}'
                         ELSE v_body::text END) > 16384 THEN
      PERFORM nudge.reject('request.body', 'must be at most 16 KiB');
    END IF;
    IF jsonb_typeof(v_body) = 'string' THEN
      IF v_type IS NULL THEN
        PERFORM nudge.reject('request.content_type', 'is required with a string body '
                             '(e.g. text/plain, application/x-www-form-urlencoded)');
      END IF;
      -- A value written as text into JSON could end its string and add keys of its own.
      IF v_type ~* '^application/([a-z0-9.!#$&^_-]+\+)?json\s*(;.*)?$'
         AND strpos(v_body #>> '{}', '{{') > 0 THEN
        PERFORM nudge.reject('request.body', 'with a JSON content_type, give the body as JSON (an '
                             'object or array), whose placeholders are escaped for where they '
                             'are; a string body''s values are written as text');
      END IF;
      PERFORM nudge.check_request_text(v_body #>> '{}', 'request.body', false, p_payload);
    ELSE
      IF EXISTS (SELECT 1 FROM jsonb_path_query(v_body, '$.**') j
                  WHERE jsonb_typeof(j) = 'object'
                    AND EXISTS (SELECT 1 FROM jsonb_object_keys(j) k WHERE k ~ '\{\{|\}\}')) THEN
        PERFORM nudge.reject('request.body', 'keys cannot hold {{ or }}');
      END IF;
      PERFORM nudge.check_request_text(j #>> '{}', 'request.body', false, p_payload)
         FROM jsonb_path_query(v_body, '$.**') j
        WHERE jsonb_typeof(j) = 'string';
      IF v_type IS NOT NULL AND NOT v_type ~* '^application/([a-z0-9.!#$&^_-]+\+)?json\s*(;.*)?$' THEN
        PERFORM nudge.reject('request.content_type', 'must be a JSON type (application/json or '
                             'application/...+json) for a JSON body; a string body takes any');
      END IF;
    END IF;
  ELSIF p_request ? 'content_type' THEN
    PERFORM nudge.reject('request.content_type', 'is only for a request with a body');
  END IF;
END $_$;

COMMENT ON FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb) IS 'Raises 22023 naming the field (request, request.method, request.headers.<name>, request.body, request.content_type) when a request cannot be sent for a reminder of channel p_channel with payload p_payload: only webhooks; method POST, PUT, PATCH, GET or DELETE; at most 20 headers, named by RFC 7230 tokens other than Host, Content-Length, Transfer-Encoding, Connection, Idempotency-Key, Nudge-* and Content-Type (request.content_type), once each, with values of at most 2048 characters without control characters whose only placeholders are {{secret.NAME}}; a body of at most 16 KiB (none for GET and DELETE), JSON or a string with content_type (with placeholders, not of a JSON type), whose placeholders are a request''s and whose payload paths exist; otherwise does nothing.';
