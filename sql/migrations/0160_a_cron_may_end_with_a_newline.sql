-- 0160: a cron expression may end with a tab or a newline, as it may with spaces (explore31c
-- F5: "0 9 * * *\n", pasted from a crontab, was refused as having 6 fields), and a range with a
-- side missing ("-1", "5-") is refused as a bad range, not as "" being no number.

CREATE OR REPLACE FUNCTION nudge.cron_parse(p_expr text) RETURNS nudge.cron
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
  v_expr   text := btrim(coalesce(p_expr, ''), E' \t\n\r');  -- a pasted line's newline too
  v_fields text[];
  v_cron   nudge.cron;
  v_dow    bigint;
BEGIN
  v_expr := CASE lower(v_expr)
              WHEN '@hourly' THEN '0 * * * *'
              WHEN '@daily' THEN '0 0 * * *'
              WHEN '@midnight' THEN '0 0 * * *'
              WHEN '@weekly' THEN '0 0 * * 0'
              WHEN '@monthly' THEN '0 0 1 * *'
              WHEN '@yearly' THEN '0 0 1 1 *'
              WHEN '@annually' THEN '0 0 1 1 *'
              ELSE v_expr END;
  IF v_expr LIKE '@%' THEN
    RAISE EXCEPTION 'cron: unknown macro "%"', v_expr USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  v_fields := regexp_split_to_array(v_expr, '\s+');
  IF v_expr = '' OR cardinality(v_fields) <> 5 THEN
    RAISE EXCEPTION 'cron: needs 5 fields (minute hour day-of-month month day-of-week), got %',
      CASE WHEN v_expr = '' THEN 0 ELSE cardinality(v_fields) END
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  v_cron.minutes := nudge.cron_field(v_fields[1], 'minute', 0, 59);
  v_cron.hours := nudge.cron_field(v_fields[2], 'hour', 0, 23);
  v_cron.days := nudge.cron_field(v_fields[3], 'day-of-month', 1, 31);
  v_cron.months := nudge.cron_field(v_fields[4], 'month', 1, 12,
    ARRAY['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);
  v_dow := nudge.cron_field(v_fields[5], 'day-of-week', 0, 7,
    ARRAY['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']);
  v_cron.weekdays := ((v_dow | (v_dow >> 7)) & 127)::integer;  -- 7 is Sunday too
  v_cron.dom_star := v_fields[3] LIKE '*%';
  v_cron.dow_star := v_fields[5] LIKE '*%';
  v_cron.hour_star := v_fields[2] LIKE '*%';
  -- With the weekday unrestricted, the days must exist in at least one chosen month (every
  -- month has a last day).
  IF v_cron.dow_star AND NOT v_cron.dom_star AND v_cron.days & 1 = 0 AND NOT EXISTS (
       SELECT 1 FROM generate_series(1, 12) m, generate_series(1, 31) d
        WHERE v_cron.months & (1 << m) <> 0 AND v_cron.days & (1::bigint << d) <> 0
          AND d <= CASE WHEN m = 2 THEN 29 WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END) THEN
    RAISE EXCEPTION 'cron: day-of-month: no chosen day exists in the chosen months'
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  RETURN v_cron;
END $$;

COMMENT ON FUNCTION nudge.cron_parse(p_expr text) IS 'The parsed form of a five-field cron expression (minute hour day-of-month month day-of-week; lists, ranges, steps, JAN-DEC, SUN-SAT, 7 as Sunday, L as the last day of the month) or of a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually); 22023 with COLUMN = cron naming the wrong field otherwise, including day/month pairs that never happen (30 February).';

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
      IF cardinality(v_bits) > 2 OR '' = ANY (v_bits) THEN  -- "-1" is no number: a bad range
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
