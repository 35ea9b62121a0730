-- 0011: schedules in words (issue 15). Every schedule says itself in one canonical sentence,
-- "every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times",
-- which nudge-api's parser (api/schedule_words.cpp) reads back into the same schedule.
--
--   nudge.describe_schedule  the sentence of any schedule, given as a create takes it
--   nudge.describe_reminder  the sentence of a stored reminder; nudge.reminder_json shows it as
--                            "schedule_text" (and so do the REST answers built on it)
--   nudge.resolve_moment     the instant a phrase like "tomorrow at 9" names, in a zone, with the
--                            cron engine's daylight-saving rules: the one step of parsing that
--                            needs the zone's rules, which live here
--
-- Parsing itself is not offered in SQL: a second implementation of the grammar, in PL/pgSQL,
-- would drift from the one the API runs (README, "Schedules in words"). The sentence forms below
-- and that grammar are tested against each other (tests/api/schedule_words_test.cpp).
--
-- The cron engine learns "L" (the last day of the month) in the day-of-month field, which "on the
-- last day of every month" needs; and the preview shows a cron occurrence that falls exactly on
-- run_at, as a create fires it. Only bodies change and functions are added: older binaries work
-- with this schema.

-- ---------------------------------------------------------------------------------------------
-- Cron: "L", the last day of the month (bit 0 of the day mask, which days 1-31 leave unused)
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION nudge.cron_field(p_text text, p_field text, p_min integer,
                                            p_max integer, p_names text[] DEFAULT NULL)
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
      -- "n/step" means n, n+step, ... up to the maximum, as in the classic cron.
      v_hi := CASE WHEN cardinality(v_bits) = 2
                   THEN nudge.cron_value(v_bits[2], p_field, p_min, p_max, p_names)
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
COMMENT ON FUNCTION nudge.cron_field(text, text, integer, integer, text[]) IS
  'The bit mask of one cron field (a list of *, n or a-b, each with an optional /step, names where p_names is given, and L for the last day in the day-of-month field, as bit 0), or 22023 with COLUMN = cron and a message naming the field.';

CREATE OR REPLACE FUNCTION nudge.cron_parse(p_expr text) RETURNS nudge.cron
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_expr   text := btrim(coalesce(p_expr, ''));
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
COMMENT ON FUNCTION nudge.cron_parse(text) IS
  'The parsed form of a five-field cron expression (minute hour day-of-month month day-of-week; lists, ranges, steps, JAN-DEC, SUN-SAT, 7 as Sunday, L as the last day of the month) or of a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually); 22023 with COLUMN = cron naming the wrong field otherwise, including day/month pairs that never happen (30 February).';

