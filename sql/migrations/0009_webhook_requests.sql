--! breaking-change
-- 0009: a webhook reminder may say how its request looks (issue 16): a method, extra headers,
-- and a body template with its content type.
--
--   nudge.reminders.request   {"method", "headers", "body", "content_type"}, checked whenever it
--                             or the payload it reads is written (nudge.check_request), so no SQL
--                             caller can store one a worker could not send.
--
-- Rendering happens once per attempt, in the claim: nudge.claim_due returns the request with its
-- body rendered for that attempt ({{reminder_id}}, {{entity_type}}, {{entity_id}},
-- {{event_type}}, {{scheduled_for}}, {{attempt}}, {{payload.some.path}}), through the same
-- placeholder renderer the rules use (nudge.render_placeholders, which nudge.render_template
-- now calls). A reminder without a request pays one NULL test per claim and per finish.
--
-- Header values are text and {{secret.NAME}} only. Secrets live in the programs' configuration
-- ([secrets], NUDGE_SECRETS_<NAME>): the worker fills them in as it sends, so a secret value is
-- never in this database: not in the reminder, not in delivery_attempts.request (which records
-- each attempt's request with its placeholders standing), not in any answer.
--
-- A rule's reminder template may carry a request; it is copied into each reminder as it is and
-- renders for that reminder, so event values reach it through the reminder's payload.
--
-- Breaking: an older nudge-worker would send such a reminder as its default POST (wrong method,
-- without the headers it needs), and an older nudge-api cannot create one: both must refuse to
-- run against this schema.

-- ---------------------------------------------------------------------------------------------
-- The columns
-- ---------------------------------------------------------------------------------------------

ALTER TABLE nudge.reminders ADD COLUMN request jsonb;
COMMENT ON COLUMN nudge.reminders.request IS
  'How a webhook reminder''s request looks ({"method", "headers", "body", "content_type"}, checked by nudge.check_request); NULL for Nudge''s own POST of the fire as JSON.';

ALTER TABLE nudge.delivery_attempts ADD COLUMN request jsonb;
COMMENT ON COLUMN nudge.delivery_attempts.request IS
  'The request of an attempt at a reminder with its own: method, headers with {{secret.NAME}} standing (values are never stored), content type and the first KiB of the rendered body.';

-- ---------------------------------------------------------------------------------------------
-- The placeholder renderer, one for rules and requests
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.form_encoded(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  -- application/x-www-form-urlencoded as browsers write it: letters, digits and *-._ stay,
  -- a space is +, every other byte of the UTF-8 text is %XX.
  SELECT coalesce(string_agg(
           CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
                     OR b IN (42, 45, 46, 95) THEN chr(b)
                WHEN b = 32 THEN '+'
                ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
    FROM (SELECT convert_to(p_text, 'UTF8') AS t) x,
         LATERAL (SELECT i, get_byte(x.t, i) AS b FROM generate_series(0, length(x.t) - 1) i) y
$$;
COMMENT ON FUNCTION nudge.form_encoded(text) IS
  'p_text form-encoded (application/x-www-form-urlencoded): ASCII letters, digits and *-._ as they are, a space as +, every other UTF-8 byte as %XX.';

-- Scanned by position, not by a regular expression (5x slower per call): a stored template's
-- placeholders are known to be well formed (nudge.check_placeholders, nudge.check_request).
-- Like the calendar functions it does not pin search_path (sql/README.md): called for every
-- template a rule renders, the SET clause made each render 15-30% slower; it names what it calls in
-- full, and its callers pin the path.
CREATE FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_rest  text := p_text;
  v_out   text := '';
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
      v_out := v_out || substr(v_rest, 1, v_open - 2) || v_value::text;
      v_rest := substr(v_rest, v_open + v_close + 4);
    ELSE
      v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
      IF p_escape IN ('json', 'json_typed') THEN
        -- Escaped for inside a JSON string, quotes and all (inline: a call costs 7 us).
        v_text := to_jsonb(v_text)::text;
        v_text := substr(v_text, 2, length(v_text) - 2);
      ELSIF p_escape = 'form' THEN
        v_text := nudge.form_encoded(v_text);
      END IF;
      v_out := v_out || substr(v_rest, 1, v_open - 1) || v_text;
      v_rest := substr(v_rest, v_open + v_close + 3);
    END IF;
  END LOOP;
  RETURN v_out || v_rest;
END $$;
COMMENT ON FUNCTION nudge.render_placeholders(text, jsonb, text) IS
  'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, text inserts it as it is; strings as their text, other values as JSON); NULL when a value is missing.';

-- Rules render through the same loop: an event's values are {entity_type, entity_id, event_type,
-- event_id, data}. Plain SQL, so it is inlined into its callers.
CREATE OR REPLACE FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events,
                                                 p_typed boolean)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN position('{{' IN p_template::text) = 0 THEN p_template
              ELSE nudge.render_placeholders(
                     p_template::text,
                     jsonb_build_object('entity_type', p_event.entity_type,
                                        'entity_id', p_event.entity_id,
                                        'event_type', p_event.event_type, 'event_id', p_event.id,
                                        'data', p_event.data),
                     CASE WHEN p_typed THEN 'json_typed' ELSE 'json' END)::jsonb END
$$;

-- ---------------------------------------------------------------------------------------------
-- Checking a request
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.request_placeholder_problem(p_name text, p_in_header boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_in_header THEN
      CASE WHEN p_name ~ '^secret\.[a-z0-9_]{1,64}$' THEN NULL
           ELSE format('{{%s}} cannot be used in a header: header values are text and '
                       '{{secret.NAME}} (NAME: 1 to 64 lower-case letters, digits and _)', p_name)
      END
    WHEN p_name ~ '^(entity_type|entity_id|event_type|reminder_id|scheduled_for|attempt|payload(\.[A-Za-z0-9_-]+)*)$'
      THEN NULL
    WHEN p_name LIKE 'secret.%' THEN format('{{%s}} can only be used in header values', p_name)
    ELSE format('{{%s}} is not a placeholder of a request (known: {{entity_type}}, {{entity_id}}, '
                '{{event_type}}, {{reminder_id}}, {{scheduled_for}}, {{attempt}}, '
                '{{payload.some.path}}; a rule passes event values through the payload)', p_name)
  END
$$;
COMMENT ON FUNCTION nudge.request_placeholder_problem(text, boolean) IS
  'NULL when p_name may stand in a request (in a header value: secret.NAME only; in a body: entity_type, entity_id, event_type, reminder_id, scheduled_for, attempt, payload or payload.<path>), else why not.';

-- Every placeholder of one text of a request (a header value, the body or a string in it) may
-- stand there, every payload path it reads exists, and no brace pair is left unclosed.
CREATE FUNCTION nudge.check_request_text(p_text text, p_field text, p_in_header boolean,
                                         p_payload jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_name text;
BEGIN
  IF position('{{' IN p_text) = 0 AND position('}}' IN p_text) = 0 THEN
    RETURN;
  END IF;
  IF p_text ~ '\{\{\{|\}\}\}' THEN
    PERFORM nudge.reject(p_field, 'has three braces in a row: a placeholder is {{name}}');
  END IF;
  FOR v_name IN SELECT m[1] FROM regexp_matches(p_text, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m LOOP
    IF nudge.request_placeholder_problem(v_name, p_in_header) IS NOT NULL THEN
      PERFORM nudge.reject(p_field, nudge.request_placeholder_problem(v_name, p_in_header));
    END IF;
    IF v_name LIKE 'payload.%'
       AND p_payload #> string_to_array(substr(v_name, 9), '.') IS NULL THEN
      PERFORM nudge.reject(p_field, format('the payload has no %s for {{%s}}',
                                           substr(v_name, 9), v_name));
    END IF;
  END LOOP;
  IF regexp_replace(p_text, '\{\{\s*[^{}]*?\s*\}\}', '', 'g') ~ '\{\{|\}\}' THEN
    PERFORM nudge.reject(p_field, 'has a {{ or }} that does not close a placeholder');
  END IF;
END $$;
COMMENT ON FUNCTION nudge.check_request_text(text, text, boolean, jsonb) IS
  'Raises 22023 naming p_field when a text of a request holds a placeholder that cannot stand there, reads a path p_payload lacks, or has a brace pair that is not a placeholder; otherwise does nothing.';

CREATE FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
END $$;
COMMENT ON FUNCTION nudge.check_request(jsonb, text, jsonb) IS
  'Raises 22023 naming the field (request, request.method, request.headers.<name>, request.body, request.content_type) when a request cannot be sent for a reminder of channel p_channel with payload p_payload: only webhooks; method POST, PUT, PATCH, GET or DELETE; at most 20 headers, named by RFC 7230 tokens other than Host, Content-Length, Transfer-Encoding, Connection, Idempotency-Key, Nudge-* and Content-Type (request.content_type), once each, with values of at most 2048 characters without control characters whose only placeholders are {{secret.NAME}}; a body of at most 16 KiB (none for GET and DELETE), JSON or a string with content_type, whose placeholders are a request''s and whose payload paths exist; otherwise does nothing.';

CREATE FUNCTION nudge.reminder_request_is_checked() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM nudge.check_request(NEW.request, NEW.channel, NEW.payload);
  RETURN NEW;
END $$;
COMMENT ON FUNCTION nudge.reminder_request_is_checked() IS
  'Trigger: a reminder''s request passes nudge.check_request whenever the request or the payload it reads is written, plain SQL included.';

CREATE TRIGGER reminder_request_is_checked
  BEFORE INSERT OR UPDATE OF request, payload ON nudge.reminders
  FOR EACH ROW
  WHEN (NEW.request IS NOT NULL)
  EXECUTE FUNCTION nudge.reminder_request_is_checked();

-- ---------------------------------------------------------------------------------------------
-- Rendering a request for an attempt
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.rendered_request(r nudge.reminders, p_occurrence timestamptz,
                                       p_attempt integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_out    jsonb;
  v_body   jsonb := r.request->'body';
  v_type   text := r.request->>'content_type';
  v_text   text;
BEGIN
  IF r.request IS NULL THEN
    RETURN NULL;
  END IF;
  v_out := jsonb_build_object('method', coalesce(r.request->>'method', 'POST'),
                              'headers', coalesce(r.request->'headers', '{}'::jsonb));
  IF v_body IS NULL THEN
    RETURN v_out;
  END IF;
  v_text := nudge.render_placeholders(
              CASE WHEN jsonb_typeof(v_body) = 'string' THEN v_body #>> '{}' ELSE v_body::text END,
              jsonb_build_object('reminder_id', r.id, 'entity_type', r.entity_type,
                                 'entity_id', r.entity_id, 'event_type', r.event_type,
                                 'scheduled_for', nudge.rfc3339_in_zone(p_occurrence, 'UTC'),
                                 'attempt', p_attempt, 'payload', r.payload),
              CASE WHEN jsonb_typeof(v_body) <> 'string' THEN 'json_typed'
                   WHEN lower(btrim(split_part(v_type, ';', 1))) = 'application/x-www-form-urlencoded'
                     THEN 'form'
                   ELSE 'text' END);
  -- Checked when stored, so neither can happen but through a payload a rule or a reschedule
  -- could not foresee; the attempt then fails with this error instead of sending.
  IF v_text IS NULL THEN
    RETURN v_out || '{"error": "request.body: a placeholder has no value in this reminder"}';
  END IF;
  IF octet_length(v_text) > 1048576 THEN
    RETURN v_out || '{"error": "request.body: renders to more than 1 MiB"}';
  END IF;
  RETURN v_out || jsonb_build_object('content_type', coalesce(v_type, 'application/json'),
                                     'body', v_text);
END $$;
COMMENT ON FUNCTION nudge.rendered_request(nudge.reminders, timestamptz, integer) IS
  'The reminder''s request for attempt p_attempt at occurrence p_occurrence: method (default POST), headers as stored ({{secret.NAME}} left for the worker), and for a request with a body its content type (default application/json) and the body rendered (JSON: values JSON-escaped, a string that is one placeholder takes the value''s type; form: values form-encoded; other types: values as text), or an error instead of the body when it cannot render or renders to more than 1 MiB; NULL without a request.';

ALTER TYPE nudge.claimed_fire ADD ATTRIBUTE request jsonb;
COMMENT ON TYPE nudge.claimed_fire IS
  'One claimed attempt as a worker delivers it: the reminder, its address (target, else contacts), the occurrence, the attempt number, the attempts it gets and, for a reminder with its own request, that request rendered for this attempt.';

-- The claim returns the request rendered for the attempt it starts: only the last statement
-- changes.
CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer,
                                           p_policy nudge.worker_policy)
RETURNS SETOF nudge.claimed_fire
-- Revisiting a batch by ctid must be a TID lookup, never a scan (see nudge.finish_attempts).
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
BEGIN
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now)
    INTO v_take, v_stop, v_exhausted, v_missed
    FROM (SELECT r.ctid AS row_ctid,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt >= coalesce(r.max_attempts, p_policy.max_attempts) AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed
            FROM nudge.reminders r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now()
       WHERE ctid = ANY (v_exhausted)
      RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
    SELECT array_agg(id), array_agg(occurrence), array_agg(attempt), count(*)
      INTO v_ids, v_at, v_attempts, v_count FROM taken;
    PERFORM nudge.finish_attempts(
      p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
      array_fill('abandoned: claimed by workers that never finished it'::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]));
  END IF;

  -- Missed under misfire_policy skip: no catch-up fire; the next future occurrence instead.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      SELECT r.id, r.next_run_at, nudge.occurrence_after(r, now()) AS next_at
        FROM nudge.reminders r WHERE r.ctid = ANY (v_missed)
    ), skipped AS (
      UPDATE nudge.reminders r
         SET next_run_at = m.next_at,
             status = CASE WHEN r.ends_at < m.next_at THEN 'COMPLETED' ELSE r.status END,
             completed_reason = CASE WHEN r.ends_at < m.next_at THEN 'ends_at' END,
             finished_at = CASE WHEN r.ends_at < m.next_at THEN now() END,
             catch_up_fires = 0, updated_at = now()
        FROM missed m
       WHERE r.id = m.id
      RETURNING r.id)
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
    SELECT m.id, m.next_run_at, 1, 'skipped',
           format('missed by more than %s s (misfire_policy skip)', p_policy.misfire_threshold_seconds),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE nudge.reminders r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM nudge.contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts), r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END;
  END IF;
END $$;
COMMENT ON FUNCTION nudge.claim_due(text, integer, nudge.worker_policy) IS
  'Leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts) and its own request rendered for the attempt (nudge.rendered_request); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts were all used by workers that never finished them (recorded as failed), nor one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt; the reminder moves to its next future occurrence).';

-- An attempt at a reminder with its own request records that request: only `moved` and
-- `attempts` change.
CREATE OR REPLACE FUNCTION nudge.finish_attempts(p_worker text, p_policy nudge.worker_policy,
                                                 p_ids bigint[], p_scheduled_for timestamptz[],
                                                 p_attempts integer[], p_outcomes text[],
                                                 p_errors text[], p_status_codes integer[],
                                                 p_responses text[], p_durations_ms integer[])
RETURNS integer
-- PL/pgSQL rather than SQL: its plan is cached, and planning this statement costs more than
-- running it for a batch. A batch is a few hundred rows looked up by key: on a table whose pages
-- are cached the planner's disk-based costs would scan and hash the whole table instead.
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  v_recorded integer;
BEGIN
  WITH moved AS (
    -- The lease token is in the WHERE clause, so a concurrent change (pause, cancel, a stop
    -- flag) is waited for and every decision is made on the row as it is then.
    UPDATE nudge.reminders r
       SET (occurrence_at, next_run_at, status, completed_reason, finished_at, fire_count,
            catch_up_fires, attempt)
         = (SELECT d.occurrence_at, d.next_run_at, d.status, d.completed_reason, d.finished_at,
                   d.fire_count, d.catch_up_fires, d.attempt
              FROM nudge.after_attempt(r, i.outcome, p_policy, now()) d),
           last_error = left(i.error, 2000),
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(p_ids, p_scheduled_for, p_attempts, p_outcomes, p_errors, p_status_codes,
                  p_responses, p_durations_ms)
             AS i(id, scheduled_for, attempt, outcome, error, status_code, response, duration_ms)
     WHERE r.id = i.id AND r.leased_by = p_worker AND r.attempt = i.attempt
       AND coalesce(r.occurrence_at, r.next_run_at) = i.scheduled_for
    RETURNING r.id, i.scheduled_for, i.attempt, i.outcome, left(i.error, 2000) AS error,
              i.status_code, left(i.response, 1024) AS response, i.duration_ms,
              r.occurrence_at IS NULL AS ended, r.channel,
              -- The request as the claim rendered it for this attempt (the row's attempt
              -- counter may have moved on: the attempt's own number is used).
              CASE WHEN r.request IS NOT NULL
                   THEN nudge.rendered_request(r, i.scheduled_for, i.attempt) END AS request
  ), attempts AS (
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, status_code,
                                         error, response, duration_ms, worker, request)
    SELECT m.id, m.scheduled_for, m.attempt, m.outcome, m.status_code, m.error, m.response,
           greatest(m.duration_ms, 0), p_worker,
           CASE WHEN m.request ? 'body'
                THEN m.request || jsonb_build_object('body', left(m.request->>'body', 1024))
                ELSE m.request END
      FROM moved m
     -- A log line written is the whole story of its delivery, already told by executions;
     -- skipping its attempt row keeps the log channel's drain fast (-20% with it).
     WHERE NOT (m.channel = 'log' AND m.outcome = 'delivered')
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
  ), recorded AS (
    INSERT INTO nudge.executions (reminder_id, scheduled_for, outcome, attempts, worker, error)
    SELECT m.id, m.scheduled_for, m.outcome, m.attempt, p_worker, m.error FROM moved m WHERE m.ended
    ON CONFLICT ON CONSTRAINT one_execution_per_occurrence DO NOTHING
  )
  SELECT count(*)::integer INTO v_recorded FROM moved;
  RETURN v_recorded;
END $$;
COMMENT ON FUNCTION nudge.finish_attempts(text, nudge.worker_policy, bigint[], timestamptz[], integer[], text[], text[], integer[], text[], integer[]) IS
  'Records each ended attempt whose lease (worker, attempt, occurrence) p_worker still holds exactly once in delivery_attempts (with the request of a reminder that has its own, secrets as placeholders, the body cut at 1 KiB), and moves its reminder on as nudge.after_attempt decides, recording an ended occurrence exactly once in executions; an attempt whose lease was lost changes nothing. Returns how many attempts it recorded.';

CREATE OR REPLACE FUNCTION nudge.attempt_json(a nudge.delivery_attempts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'attempt', a.attempt, 'attempted_at', a.attempted_at, 'outcome', a.outcome,
    'status_code', a.status_code, 'error', a.error, 'response', a.response,
    'duration_ms', a.duration_ms, 'worker', a.worker, 'request', a.request))
$$;
COMMENT ON FUNCTION nudge.attempt_json(nudge.delivery_attempts) IS
  'The public JSON form of one delivery attempt, with the request it sent when its reminder has its own.';

-- ---------------------------------------------------------------------------------------------
-- Creating reminders with a request
-- ---------------------------------------------------------------------------------------------

DROP FUNCTION nudge.create_reminder(text, text, text, text, text, timestamptz, integer, text, jsonb, text, text, integer, timestamptz, text, text, text, integer);
CREATE FUNCTION nudge.create_reminder(
  p_entity_type          text,
  p_entity_id            text,
  p_event_type           text,
  p_channel              text,
  p_schedule_type        text,
  p_run_at               timestamptz DEFAULT NULL,
  p_interval_seconds     integer     DEFAULT NULL,
  p_target               text        DEFAULT NULL,
  p_payload              jsonb       DEFAULT '{}'::jsonb,
  p_stop_condition_type  text        DEFAULT NULL,
  p_stop_condition_value text        DEFAULT NULL,
  p_max_fires            integer     DEFAULT NULL,
  p_ends_at              timestamptz DEFAULT NULL,
  p_cron                 text        DEFAULT NULL,
  p_timezone             text        DEFAULT NULL,
  p_misfire_policy       text        DEFAULT NULL,
  p_max_attempts         integer     DEFAULT NULL,
  p_request              jsonb       DEFAULT NULL)
RETURNS TABLE (created boolean, reminder nudge.reminders)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_row     nudge.reminders;
  v_run_at  timestamptz;
  v_stopped boolean := false;
  v_parsed  nudge.cron;
  v_zone    text;
BEGIN
  IF p_entity_type IS NULL OR length(p_entity_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('entity_type', 'must be 1 to 200 characters');
  END IF;
  IF p_entity_id IS NULL OR length(p_entity_id) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('entity_id', 'must be 1 to 200 characters');
  END IF;
  IF p_event_type IS NULL OR length(p_event_type) NOT BETWEEN 1 AND 200 THEN
    PERFORM nudge.reject('event_type', 'must be 1 to 200 characters');
  END IF;
  IF p_channel IS NULL OR p_channel NOT IN ('log', 'webhook', 'email') THEN
    PERFORM nudge.reject('channel', 'must be one of log, webhook, email');
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
COMMENT ON FUNCTION nudge.create_reminder(text, text, text, text, text, timestamptz, integer, text, jsonb, text, text, integer, timestamptz, text, text, text, integer, jsonb) IS
  'Creates a one_time, recurring or cron reminder (a webhook one optionally with its own request, nudge.check_request), or returns the live (ACTIVE or PAUSED) one with the same (entity_type, entity_id, event_type) with created = false, even under concurrent identical calls; bad input raises 22023 naming the field and writes nothing; a reminder whose stop flag is already true is created COMPLETED and never fires.';

CREATE OR REPLACE FUNCTION nudge.create_reminder_from_item(p_item jsonb)
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
           p_max_attempts => (p_item->>'max_attempts')::integer,
           p_request => p_item->'request') c;
END $$;

-- The set-based path inserts the request too; its check (the trigger) sends a bad item down the
-- item-by-item path, which names it.
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
                           OR (b.schedule_type = 'cron' AND length(b.cron) > 200)
                           OR EXISTS (SELECT 1 FROM nudge.status_flags f
                                       WHERE f.key = b.stop_condition_value AND f.value))
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

