-- 0004: cron schedules, calendar arithmetic only (reminders use them in a later migration).
--   nudge_cron             a parsed five-field expression: one bit mask per field
--   nudge_cron_parse       text -> nudge_cron, or 22023 naming the field that is wrong
--   nudge_cron_next        the first fire strictly after an instant, in a time zone, with the
--                          classic cron daemon's daylight-saving rules (below)
--   nudge_cron_next_n      the next n fires (schedule previews)
--
-- Daylight saving, as the classic cron daemon does it:
--   * a local time that falls in a gap (spring forward) fires at the first instant after the
--     gap (Europe/Berlin 02:30 on the last Sunday of March fires at 03:00 CEST), and several
--     such times collapse into that one fire;
--   * a local time that happens twice (fall back) fires once, at the first of the two instants,
--     unless the hour field begins with '*', in which case it fires at both (an hourly schedule
--     keeps firing every real hour).
-- Fire times are absolute instants. PostgreSQL's own AT TIME ZONE resolves gaps and overlaps
-- differently, so every local time is checked by converting back.

CREATE TYPE nudge_cron AS (
  minutes      bigint,   -- bit m set: minute m (0-59) matches
  hours        integer,  -- bit h: hour h (0-23)
  days         bigint,   -- bit d: day of month d (1-31)
  months       integer,  -- bit m: month m (1-12)
  weekdays     integer,  -- bit w: day of week w (0-6, Sunday = 0)
  dom_star     boolean,  -- day-of-month field begins with '*': unrestricted
  dow_star     boolean,  -- day-of-week field begins with '*'
  hour_star    boolean   -- hour field begins with '*': repeated local times fire twice
);

