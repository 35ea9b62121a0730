-- 0082: a placeholder whose value is a JSON null is refused inside text, as a missing value is
-- (NU422 naming the field: the event is rejected, or for Nudge's own events the error is kept in
-- its effects); it was put in as the word "null" ("Your feedback on null is due"). A payload
-- value that is one placeholder still takes the null itself. The three renderers of a template
-- agree: nudge.render_text (field by field, naming the field), nudge.render_template (through
-- nudge.render_placeholders, which gains p_null_is_missing: a changed signature, so DROP +
-- CREATE; a request rendered at a claim keeps putting a payload's null in as JSON) and the
-- compiled templates of the batch path (through nudge.json_text).

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

COMMENT ON FUNCTION nudge.render_text(p_text text, p_event nudge.events, p_field text, p_typed boolean) IS 'p_text with every placeholder replaced by the event''s value (as text; with p_typed a text that is one placeholder becomes the value itself, a null included); NU422 naming p_field when the event lacks a value, or has null for one put in text.';

DROP FUNCTION nudge.render_placeholders(text, jsonb, text, integer);

CREATE FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer DEFAULT NULL::integer, p_null_is_missing boolean DEFAULT false) RETURNS text
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

COMMENT ON FUNCTION nudge.render_placeholders(p_text text, p_values jsonb, p_escape text, p_max_bytes integer, p_null_is_missing boolean) IS 'p_text with every {{name}} replaced by the value at that dotted path of p_values, written for where it goes (p_escape: json escapes it for the inside of a JSON string, json_typed too but a JSON string that is one placeholder becomes the value itself, form form-encodes it, text inserts it as it is; strings as their text, other values as JSON); NULL when a value is missing, or with p_null_is_missing is a null to put inside text; once the text passes p_max_bytes (when given) rendering stops and the part rendered, longer than p_max_bytes, is the answer; time linear in the text rendered.';

CREATE OR REPLACE FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events, p_typed boolean) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN position('{{' IN p_template::text) = 0 THEN p_template
              ELSE nudge.render_placeholders(
                     p_template::text,
                     jsonb_build_object('entity_type', p_event.entity_type,
                                        'entity_id', p_event.entity_id,
                                        'event_type', p_event.event_type, 'event_id', p_event.id,
                                        'data', p_event.data),
                     CASE WHEN p_typed THEN 'json_typed' ELSE 'json' END,
                     p_null_is_missing => true)::jsonb END
$$;


COMMENT ON FUNCTION nudge.render_template(p_template jsonb, p_event nudge.events, p_typed boolean) IS 'A JSON template with every placeholder rendered for the event (with p_typed a string that is one placeholder becomes the value itself, of its own JSON type, a null included); NULL when the event lacks a value or has a null to put inside text.';

CREATE OR REPLACE FUNCTION nudge.json_text(p_value jsonb) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  -- A JSON null is no text (#>> gives NULL for it): the compiled template is NULL, missing a value.
  SELECT left(right(to_jsonb(CASE WHEN jsonb_typeof(p_value) <> 'null'
                                  THEN coalesce(p_value #>> '{}', p_value::text) END)::text, -1), -1)
$$;


COMMENT ON FUNCTION nudge.json_text(p_value jsonb) IS 'A JSON value as text escaped for the inside of a JSON string (a string''s own text, anything else but null its JSON text); NULL for a JSON null, which text cannot hold.';