CREATE OR REPLACE FUNCTION nudge.cron_next(p_cron nudge.cron, p_tz text, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_now    timestamp := p_after AT TIME ZONE p_tz;  -- p_after on the zone's clock
  v_start  timestamp := date_trunc('minute', v_now);
  -- How far the clock falls back within two hours of p_after (zero or less: it does not).
  v_back   interval := (v_now - (p_after AT TIME ZONE 'UTC'))
                       - nudge.utc_offset(p_after + interval '2 hours', p_tz);
  v_day    date;
  v_end    date;
  v_dom    boolean;
  v_dow    boolean;
  v_hour   integer;
  v_min    integer;
  v_local  timestamp;
  v_ats    timestamptz[];
  v_second timestamptz;  -- the earliest second-pass instant after p_after met so far
BEGIN
  -- Inside the first pass (p_after + v_back shows the same local time), the second pass of the
  -- repeated stretch is still ahead although its local times are earlier: start that much
  -- earlier. Elsewhere start at p_after's own minute, so frequent schedules test a candidate or
  -- two.
  IF v_back > interval '0' AND (p_after + v_back) AT TIME ZONE p_tz = v_now THEN
    v_start := v_start - v_back;
  END IF;
  v_day := v_start::date;
  v_end := v_day + 366 * 8 + 2;
  WHILE v_day <= v_end LOOP
    IF p_cron.months & (1 << extract(month FROM v_day)::integer) = 0 THEN
      v_day := (date_trunc('month', v_day::timestamp) + interval '1 month')::date;  -- skip the month
      CONTINUE;
    END IF;
    -- L (bit 0) matches the day whose next day is the 1st.
    v_dom := p_cron.days & (1::bigint << extract(day FROM v_day)::integer) <> 0
             OR (p_cron.days & 1 <> 0 AND extract(day FROM v_day + 1) = 1);
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
          v_ats := nudge.local_instants(v_local, p_tz);
          -- First instants rise with local time, and a second-pass instant comes after every
          -- first-pass one and before anything beyond the overlap.
          IF v_ats[1] > p_after THEN
            RETURN least(v_ats[1], v_second);
          END IF;
          -- A repeated local time fires once, the first time, unless the hour field begins
          -- with '*': then its second instant fires too, after the rest of the first pass.
          -- Keep the earliest such instant after p_after until the walk leaves the first pass.
          IF p_cron.hour_star AND v_second IS NULL AND v_ats[2] > p_after THEN
            v_second := v_ats[2];
            -- The overlap ends within its own length of this local time, and nothing after
            -- it comes earlier: the walk need not go past that day.
            v_end := (v_local + (v_ats[2] - v_ats[1]))::date;
            -- The rest of the first pass up to p_after has only later second instants.
            v_start := date_trunc('minute', v_now);
          END IF;
        END LOOP;
      END LOOP;
    END IF;
    v_day := v_day + 1;
  END LOOP;
  RETURN v_second;
END $$;
COMMENT ON FUNCTION nudge.cron_next(nudge.cron, text, timestamptz) IS
  'The first fire of p_cron strictly after p_after in zone p_tz, under the classic cron daemon''s daylight-saving rules: a local time in a gap fires at the first instant after the gap; a repeated local time fires once, at its first instant, or at both when the hour field begins with *, so the whole first pass fires, then the whole second pass. NULL if none comes within 8 years, which only a day-of-month and a day-of-week that must both match can make happen.';

-- ---------------------------------------------------------------------------------------------
-- The preview shows an occurrence exactly at run_at, which a create fires (nudge.first_run_at)
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamptz,
                                                  p_count integer DEFAULT 5,
                                                  p_run_at timestamptz DEFAULT NULL,
                                                  p_interval_seconds integer DEFAULT NULL,
                                                  p_cron text DEFAULT NULL,
                                                  p_timezone text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_at     timestamptz;
  v_zone   text;
  v_parsed nudge.cron;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('count', 'must be 1 to 100');
  END IF;
  IF p_schedule_type = 'cron' THEN
    IF p_cron IS NULL THEN PERFORM nudge.reject('cron', 'is required for cron'); END IF;
    IF p_interval_seconds IS NOT NULL THEN
      PERFORM nudge.reject('interval_seconds', 'is not for cron schedules');
    END IF;
    v_zone := nudge.checked_timezone(coalesce(p_timezone, 'UTC'));
    v_parsed := nudge.cron_parse(p_cron);
    -- The first occurrence at or after run_at, as a create takes it.
    v_at := greatest(p_from, coalesce(p_run_at - interval '1 microsecond', p_from));
    FOR i IN 1..p_count LOOP
      v_at := nudge.cron_next(v_parsed, v_zone, v_at);
      EXIT WHEN v_at IS NULL;
      RETURN NEXT nudge.rfc3339_in_zone(v_at, v_zone);
    END LOOP;
    RETURN;
  END IF;
  IF p_cron IS NOT NULL OR p_timezone IS NOT NULL THEN
    PERFORM nudge.reject(CASE WHEN p_cron IS NOT NULL THEN 'cron' ELSE 'timezone' END,
                         'is only for cron schedules');
  END IF;
  IF p_schedule_type = 'one_time' THEN
    IF p_run_at IS NULL THEN PERFORM nudge.reject('run_at', 'is required for one_time'); END IF;
    IF p_run_at > p_from THEN RETURN NEXT nudge.rfc3339_in_zone(p_run_at, 'UTC'); END IF;
    RETURN;
  END IF;
  IF p_schedule_type IS DISTINCT FROM 'recurring' THEN
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  END IF;
  v_at := coalesce(p_run_at, p_from);
  IF v_at <= p_from THEN
    v_at := nudge.next_interval_occurrence(v_at, p_interval_seconds, p_from);
  END IF;
  FOR i IN 1..p_count LOOP
    RETURN NEXT nudge.rfc3339_in_zone(v_at, 'UTC');
    v_at := v_at + p_interval_seconds * interval '1 second';
  END LOOP;
END $$;
COMMENT ON FUNCTION nudge.preview_schedule(text, timestamptz, integer, timestamptz, integer, text, text) IS
  'The next p_count (1..100) fire times strictly after p_from of a schedule as a create would take it (one_time: run_at; recurring: every interval from run_at, or from p_from; cron: the expression''s occurrences at or after run_at in its zone, under the cron daylight-saving rules), as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); the 22023 errors a create would give.';

-- ---------------------------------------------------------------------------------------------
-- The sentence. Its forms are the grammar's canonical ones (README, "Schedules in words"):
--   one_time   once on 2026-12-24 at 18:00 (Europe/Berlin)
--   recurring  every 2 hours[, starting 2026-12-01 at 09:00]
--   cron       every weekday at 09:00 (Europe/Berlin)
--              every day, every 15 minutes between 09:00 and 17:59 (UTC)
--              every month on the 1st and the last day at 09:00 (UTC)
--              cron "*/7 3 * * 2" (UTC)      (what the words cannot say, as the expression)
--   bounds     , until feedback_submitted is true, until 2026-12-31, at most 5 times
-- The zone follows the first part that has a wall-clock time. They are small SQL expressions,
-- inlined into nudge.reminder_json, except the cron part, which a reminder keeps (cron_words).
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.words_list(p_items text[]) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN cardinality(p_items) < 2 THEN p_items[1]
              ELSE array_to_string(p_items[1:cardinality(p_items) - 1], ', ') || ' and '
                   || p_items[cardinality(p_items)] END
$$;
COMMENT ON FUNCTION nudge.words_list(text[]) IS
  'Items as an English list: "a", "a and b", "a, b and c"; NULL for none.';

CREATE FUNCTION nudge.words_time(p_time time) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT to_char(p_time, 'HH24:MI')
         || CASE WHEN p_time = date_trunc('minute', p_time::interval)::time THEN ''
                 ELSE to_char(p_time, ':SS') END
         || CASE WHEN p_time = date_trunc('second', p_time::interval)::time THEN ''
                 ELSE rtrim(to_char(p_time, '.US'), '0') END
$$;
COMMENT ON FUNCTION nudge.words_time(time) IS
  'A time of day as 24-hour HH:MM, with :SS and a fraction only when they are not zero.';

CREATE FUNCTION nudge.words_instant(p_at timestamptz, p_tz text, p_bare_time time) RETURNS text
LANGUAGE sql STABLE AS $$
  -- An instant whose local time is repeated (the second pass of a fall-back hour) cannot be
  -- named by that local time, which means its first instant: it is given with its offset.
  SELECT CASE WHEN p_tz <> 'UTC'
                   AND (nudge.local_instants(p_at AT TIME ZONE p_tz, p_tz))[1] <> p_at
              THEN nudge.rfc3339_in_zone(p_at, p_tz)
              WHEN (p_at AT TIME ZONE p_tz)::time = p_bare_time
              THEN to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD')
              ELSE to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD') || ' at '
                   || nudge.words_time((p_at AT TIME ZONE p_tz)::time) END
$$;
COMMENT ON FUNCTION nudge.words_instant(timestamptz, text, time) IS
  'Instant p_at as zone p_tz''s date and time ("2026-12-24 at 18:00"), the date alone when the time is p_bare_time, or RFC 3339 with its offset when that local time happens twice and p_at is its second instant.';

CREATE FUNCTION nudge.words_count(p_n integer, p_unit text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p_n = 1 THEN p_unit ELSE p_n || ' ' || p_unit || 's' END
$$;
COMMENT ON FUNCTION nudge.words_count(integer, text) IS
  'A count of a unit: the unit alone for one ("hour"), else the number and the plural ("2 hours").';

CREATE FUNCTION nudge.words_count_list(p_values integer[], p_unit text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT p_unit || CASE WHEN cardinality(p_values) > 1 THEN 's ' ELSE ' ' END
         || nudge.words_list(p_values::text[])
$$;
COMMENT ON FUNCTION nudge.words_count_list(integer[], text) IS
  'A unit and the values it names: "minute 5", "minutes 0, 15 and 30".';

CREATE FUNCTION nudge.words_interval(p_seconds integer) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p_seconds % 604800 = 0 THEN nudge.words_count(p_seconds / 604800, 'week')
              WHEN p_seconds % 86400 = 0 THEN nudge.words_count(p_seconds / 86400, 'day')
              WHEN p_seconds % 3600 = 0 THEN nudge.words_count(p_seconds / 3600, 'hour')
              WHEN p_seconds % 60 = 0 THEN nudge.words_count(p_seconds / 60, 'minute')
              ELSE nudge.words_count(p_seconds, 'second') END
$$;
COMMENT ON FUNCTION nudge.words_interval(integer) IS
  'An interval of p_seconds in its largest whole unit: "second", "90 seconds", "2 hours", "week".';

CREATE FUNCTION nudge.words_flag(p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
  -- A key the parser would read as something else (a word of the grammar, a date, a number) or
  -- that is not one plain token is quoted, with \ and " escaped. The words are
  -- api/word_lexicon.cpp's reserved_words(); tests/api/schedule_words_test.cpp reads each back.
  SELECT CASE WHEN p_key ~ '^[A-Za-z_][A-Za-z0-9_:.-]*$' AND NOT lower(p_key) = ANY (ARRAY[
                'a', 'aedt', 'aest', 'akst', 'am', 'an', 'and', 'annually', 'apr', 'april', 'at',
                'aug', 'august', 'between', 'bst', 'cdt', 'cest', 'cet', 'cron', 'cst', 'daily',
                'day', 'days', 'dec', 'december', 'each', 'edt', 'eest', 'eet', 'eight', 'eleven',
                'est', 'every', 'feb', 'february', 'five', 'for', 'four', 'fri', 'friday',
                'fridays', 'from', 'gmt', 'hour', 'hourly', 'hours', 'hr', 'hrs', 'hst', 'in', 'is',
                'ist', 'jan', 'january', 'jst', 'jul', 'july', 'jun', 'june', 'kst', 'last', 'mar',
                'march', 'may', 'mdt', 'midnight', 'min', 'mins', 'minute', 'minutes', 'mon',
                'monday', 'mondays', 'month', 'monthly', 'months', 'most', 'msk', 'mst', 'next',
                'nine', 'noon', 'nov', 'november', 'now', 'oct', 'october', 'of', 'on', 'once',
                'one', 'only', 'past', 'pdt', 'pm', 'pst', 'sat', 'saturday', 'saturdays', 'sec',
                'second', 'seconds', 'secs', 'sep', 'sept', 'september', 'seven', 'six', 'starting',
                'sun', 'sunday', 'sundays', 'ten', 'the', 'this', 'three', 'through', 'thru', 'thu',
                'thur', 'thurs', 'thursday', 'thursdays', 'till', 'time', 'times', 'to', 'today',
                'tomorrow', 'tonight', 'true', 'tue', 'tues', 'tuesday', 'tuesdays', 'twelve',
                'two', 'until', 'utc', 'wed', 'wednesday', 'wednesdays', 'week', 'weekday',
                'weekdays', 'weekend', 'weekends', 'weekly', 'weeks', 'west', 'wet', 'year',
                'yearly', 'years', 'yesterday'])
              THEN p_key
              ELSE '"' || replace(replace(p_key, '\', '\\'), '"', '\"') || '"' END
$$;
COMMENT ON FUNCTION nudge.words_flag(text) IS
  'A stop flag key as the sentence gives it: as is when the parser reads it back as a flag, else in double quotes with \ and " escaped.';

CREATE FUNCTION nudge.cron_bits(p_mask bigint, p_width integer) RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $$
  -- Bit i of the mask is character i + 1 of the reversed bit string: bit 0 is taken apart, the
  -- rest found at their own positions once the first character is dropped.
  SELECT CASE WHEN p_mask & 1 <> 0 THEN ARRAY[0] ELSE '{}'::integer[] END
         || array_positions(string_to_array(substr(reverse(p_mask::bit(64)::text), 2, p_width - 1),
                                            NULL), '1')
$$;
COMMENT ON FUNCTION nudge.cron_bits(bigint, integer) IS
  'The numbers of the bits set among the lowest p_width bits of p_mask, in ascending order.';

CREATE FUNCTION nudge.cron_words(p_cron nudge.cron, p_expr text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
-- No queries and few statements: this runs for every cron reminder a list shows.
DECLARE
  c_days   constant text[] := ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday',
                                    'friday', 'saturday'];
  c_months constant text[] := ARRAY['january', 'february', 'march', 'april', 'may', 'june',
                                    'july', 'august', 'september', 'october', 'november',
                                    'december'];
  c_fallback constant text := 'cron "' || replace(replace(p_expr, '\', '\\'), '"', '\"') || '"';
  v_mins   integer[] := '{}';
  v_hours  integer[] := '{}';
  v_doms   integer[];
  v_items  text[] := '{}';
  v_months text;
  v_days   text;
  v_time   text;
  v_step   integer;
  v_n      integer;
  v_i      integer;
  v_j      integer;
BEGIN
  v_mins := nudge.cron_bits(p_cron.minutes, 60);
  v_hours := nudge.cron_bits(p_cron.hours, 24);
  IF p_cron.months <> 8190 THEN  -- not every month (bits 1..12)
    FOR v_i IN 1..12 LOOP
      IF p_cron.months & (1 << v_i) <> 0 THEN v_items := v_items || c_months[v_i]; END IF;
    END LOOP;
    v_months := nudge.words_list(v_items);
  END IF;

  -- The days: every day, some days of the week, or some days of the month (with both day
  -- fields restricted, cron fires on either: only the expression says that clearly).
  IF p_cron.dom_star AND p_cron.dow_star AND p_cron.days = 4294967294 AND p_cron.weekdays = 127 THEN
    v_days := 'every day' || coalesce(' in ' || v_months, '');
  ELSIF p_cron.dom_star AND p_cron.days = 4294967294 AND NOT p_cron.dow_star THEN
    IF p_cron.weekdays = 62 THEN
      v_days := 'every weekday';
    ELSE
      v_items := '{}';
      FOR v_i IN 1..7 LOOP  -- Monday first
        IF p_cron.weekdays & (1 << (v_i % 7)) <> 0 THEN v_items := v_items || c_days[v_i % 7 + 1]; END IF;
      END LOOP;
      v_days := 'every ' || nudge.words_list(v_items);
    END IF;
    v_days := v_days || coalesce(' in ' || v_months, '');
  ELSIF p_cron.dow_star AND p_cron.weekdays = 127 AND NOT p_cron.dom_star THEN
    -- The grammar refuses a day some named month lacks ("the 31st of june and july"), so such
    -- an expression (which fires only where the day exists) is said as itself.
    v_doms := nudge.cron_bits(p_cron.days & 4294967294, 32);
    IF v_months IS NOT NULL
       AND v_doms[cardinality(v_doms)] > (CASE WHEN p_cron.months & 4 <> 0 THEN 29     -- february
                                               WHEN p_cron.months & 2640 <> 0 THEN 30  -- 30 days
                                               ELSE 31 END) THEN
      RETURN c_fallback;
    END IF;
    v_items := '{}';
    FOREACH v_i IN ARRAY v_doms LOOP
      v_items := v_items || (v_i || CASE WHEN v_i IN (11, 12, 13) THEN 'th'
                                         WHEN v_i % 10 = 1 THEN 'st' WHEN v_i % 10 = 2 THEN 'nd'
                                         WHEN v_i % 10 = 3 THEN 'rd' ELSE 'th' END);
    END LOOP;
    v_days := CASE WHEN cardinality(v_items) > 0 THEN 'the ' ELSE '' END
              || nudge.words_list(v_items || CASE WHEN p_cron.days & 1 <> 0
                                                  THEN ARRAY['the last day'] END);
    v_days := CASE WHEN v_months IS NULL THEN 'every month on ' || v_days
                   ELSE 'every year on ' || v_days || ' of ' || v_months END;
  ELSE
    RETURN c_fallback;
  END IF;

  -- The times. Minutes are "every N minutes" when they are 0, N, 2N, ... and N divides 60.
  v_n := cardinality(v_mins);
  IF v_n >= 2 AND 60 % v_n = 0 THEN
    v_step := 60 / v_n;
    FOR v_i IN 1..v_n LOOP
      IF v_mins[v_i] <> (v_i - 1) * v_step THEN v_step := NULL; EXIT; END IF;
    END LOOP;
  END IF;
  v_n := cardinality(v_mins) * cardinality(v_hours);
  IF NOT p_cron.hour_star THEN
    -- A run of hours with many times is a window; up to 24 times are listed.
    IF v_n > 8 AND v_hours[cardinality(v_hours)] - v_hours[1] + 1 = cardinality(v_hours)
       AND (v_step IS NOT NULL OR cardinality(v_mins) <= 12) THEN
      v_time := CASE WHEN v_step = 1 THEN 'every minute'
                     WHEN v_step IS NOT NULL THEN 'every ' || v_step || ' minutes'
                     ELSE 'every hour at ' || nudge.words_count_list(v_mins, 'minute') END
                || ' between ' || lpad(v_hours[1]::text, 2, '0') || ':00 and '
                || lpad(v_hours[cardinality(v_hours)]::text, 2, '0') || ':59';
    ELSIF v_n <= 24 THEN
      v_items := '{}';
      FOREACH v_i IN ARRAY v_hours LOOP
        FOREACH v_j IN ARRAY v_mins LOOP
          v_items := v_items || (lpad(v_i::text, 2, '0') || ':' || lpad(v_j::text, 2, '0'));
        END LOOP;
      END LOOP;
      v_time := 'at ' || nudge.words_list(v_items);
    END IF;
  ELSIF p_cron.hours = 16777215 THEN  -- * (bits 0..23)
    IF v_step IS NOT NULL THEN
      v_time := CASE WHEN v_step = 1 THEN 'every minute' ELSE 'every ' || v_step || ' minutes' END;
    ELSIF cardinality(v_mins) <= 12 THEN
      v_time := 'every hour at ' || nudge.words_count_list(v_mins, 'minute');
    END IF;
  ELSIF cardinality(v_hours) >= 2 AND 24 % cardinality(v_hours) = 0 AND cardinality(v_mins) <= 12 THEN
    -- */N: hours 0, N, 2N, ...
    v_j := 24 / cardinality(v_hours);
    FOR v_i IN 1..cardinality(v_hours) LOOP
      IF v_hours[v_i] <> (v_i - 1) * v_j THEN v_j := NULL; EXIT; END IF;
    END LOOP;
    IF v_j IS NOT NULL THEN
      v_time := 'every ' || v_j || ' hours at ' || nudge.words_count_list(v_mins, 'minute');
    END IF;
  END IF;
  IF v_time IS NULL THEN
    RETURN c_fallback;
  END IF;
  RETURN v_days || CASE WHEN v_time LIKE 'at %' THEN ' ' ELSE ', ' END || v_time;
END $$;
COMMENT ON FUNCTION nudge.cron_words(nudge.cron, text) IS
  'The days and times of a parsed cron expression in the grammar''s words ("every weekday at 09:00", "every day, every 15 minutes between 09:00 and 17:59"), or cron "<p_expr>" when the words cannot say it exactly.';

-- The cron part of a reminder's sentence is kept with the row, as its parsed expression is
-- (cron_schedule): describing an expression takes tens of microseconds of PL/pgSQL, a list shows
-- hundreds of reminders, and the expression changes only when the row is written.
ALTER TABLE nudge.reminders ADD COLUMN cron_words text;
COMMENT ON COLUMN nudge.reminders.cron_words IS
  'nudge.cron_words of the cron expression, kept by trigger reminder_cron_is_described; NULL unless cron.';

CREATE FUNCTION nudge.describe_reminder_cron() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  NEW.cron_words := nudge.cron_words(NEW.cron_schedule, NEW.cron);
  RETURN NEW;
END $$;
COMMENT ON FUNCTION nudge.describe_reminder_cron() IS
  'Trigger: sets cron_words of a reminder row to nudge.cron_words of its cron expression.';

-- Only writes that set the expression run it: claims and finishes never do.
CREATE TRIGGER reminder_cron_is_described
  BEFORE INSERT OR UPDATE OF cron, cron_schedule ON nudge.reminders
  FOR EACH ROW WHEN (NEW.cron_schedule IS NOT NULL)
  EXECUTE FUNCTION nudge.describe_reminder_cron();

UPDATE nudge.reminders SET cron_words = nudge.cron_words(cron_schedule, cron)
 WHERE cron_schedule IS NOT NULL;

CREATE FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamptz,
                                     p_interval_seconds integer, p_cron_words text,
                                     p_timezone text, p_stop_condition_value text,
                                     p_max_fires integer, p_ends_at timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE p_schedule_type
           WHEN 'one_time' THEN 'once on ' || nudge.words_instant(p_run_at, coalesce(p_timezone, 'UTC'), NULL)
                                || ' (' || coalesce(p_timezone, 'UTC') || ')'
           WHEN 'recurring' THEN 'every ' || nudge.words_interval(p_interval_seconds)
           ELSE p_cron_words || ' (' || coalesce(p_timezone, 'UTC') || ')' END
         || CASE WHEN p_schedule_type <> 'one_time' AND p_run_at IS NOT NULL
                 THEN ', starting ' || nudge.words_instant(p_run_at, coalesce(p_timezone, 'UTC'), '00:00')
                      || CASE WHEN p_schedule_type = 'recurring' AND p_ends_at IS NULL
                              THEN ' (' || coalesce(p_timezone, 'UTC') || ')' ELSE '' END
                 ELSE '' END
         || coalesce(', until ' || nudge.words_flag(p_stop_condition_value) || ' is true', '')
         || CASE WHEN p_schedule_type <> 'one_time' AND p_ends_at IS NOT NULL
                 THEN ', until ' || nudge.words_instant(p_ends_at, coalesce(p_timezone, 'UTC'), '23:59:59')
                      || CASE WHEN p_schedule_type = 'recurring' THEN ' (' || coalesce(p_timezone, 'UTC') || ')' ELSE '' END
                 ELSE '' END
         || CASE WHEN p_schedule_type = 'one_time' OR p_max_fires IS NULL THEN ''
                 WHEN p_max_fires = 1 THEN ', at most once'
                 ELSE ', at most ' || p_max_fires || ' times' END
$$;
COMMENT ON FUNCTION nudge.schedule_words(text, timestamptz, integer, text, text, text, integer, timestamptz) IS
  'The canonical sentence of a schedule from its parts, p_cron_words being nudge.cron_words of its cron expression; times in p_timezone (UTC when NULL); max_fires and ends_at are left out of a one_time schedule, on which they have no effect.';

CREATE FUNCTION nudge.describe_schedule(p_schedule_type text,
                                        p_run_at timestamptz DEFAULT NULL,
                                        p_interval_seconds integer DEFAULT NULL,
                                        p_cron text DEFAULT NULL,
                                        p_timezone text DEFAULT NULL,
                                        p_stop_condition_type text DEFAULT NULL,
                                        p_stop_condition_value text DEFAULT NULL,
                                        p_max_fires integer DEFAULT NULL,
                                        p_ends_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_schedule_type = 'one_time' AND p_run_at IS NULL THEN
    PERFORM nudge.reject('run_at', 'is required for one_time');
  ELSIF p_schedule_type = 'recurring'
        AND (p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 31622400) THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  ELSIF p_schedule_type = 'cron' AND p_cron IS NULL THEN
    PERFORM nudge.reject('cron', 'is required for cron');
  ELSIF p_schedule_type IS NULL OR p_schedule_type NOT IN ('one_time', 'recurring', 'cron') THEN
    PERFORM nudge.reject('schedule_type', 'must be one_time, recurring or cron');
  END IF;
  IF p_stop_condition_value IS NOT NULL AND p_stop_condition_type IS DISTINCT FROM 'db_check' THEN
    PERFORM nudge.reject('stop_condition_type', 'must be db_check');
  END IF;
  IF p_max_fires IS NOT NULL AND p_max_fires < 1 THEN
    PERFORM nudge.reject('max_fires', 'must be at least 1');
  END IF;
  RETURN nudge.schedule_words(
    p_schedule_type, p_run_at, p_interval_seconds,
    CASE WHEN p_schedule_type = 'cron' THEN nudge.cron_words(nudge.cron_parse(p_cron), p_cron) END,
    nudge.checked_timezone(coalesce(p_timezone, 'UTC')), p_stop_condition_value, p_max_fires,
    p_ends_at);
END $$;
COMMENT ON FUNCTION nudge.describe_schedule(text, timestamptz, integer, text, text, text, text, integer, timestamptz) IS
  'The canonical sentence of a schedule given as a create takes it ("every weekday at 09:00 (Europe/Berlin), until feedback_submitted is true, at most 5 times"), which POST /v1/schedules/parse reads back into the same schedule; times in p_timezone, also for one_time and recurring schedules (UTC by default); run_at of a recurring or cron schedule is its start; 22023 naming the field for a schedule a create would refuse for its type, interval, cron expression, zone, stop condition or max_fires.';

CREATE FUNCTION nudge.describe_reminder(r nudge.reminders) RETURNS text
LANGUAGE sql STABLE AS $$
  -- A one_time reminder's time is its occurrence, also while a retry waits; the start of a
  -- repeating one is behind it or shown as next_run_at.
  SELECT nudge.schedule_words(
           r.schedule_type,
           CASE WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at) END,
           r.interval_seconds,
           r.cron_words,
           r.timezone, r.stop_condition_value, r.max_fires, r.ends_at)
$$;
COMMENT ON FUNCTION nudge.describe_reminder(nudge.reminders) IS
  'The canonical sentence of a reminder''s schedule, as nudge.describe_schedule gives it, without the start of a recurring or cron reminder (its next_run_at says when it fires next).';

-- ---------------------------------------------------------------------------------------------
-- The reminder's JSON carries its sentence: 0009's body, plus the last line.
-- ---------------------------------------------------------------------------------------------

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
    || jsonb_build_object('schedule_text', nudge.describe_reminder(r))
$$;
COMMENT ON FUNCTION nudge.reminder_json(nudge.reminders) IS
  'The public JSON form of a reminder: every field that is set (nulls left out, the payload and the request as stored), times in the session''s zone, the occurrence being retried and its attempts while there is one, the rule and event that created it, its schedule in words (schedule_text), no lease internals.';

-- ---------------------------------------------------------------------------------------------
-- Moments: the instants of "tomorrow at 9" and its kin, for POST /v1/schedules/parse
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamptz,
                                     p_base timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_today date := (p_now AT TIME ZONE p_tz)::date;
  v_at    timestamptz;
BEGIN
  IF p_moment IS NULL OR jsonb_typeof(p_moment) = 'null' THEN
    RETURN NULL;
  END IF;
  CASE p_moment->>'kind'
    WHEN 'instant' THEN  -- RFC 3339 text, offset included
      v_at := (p_moment->>'at')::timestamptz;
    WHEN 'after' THEN    -- "in 10 minutes", "for 2 hours": real seconds after the base
      v_at := p_base + make_interval(secs => (p_moment->>'seconds')::double precision);
    WHEN 'days' THEN     -- "in 3 days": the same wall-clock time that many days later
      v_at := (nudge.local_instants((p_base AT TIME ZONE p_tz)
                                    + make_interval(days => (p_moment->>'days')::integer),
                                    p_tz))[1];
    WHEN 'local' THEN    -- "tomorrow at 9", "on 2026-12-24 at 18:00": a date and a wall time
      v_at := (nudge.local_instants(coalesce((p_moment->>'date')::date,
                                             v_today + (p_moment->>'day')::integer)
                                    + (p_moment->>'time')::time, p_tz))[1];
    WHEN 'next' THEN     -- "at 9am", "next monday": the pattern's next occurrence after the base
                         -- (or after the start of today + day), plus seconds
      v_at := nudge.cron_next(
                nudge.cron_parse(p_moment->>'cron'), p_tz,
                CASE WHEN p_moment ? 'day'
                     THEN (nudge.local_instants(v_today + (p_moment->>'day')::integer, p_tz))[1]
                          - interval '1 microsecond'
                     ELSE p_base END)
              + make_interval(secs => coalesce((p_moment->>'seconds')::integer, 0));
    ELSE
      RAISE EXCEPTION 'moment: unknown kind in %', p_moment USING ERRCODE = '22023';
  END CASE;
  -- "starting today": a start that is not ahead means from now, which is no start at all.
  IF coalesce((p_moment->>'or_now')::boolean, false) AND v_at <= p_now THEN
    RETURN NULL;
  END IF;
  RETURN v_at;
END $$;
COMMENT ON FUNCTION nudge.resolve_moment(jsonb, text, timestamptz, timestamptz) IS
  'The instant a parsed moment names in zone p_tz (kinds instant, after, days, local and next, as api/schedule_words.hpp writes them; "today" is p_now''s date there, and relative ones count from p_base), wall times resolved as cron resolves them (a gap to its end, a repeated time to its first instant); NULL for no moment, and for an or_now moment that is not after p_now.';
