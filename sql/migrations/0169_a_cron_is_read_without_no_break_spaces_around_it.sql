-- 0169: a cron expression copied from a web page with a no-break space (U+00A0) or a NEL
-- (U+0085) around it reads as it does without them, as other white space does (explore32d F1:
-- refused quoting an invisible character).

CREATE OR REPLACE FUNCTION nudge.cron_parse(p_expr text) RETURNS nudge.cron
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
  -- White space around it is not a field: a pasted line's newline, a \v or \f, a web page's
  -- no-break space (U+00A0) or NEL (U+0085) too.
  v_expr   text := regexp_replace(coalesce(p_expr, ''),
                                  E'^[\\s\u00a0\u0085]+|[\\s\u00a0\u0085]+$', '', 'g');
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
END $_$;

COMMENT ON FUNCTION nudge.cron_parse(p_expr text) IS 'The parsed form of a five-field cron expression (minute hour day-of-month month day-of-week; lists, ranges, steps, JAN-DEC, SUN-SAT, 7 as Sunday, L as the last day of the month) or of a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually); 22023 with COLUMN = cron naming the wrong field otherwise, including day/month pairs that never happen (30 February).';

CREATE OR REPLACE FUNCTION nudge.trim_reminder_cron() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
  NEW.cron := regexp_replace(NEW.cron, E'^[\\s\u00a0\u0085]+|[\\s\u00a0\u0085]+$', '', 'g');
  RETURN NEW;
END $_$;

COMMENT ON FUNCTION nudge.trim_reminder_cron() IS 'Trigger: a reminder row''s cron expression is kept without the white space before and after it, which nudge.cron_parse reads as none.';

