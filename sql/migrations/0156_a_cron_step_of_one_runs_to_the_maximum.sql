-- 0156: a cron step of 1 after a single value ("0/1", "11/1") runs to the field's maximum, as
-- every other "n/step" does and as classic cron reads it (explore31c F1: "0/1 * * * *" fired
-- hourly, not every minute). The reminders whose schedule held one are parsed again.

CREATE OR REPLACE FUNCTION nudge.cron_field(p_text text, p_field text, p_min integer, p_max integer, p_names text[] DEFAULT NULL::text[]) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
  v_mask  bigint := 0;
  v_part  text;
  v_range text;
  v_step  integer;
  v_lo    integer;
  v_hi    integer;
  v_bits  text[];
  v_i     integer;
BEGIN
  IF p_text IS NULL OR p_text = '' THEN
    RAISE EXCEPTION 'cron: %: is empty', p_field USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  FOREACH v_part IN ARRAY string_to_array(p_text, ',') LOOP
    IF v_part = '' THEN
      RAISE EXCEPTION 'cron: %: empty list item in "%"', p_field, p_text
        USING ERRCODE = '22023', COLUMN = 'cron';
    END IF;
    -- The last day of the month, whichever number it has: bit 0.
    IF p_field = 'day-of-month' AND upper(v_part) = 'L' THEN
      v_mask := v_mask | 1;
      CONTINUE;
    END IF;
    v_step := 1;
    v_range := v_part;
    IF position('/' IN v_part) > 0 THEN
      v_range := split_part(v_part, '/', 1);
      IF split_part(v_part, '/', 2) !~ '^[0-9]{1,3}$' OR split_part(v_part, '/', 3) <> '' THEN
        RAISE EXCEPTION 'cron: %: bad step in "%"', p_field, v_part
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
      v_step := split_part(v_part, '/', 2)::integer;
      IF v_step < 1 OR v_step > p_max THEN
        RAISE EXCEPTION 'cron: %: step % is out of range 1-%', p_field, v_step, p_max
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
    END IF;
    IF v_range = '*' THEN
      v_lo := p_min;
      v_hi := p_max;
    ELSE
      v_bits := string_to_array(v_range, '-');
      IF cardinality(v_bits) > 2 THEN
        RAISE EXCEPTION 'cron: %: bad range "%"', p_field, v_range
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
      v_lo := nudge.cron_value(v_bits[1], p_field, p_min, p_max, p_names);
      -- "n/step" means n, n+step, ... up to the maximum, as in the classic cron: "0/1" too.
      v_hi := CASE WHEN cardinality(v_bits) = 2
                   THEN nudge.cron_value(v_bits[2], p_field, p_min, p_max, p_names)
                   WHEN position('/' IN v_part) > 0 THEN p_max ELSE v_lo END;
      IF v_hi < v_lo THEN
        RAISE EXCEPTION 'cron: %: range "%" runs backwards', p_field, v_range
          USING ERRCODE = '22023', COLUMN = 'cron';
      END IF;
    END IF;
    v_i := v_lo;
    WHILE v_i <= v_hi LOOP
      v_mask := v_mask | (1::bigint << v_i);
      v_i := v_i + v_step;
    END LOOP;
  END LOOP;
  RETURN v_mask;
END $_$;

COMMENT ON FUNCTION nudge.cron_field(p_text text, p_field text, p_min integer, p_max integer, p_names text[]) IS 'The bit mask of one cron field (a list of *, n or a-b, each with an optional /step (n/step: from n up to the maximum), names where p_names is given, and L for the last day in the day-of-month field, as bit 0), or 22023 with COLUMN = cron and a message naming the field.';

UPDATE nudge.reminders
   SET cron_schedule = nudge.cron_parse(cron)
 WHERE cron LIKE '%/%'
   AND cron_schedule IS DISTINCT FROM nudge.cron_parse(cron);
