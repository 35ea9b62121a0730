-- 0152: a string body with placeholders is refused for every media type a receiver reads as JSON
-- (explore29a LOW 7): text/json (ASP.NET Core takes it as JSON), application/x-json, and the
-- JSON lines types passed, and event data put in such a body as text could end a string and add
-- keys ({"a":"x","admin":true}). One function says what a JSON type is, for that refusal and for
-- the type of a JSON body.
--
-- A new function and one body.

CREATE FUNCTION nudge.is_json_media_type(p_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
  -- Inlined where it is called (no SET clause): its names are qualified instead.
  SELECT p_type OPERATOR(pg_catalog.~*)
         '^(application/([a-z0-9.!#$&^_-]+\+)?json|application/x-json|text/json|text/x-json|application/(x-)?ndjson|application/(x-)?jsonl(ines)?|application/json-seq)\s*(;.*)?$'
$_$;

COMMENT ON FUNCTION nudge.is_json_media_type(p_type text) IS 'Whether a media type is one a receiver may read as JSON (application/json, application/...+json, application/x-json, text/json, text/x-json, JSON lines and sequences), parameters allowed; NULL for NULL.';

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
  PERFORM nudge.check_keys(p_request,
                           ARRAY['method', 'headers', 'body', 'content_type', 'timeout_ms'],
                           'request.');
  -- A handler slower than the workers' [webhook] timeout_ms was called again on every attempt
  -- and the reminder failed (explore18b #4): a reminder can wait longer, or less, for its own.
  IF p_request ? 'timeout_ms'
     AND NOT coalesce(jsonb_typeof(p_request->'timeout_ms') = 'number'
                      AND p_request->>'timeout_ms' ~ '^[0-9]{1,6}$'
                      AND (p_request->>'timeout_ms')::integer BETWEEN 1 AND 600000, false) THEN
    PERFORM nudge.reject('request.timeout_ms',
                         'must be a whole number of milliseconds from 1 to 600000');
  END IF;
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
      IF nudge.is_json_media_type(v_type) AND strpos(v_body #>> '{}', '{{') > 0 THEN
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
      PERFORM nudge.check_request_text(j #>> '{}', 'request.body', false, p_payload, true)
         FROM jsonb_path_query(v_body, '$.**') j
        WHERE jsonb_typeof(j) = 'string';
      IF v_type IS NOT NULL AND NOT nudge.is_json_media_type(v_type) THEN
        PERFORM nudge.reject('request.content_type', 'must be a JSON type (application/json, '
                             'application/...+json, text/json) for a JSON body; a string body '
                             'takes any');
      END IF;
    END IF;
  ELSIF p_request ? 'content_type' THEN
    PERFORM nudge.reject('request.content_type', 'is only for a request with a body');
  END IF;
END $_$;

COMMENT ON FUNCTION nudge.check_request(p_request jsonb, p_channel text, p_payload jsonb) IS 'Raises 22023 naming the field (request, request.method, request.headers.<name>, request.body, request.content_type, request.timeout_ms) when a request cannot be sent for a reminder of channel p_channel with payload p_payload: only webhooks; method POST, PUT, PATCH, GET or DELETE; timeout_ms a whole number from 1 to 600000; at most 20 headers, named by RFC 7230 tokens other than Host, Content-Length, Transfer-Encoding, Connection, Idempotency-Key, Nudge-* and Content-Type (request.content_type), once each, with values of at most 2048 characters without control characters whose only placeholders are {{secret.NAME}}; a body of at most 16 KiB (none for GET and DELETE), JSON or a string with content_type (with placeholders, not of a JSON type: nudge.is_json_media_type), whose placeholders are a request''s and whose payload paths exist and, where put in text, are not null; otherwise does nothing.';