-- ---------------------------------------------------------------------------------------------
-- The JSON form of a reminder shows its request
-- ---------------------------------------------------------------------------------------------

-- 0003's body plus the last line. (0004 adds schedule_text to this function: merged, this
-- version keeps both.)
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
    -- The request as stored, its nulls kept like the payload's ({{secret.NAME}}, never a value).
    || CASE WHEN r.request IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('request', r.request) END
$$;
COMMENT ON FUNCTION nudge.reminder_json(nudge.reminders) IS
  'The public JSON form of a reminder: every field that is set (nulls left out, the payload and the request as stored), times in the session''s zone, the occurrence being retried and its attempts while there is one, the rule and event that created it, no lease internals.';

-- ---------------------------------------------------------------------------------------------
-- Rules: a remind template may carry a request, copied into each reminder as it is
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION nudge.template_field_type(p_field text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_field IN ('entity_type', 'entity_id', 'event_type', 'channel', 'schedule_type', 'cron',
                     'timezone', 'target', 'stop_condition_type', 'stop_condition_value',
                     'ends_at', 'misfire_policy') THEN 'string'
    WHEN p_field IN ('interval_seconds', 'interval_minutes', 'max_fires', 'max_attempts',
                     'delay_seconds') THEN 'number'
    WHEN p_field IN ('payload', 'request') THEN 'object'
  END
$$;

-- The request keeps its placeholders: they are the reminder's, rendered at each attempt.
CREATE OR REPLACE FUNCTION nudge.sample_template(p_template jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
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
$$;
COMMENT ON FUNCTION nudge.sample_template(jsonb) IS
  'A remind template with its data placeholders replaced by sample values (the request, whose placeholders are the reminder''s, left as it is), a target made of data only by an address that suits the channel.';

CREATE OR REPLACE FUNCTION nudge.reminder_item(p_template jsonb, p_event nudge.events)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_fields  jsonb := p_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request';
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
  IF p_template ? 'request' THEN
    v_item := v_item || jsonb_build_object('request', p_template->'request');
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
  'The create item a remind template gives for an event: every string rendered (the request copied as it is), the entity defaulting to the event''s, run_at delay_seconds after the event occurred (recurring: by default one interval); NU422 when the event lacks a value.';

CREATE OR REPLACE FUNCTION nudge.compile_rule(p_rule nudge.rules) RETURNS jsonb
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
        'fields', nudge.compile_template(
                    v_template - 'payload' - 'delay_seconds' - 'interval_minutes' - 'request'
                    || CASE WHEN v_template ? 'interval_minutes'
                            THEN jsonb_build_object('interval_seconds',
                                   (v_template->>'interval_minutes')::integer * 60)
                            ELSE '{}'::jsonb END, false)
                  -- The request is copied as it is: its placeholders are the reminder's.
                  || CASE WHEN v_template ? 'request'
                          THEN format(' || %L::jsonb',
                                      jsonb_build_object('request', v_template->'request'))
                          ELSE '' END,
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
  'A checked rule''s conditions and action as SQL expressions over a batch row e: when (boolean), and for remind fields (the request copied as it is), payload and run_at; for set_flag key; for cancel event_type, entity_type and entity_id (JSON strings).';