-- Guarantees: the bit mask of one field (a list of *, n, a-b, with /step on any of them, and
-- names where p_names is given, e.g. JAN..DEC), or 22023 with COLUMN = 'cron' and a message
-- naming the field, e.g. "cron: day-of-month: 32 is out of range 1-31".
CREATE FUNCTION nudge_cron_field(p_text text, p_field text, p_min integer, p_max integer,
                                 p_names text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
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
      v_lo := nudge_cron_value(v_bits[1], p_field, p_min, p_max, p_names);
      -- "n/step" means n, n+step, ... up to the maximum, as in the classic cron.
      v_hi := CASE WHEN cardinality(v_bits) = 2 THEN nudge_cron_value(v_bits[2], p_field, p_min, p_max, p_names)
                   WHEN v_step > 1 THEN p_max ELSE v_lo END;
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
END $$;

-- Guarantees: one value of a field (a number, or a name from p_names, case-insensitive) within
-- p_min..p_max, or 22023 naming the field.
CREATE FUNCTION nudge_cron_value(p_text text, p_field text, p_min integer, p_max integer,
                                 p_names text[])
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_value integer;
BEGIN
  IF p_text ~ '^[0-9]{1,4}$' THEN
    v_value := p_text::integer;
  ELSIF p_names IS NOT NULL AND upper(p_text) = ANY (p_names) THEN
    v_value := array_position(p_names, upper(p_text)) - 1 + p_min;
  ELSE
    RAISE EXCEPTION 'cron: %: "%" is not a number%', p_field, p_text,
      CASE WHEN p_names IS NULL THEN '' ELSE ' or a name' END
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  IF v_value < p_min OR v_value > p_max THEN
    RAISE EXCEPTION 'cron: %: % is out of range %-%', p_field, v_value, p_min, p_max
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  RETURN v_value;
END $$;

-- Guarantees: the parsed form of a standard five-field expression (minute hour day-of-month
-- month day-of-week; lists, ranges, steps, JAN-DEC and SUN-SAT, 7 as Sunday) or of a macro
-- (@hourly @daily @midnight @weekly @monthly @yearly @annually); 22023 naming the wrong field
-- otherwise, including day/month pairs that can never happen (30 February).
CREATE FUNCTION nudge_cron_parse(p_expr text) RETURNS nudge_cron
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_expr   text := btrim(coalesce(p_expr, ''));
  v_fields text[];
  v_cron   nudge_cron;
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
  v_cron.minutes := nudge_cron_field(v_fields[1], 'minute', 0, 59);
  v_cron.hours := nudge_cron_field(v_fields[2], 'hour', 0, 23);
  v_cron.days := nudge_cron_field(v_fields[3], 'day-of-month', 1, 31);
  v_cron.months := nudge_cron_field(v_fields[4], 'month', 1, 12,
    ARRAY['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);
  v_dow := nudge_cron_field(v_fields[5], 'day-of-week', 0, 7,
    ARRAY['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']);
  v_cron.weekdays := ((v_dow | (v_dow >> 7)) & 127)::integer;  -- 7 is Sunday too
  v_cron.dom_star := v_fields[3] LIKE '*%';
  v_cron.dow_star := v_fields[5] LIKE '*%';
  v_cron.hour_star := v_fields[2] LIKE '*%';
  -- With the weekday unrestricted, the days must exist in at least one chosen month.
  IF v_cron.dow_star AND NOT v_cron.dom_star AND NOT EXISTS (
       SELECT 1 FROM generate_series(1, 12) m, generate_series(1, 31) d
        WHERE v_cron.months & (1 << m) <> 0 AND v_cron.days & (1::bigint << d) <> 0
          AND d <= CASE WHEN m = 2 THEN 29 WHEN m IN (4, 6, 9, 11) THEN 30 ELSE 31 END) THEN
    RAISE EXCEPTION 'cron: day-of-month: no chosen day exists in the chosen months'
      USING ERRCODE = '22023', COLUMN = 'cron';
  END IF;
  RETURN v_cron;
END $$;

-- Guarantees: the UTC offset of zone p_tz at instant p_at.
CREATE FUNCTION nudge_utc_offset(p_at timestamptz, p_tz text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
  SELECT (p_at AT TIME ZONE p_tz) - (p_at AT TIME ZONE 'UTC')
$$;

-- Guarantees: the instants at which local time p_local happens in zone p_tz, earliest first:
-- one normally, two in a fall-back overlap, and in a spring-forward gap the one instant at
-- which the gap ends (the first instant after it).
CREATE FUNCTION nudge_local_instants(p_local timestamp, p_tz text) RETURNS timestamptz[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_guess  timestamptz := p_local AT TIME ZONE p_tz;
  v_before interval := nudge_utc_offset(v_guess - interval '1 day', p_tz);
  v_after  interval := nudge_utc_offset(v_guess + interval '1 day', p_tz);
  v_out    timestamptz[] := '{}';
  v_lo     timestamptz;
  v_hi     timestamptz;
  v_mid    timestamptz;
  v_at     timestamptz;
BEGIN
  FOREACH v_at IN ARRAY ARRAY[(p_local - v_before) AT TIME ZONE 'UTC',
                              (p_local - v_after) AT TIME ZONE 'UTC'] LOOP
    IF (v_at AT TIME ZONE p_tz) = p_local AND NOT v_at = ANY (v_out) THEN
      v_out := v_out || v_at;
    END IF;
  END LOOP;
  IF cardinality(v_out) > 0 THEN
    RETURN ARRAY(SELECT x FROM unnest(v_out) x ORDER BY x);
  END IF;
  -- A gap: find the transition, the first instant with the later offset (minute precision).
  v_lo := v_guess - interval '1 day';
  v_hi := v_guess + interval '1 day';
  WHILE v_hi - v_lo > interval '1 minute' LOOP
    v_mid := v_lo + (v_hi - v_lo) / 2;
    IF nudge_utc_offset(v_mid, p_tz) = v_before THEN v_lo := v_mid; ELSE v_hi := v_mid; END IF;
  END LOOP;
  RETURN ARRAY[date_trunc('minute', v_hi)];
END $$;

-- Guarantees: the first fire of p_cron strictly after p_after, in zone p_tz, under the
-- daylight-saving rules at the top of this file; NULL if none within 8 years (which the parser
-- makes impossible for valid expressions: 29 February recurs every 4 or 8 years).
CREATE FUNCTION nudge_cron_next(p_cron nudge_cron, p_tz text, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_start timestamp := date_trunc('minute', p_after AT TIME ZONE p_tz);
  v_day   date;
  v_end   date;
  v_dom   boolean;
  v_dow   boolean;
  v_hour  integer;
  v_min   integer;
  v_local timestamp;
  v_at    timestamptz;
  v_ats   timestamptz[];
BEGIN
  -- Near a change of offset, start an hour early in local time: the second pass through a
  -- fall-back hour lies after p_after in absolute time although its local time is earlier.
  -- Elsewhere start at p_after's own minute, so frequent schedules test a candidate or two.
  IF nudge_utc_offset(p_after - interval '2 hours', p_tz)
     <> nudge_utc_offset(p_after + interval '2 hours', p_tz) THEN
    v_start := v_start - interval '1 hour';
  END IF;
  v_day := v_start::date;
  v_end := v_day + 366 * 8 + 2;
  WHILE v_day <= v_end LOOP
    IF p_cron.months & (1 << extract(month FROM v_day)::integer) = 0 THEN
      v_day := (date_trunc('month', v_day::timestamp) + interval '1 month')::date;  -- skip the month
      CONTINUE;
    END IF;
    v_dom := p_cron.days & (1::bigint << extract(day FROM v_day)::integer) <> 0;
    v_dow := p_cron.weekdays & (1 << extract(dow FROM v_day)::integer) <> 0;
    -- Classic cron: when both day fields are restricted, either one matching is enough.
    v_dom := CASE WHEN p_cron.dom_star OR p_cron.dow_star THEN v_dom AND v_dow ELSE v_dom OR v_dow END;
    IF v_dom THEN
      FOR v_hour IN 0..23 LOOP
        CONTINUE WHEN p_cron.hours & (1 << v_hour) = 0;
        CONTINUE WHEN v_day + make_interval(hours => v_hour + 1) <= v_start;
        FOR v_min IN 0..59 LOOP
          CONTINUE WHEN p_cron.minutes & (1::bigint << v_min) = 0;
          v_local := v_day + make_interval(hours => v_hour, mins => v_min);
          CONTINUE WHEN v_local < v_start;
          v_ats := nudge_local_instants(v_local, p_tz);
          IF cardinality(v_ats) = 2 AND NOT p_cron.hour_star THEN
            v_ats := v_ats[1:1];  -- a repeated local time fires once, the first time
          END IF;
          FOREACH v_at IN ARRAY v_ats LOOP
            IF v_at > p_after THEN
              RETURN v_at;
            END IF;
          END LOOP;
        END LOOP;
      END LOOP;
    END IF;
    v_day := v_day + 1;
  END LOOP;
  RETURN NULL;
END $$;

-- Guarantees: as nudge_cron_next, from the text of the expression and the zone; an unknown
-- zone is 22023 with COLUMN = 'timezone'.
CREATE FUNCTION nudge_cron_next(p_expr text, p_tz text, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
  BEGIN
    PERFORM now() AT TIME ZONE p_tz;
    IF p_tz IS NULL OR p_tz = '' THEN
      RAISE invalid_parameter_value;
    END IF;
  EXCEPTION WHEN invalid_parameter_value THEN
    RAISE EXCEPTION 'timezone: "%" is not a time zone name', p_tz
      USING ERRCODE = '22023', COLUMN = 'timezone';
  END;
  RETURN nudge_cron_next(nudge_cron_parse(p_expr), p_tz, p_after);
END $$;

-- Guarantees: the next p_count (1..100) fires strictly after p_after, in order.
CREATE FUNCTION nudge_cron_next_n(p_expr text, p_tz text, p_after timestamptz, p_count integer)
RETURNS SETOF timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_cron nudge_cron;
  v_at   timestamptz := p_after;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'count: must be 1 to 100' USING ERRCODE = '22023', COLUMN = 'count';
  END IF;
  v_at := nudge_cron_next(p_expr, p_tz, p_after);  -- checks the zone and the expression
  v_cron := nudge_cron_parse(p_expr);
  FOR i IN 1..p_count LOOP
    EXIT WHEN v_at IS NULL;
    RETURN NEXT v_at;
    v_at := nudge_cron_next(v_cron, p_tz, v_at);
  END LOOP;
END $$;

-- Guarantees: instant p_at as an RFC 3339 string with zone p_tz's offset at that instant
-- (e.g. 2026-03-29T03:00:00+02:00; whole seconds shown, fractions kept).
CREATE FUNCTION nudge_rfc3339_in_zone(p_at timestamptz, p_tz text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD"T"HH24:MI:SS')
         || CASE WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0 THEN ''
                 ELSE rtrim(to_char(p_at AT TIME ZONE p_tz, '.US'), '0') END
         || CASE WHEN o < interval '0' THEN '-' ELSE '+' END
         || to_char(abs(extract(epoch FROM o))::integer / 3600, 'FM00') || ':'
         || to_char(abs(extract(epoch FROM o))::integer % 3600 / 60, 'FM00')
    FROM (SELECT nudge_utc_offset(p_at, p_tz) AS o) x
$$;

-- Guarantees: the next p_count (1..100) fire times strictly after p_from of a schedule as a
-- create would take it (one_time: run_at; recurring: every interval from run_at, or from
-- p_from when run_at is absent; cron: the expression in its zone), as RFC 3339 strings in the
-- schedule's zone (UTC unless a cron zone is given); the same 22023 errors a create would give.
CREATE FUNCTION nudge_preview_schedule_v1(p_schedule_type text, p_from timestamptz,
                                          p_count integer, p_run_at timestamptz DEFAULT NULL,
                                          p_interval_seconds integer DEFAULT NULL,
                                          p_cron text DEFAULT NULL, p_timezone text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_at timestamptz;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge_reject('count', 'must be 1 to 100');
  END IF;
  IF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge_reject('cron', 'is required for cron'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge_reject('interval_seconds', 'is not for cron schedules');
    END IF;
    FOR v_at IN SELECT * FROM nudge_cron_next_n(p_cron, coalesce(p_timezone, 'UTC'),
                                                greatest(p_from, coalesce(p_run_at, p_from)),
                                                p_count) LOOP
      RETURN NEXT nudge_rfc3339_in_zone(v_at, coalesce(p_timezone, 'UTC'));
    END LOOP;
    RETURN;
  END IF;
  IF p_cron IS NOT NULL OR p_timezone IS NOT NULL THEN
    PERFORM nudge_reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron schedules');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge_reject('run_at', 'is required for one_time'); END IF;
    IF p_run_at > p_from THEN RETURN NEXT nudge_rfc3339_in_zone(p_run_at, 'UTC'); END IF;
    RETURN;
  END IF;
  IF p_schedule_type <> 'recurring' THEN
    PERFORM nudge_reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
    PERFORM nudge_reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  END IF;
  v_at := coalesce(p_run_at, p_from);
  IF v_at <= p_from THEN
    v_at := nudge_next_interval_occurrence(v_at, p_interval_seconds, p_from);
  END IF;
  FOR i IN 1..p_count LOOP
    RETURN NEXT nudge_rfc3339_in_zone(v_at, 'UTC');
    v_at := v_at + p_interval_seconds * interval '1 second';
  END LOOP;
END $$;
