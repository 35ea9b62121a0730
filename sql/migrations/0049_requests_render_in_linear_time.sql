-- 0049: a webhook's own request renders in time linear in its size, and stops at its limit.
-- Found by trying it: the claim renders each claimed reminder's request, and one form body of a
-- 57 KB payload took 45 s, so the claim outlived its lease: its other rows were claimed again
-- and again (each claim an attempt) and ended FAILED as abandoned, delivered three times each.
--
-- 1. nudge.form_encoded read the text byte by byte with get_byte over the whole value (4.9 s for
--    60,000 characters); it now encodes runs: safe runs as they are, spaces as +, every other
--    run's UTF-8 bytes as %XX in one pass (5 ms for 60,000 letters, 30 ms for 60,000 "é").
-- 2. nudge.render_placeholders appended each piece to one text, copying it every time (400 uses
--    of a 60 KB value: 6.7 s); it now gathers the pieces and joins them once, and takes
--    p_max_bytes: past it, rendering stops and answers what it has (longer than the limit), so
--    a body that would render to 60 MB is refused at 1 MiB instead of built first.
-- 3. nudge.rendered_request renders with that limit (its 1 MiB check follows, unchanged).

CREATE OR REPLACE FUNCTION nudge.form_encoded(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  -- application/x-www-form-urlencoded as browsers write it: letters, digits and *-._ stay,
  -- a space is +, every other byte of the UTF-8 text is %XX. A run at a time: one row per
  -- character made a long text slow.
  SELECT coalesce(string_agg(
           CASE WHEN m[1] IS NOT NULL THEN m[1]
                WHEN m[2] IS NOT NULL THEN translate(m[2], ' ', '+')
                ELSE regexp_replace(upper(encode(convert_to(m[3], 'UTF8'), 'hex')), '(..)', '%\1', 'g')
           END, '' ORDER BY n), '')
    FROM regexp_matches(p_text, '([A-Za-z0-9*._-]+)|( +)|([^A-Za-z0-9*._ -]+)', 'g')
         WITH ORDINALITY AS s(m, n)
$$;

DROP FUNCTION nudge.render_placeholders(text, jsonb, text);

CREATE FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text,
                                          p_max_bytes integer DEFAULT NULL) RETURNS text
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
      v_text := CASE jsonb_typeof(v_value) WHEN 'string' THEN v_value #>> '{}' ELSE v_value::text END;
      IF p_escape IN ('json', 'json_typed') THEN
        -- Escaped for inside a JSON string, quotes and all (inline: a call costs 7 us).
        v_text := to_jsonb(v_text)::text;
        v_text := substr(v_text, 2, length(v_text) - 2);
      ELSIF p_escape = 'form' THEN
        v_text := nudge.form_encoded(v_text);
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
COMMENT ON FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer) IS 'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, text inserts it as it is; strings as their text, other values as JSON); NULL when a value is missing; once the text passes p_max_bytes (when given) rendering stops and the part rendered, longer than p_max_bytes, is the answer; time linear in the text rendered.';

CREATE OR REPLACE FUNCTION nudge.rendered_request(r nudge.reminders, p_occurrence timestamp with time zone, p_attempt integer) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
                   ELSE 'text' END,
              1048576);
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
COMMENT ON FUNCTION nudge.rendered_request(r nudge.reminders, p_occurrence timestamp with time zone, p_attempt integer) IS 'The reminder''s request for attempt p_attempt at occurrence p_occurrence: method (default POST), headers as stored ({{secret.NAME}} left for the worker), and for a request with a body its content type (default application/json) and the body rendered (JSON: values JSON-escaped, a string that is one placeholder takes the value''s type; form: values form-encoded; other types: values as text), or an error instead of the body when it cannot render or renders to more than 1 MiB; NULL without a request.';
