-- 0058: a cron schedule's next occurrence is found however far away it is, and the words keep
-- the wall clock of "every day/week starting <day> at <time>".
--
-- (1) nudge.cron_next searched 8 years ahead. A day-of-month and a day-of-week that must both
-- match (29 February on a Sunday: "0 0 29 2 */6" fires 2032, then 2048) can be 20 to 40 years
-- apart: such a create was refused (0056), and a reminder created inside the window went to
-- next_run_at infinity after its last fire within it and never fired again. When the 8-year walk
-- finds nothing, the search goes on through the 400-year Gregorian cycle, a decade at a time over
-- the chosen months' days only; the usual walk is unchanged and pays nothing. A schedule
-- cron_parse takes always has a next occurrence now. end_after_attempt's cheap test for a next
-- occurrence past 9999-12-31 looks 400 years back instead of 8, so such a reminder still ends.
--
-- (2) The sentence of a fixed interval of a day or a week from a start at a time of day says
-- "every 24 hours" / "every 7 days": "every day, starting 2027-03-10 at 09:00" now reads back as
-- the calendar schedule that keeps 09:00 (api/schedule_words.cpp), which differs across daylight
-- saving.
--
-- (3) A weekday field covering all seven days is said "every day" (it was listed day by day).
--
-- (4) A start on today's date without a time ("starting 2027-01-10" on 2027-01-10) means from now,
-- as "starting today" does: an or_now moment is NULL when it is not ahead of now and falls on
-- today, not before it (a past date is still refused).

-- (1)
CREATE OR REPLACE FUNCTION nudge.cron_next(p_cron nudge.cron, p_tz text, p_after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
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
  v_found  date;         -- beyond the walk: the first day that matches
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
  IF v_second IS NOT NULL THEN
    RETURN v_second;
  END IF;
  -- Nothing within 8 years: only a day-of-month and a day-of-week that must both match do that
  -- (29 February on a Sunday comes 28 or 40 years apart). The calendar repeats every 400 years
  -- (146,097 days, whole weeks), so such a day comes within 400 years of any other or never:
  -- look for it a decade at a time among the chosen months' days, then take its first time
  -- from the walk above started the day before (on which none falls).
  v_day := v_end + 1;
  WHILE v_day <= v_end + 146097 LOOP
    SELECT min(d.d) INTO v_found FROM nudge.cron_days(p_cron, v_day, v_day + 3652) d(d);
    IF v_found IS NOT NULL THEN
      RETURN nudge.cron_next(p_cron, p_tz, (v_found - 1)::timestamp AT TIME ZONE p_tz);
    END IF;
    v_day := v_day + 3653;
  END LOOP;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION nudge.cron_next(p_cron nudge.cron, p_tz text, p_after timestamp with time zone) IS 'The first fire of p_cron strictly after p_after in zone p_tz, under the classic cron daemon''s daylight-saving rules: a local time in a gap fires at the first instant after the gap; a repeated local time fires once, at its first instant, or at both when the hour field begins with *, so the whole first pass fires, then the whole second pass. However far away it is (29 February on a Sunday: decades): NULL only for a schedule with no day at all in the 400-year Gregorian cycle, which nudge.cron_parse refuses.';

-- (1) Unreachable for a schedule cron_parse takes; kept for the create and the reschedule that
-- name it.
CREATE OR REPLACE FUNCTION nudge.cron_horizon_problem() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT 'has no occurrence (its days never come in the 400-year cycle of the calendar)'::text
$$;
COMMENT ON FUNCTION nudge.cron_horizon_problem() IS 'Why a cron schedule is refused when nudge.cron_next finds no occurrence, which no schedule nudge.cron_parse takes lacks.';

-- (1) A next occurrence past 9999-12-31 can follow any fire within 400 years of it now.
CREATE OR REPLACE FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
                   OR r.status NOT IN ('ACTIVE', 'PAUSED') THEN NULL
              WHEN r.schedule_type = 'one_time' AND p_outcome = 'failed' THEN 'attempts_exhausted'
              WHEN r.schedule_type = 'one_time' THEN 'fired'
              WHEN r.fire_count + 1 >= r.max_fires THEN 'max_fires'
              -- The calendar ends with 9999 (RFC 3339 has four-digit years): a schedule whose
              -- next occurrence falls later has run its course, as one past ends_at has (Quartz
              -- completes a trigger with no fire time left the same way). Only a fire within
              -- 400 years of it (the calendar's cycle, cron_next's furthest search) can have its
              -- next one after it: the drain computes no extra occurrence for any other.
              WHEN (r.ends_at IS NOT NULL
                    OR coalesce(r.occurrence_at, r.next_run_at) > timestamptz '9599-12-01 00:00:00+00')
                   AND nudge.next_run_after_attempt(r, p_outcome, p_policy, p_now)
                       > least(r.ends_at, nudge.latest_fire())
                THEN 'ends_at'
         END
$$;
COMMENT ON FUNCTION nudge.end_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'Why a live reminder ends once an attempt ended with p_outcome at p_now (attempts_exhausted: a one_time whose last attempt failed; fired: a one_time; max_fires; ends_at: its next run is after ends_at or after 9999-12-31T23:59:59Z), or NULL when it goes on (a retry, a later occurrence) or is not live.';

-- (2)
CREATE OR REPLACE FUNCTION nudge.schedule_words(p_schedule_type text, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron_words text, p_timezone text, p_stop_condition_value text, p_max_fires integer, p_ends_at timestamp with time zone) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
  v_tz    text := coalesce(p_timezone, 'UTC');
  v_words text;
BEGIN
  -- max_fires and ends_at have no effect on a one_time schedule, so its sentence leaves them out.
  IF p_schedule_type = 'one_time' THEN
    RETURN 'once on ' || nudge.words_instant(p_run_at, v_tz, NULL) || ' (' || v_tz || ')'
           || coalesce(', until ' || nudge.words_flag(p_stop_condition_value) || ' is true', '');
  END IF;
  IF p_schedule_type = 'recurring' THEN
    -- "every day, starting 2027-03-10 at 09:00" is the calendar schedule that keeps 09:00 across
    -- daylight saving: a fixed day or week from a start at a time of day is said in hours or days.
    v_words := 'every ' || CASE WHEN p_interval_seconds IN (86400, 604800)
                                     AND (p_run_at AT TIME ZONE v_tz)::time <> '00:00'
                                THEN CASE p_interval_seconds WHEN 86400 THEN '24 hours'
                                                             ELSE '7 days' END
                                ELSE nudge.words_interval(p_interval_seconds) END;
  ELSE
    v_words := p_cron_words || ' (' || v_tz || ')';
  END IF;
  -- A recurring schedule names its zone once, after the last time it gives.
  IF p_run_at IS NOT NULL THEN
    v_words := v_words || ', starting ' || nudge.words_instant(p_run_at, v_tz, '00:00');
    IF p_schedule_type = 'recurring' AND p_ends_at IS NULL THEN
      v_words := v_words || ' (' || v_tz || ')';
    END IF;
  END IF;
  IF p_stop_condition_value IS NOT NULL THEN
    v_words := v_words || ', until ' || nudge.words_flag(p_stop_condition_value) || ' is true';
  END IF;
  IF p_ends_at IS NOT NULL THEN
    v_words := v_words || ', until ' || nudge.words_instant(p_ends_at, v_tz, '23:59:59');
    IF p_schedule_type = 'recurring' THEN
      v_words := v_words || ' (' || v_tz || ')';
    END IF;
  END IF;
  IF p_max_fires = 1 THEN
    v_words := v_words || ', at most once';
  ELSIF p_max_fires IS NOT NULL THEN
    v_words := v_words || ', at most ' || p_max_fires || ' times';
  END IF;
  RETURN v_words;
END $$;

-- (3)
CREATE OR REPLACE FUNCTION nudge.cron_words(p_cron nudge.cron, p_expr text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
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
  -- Every day of the week is every day: with the day-of-month * (ANDed) or restricted (ORed).
  IF p_cron.weekdays = 127
     AND ((p_cron.dom_star AND p_cron.days = 4294967294) OR NOT (p_cron.dom_star OR p_cron.dow_star)) THEN
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

-- (4)
CREATE OR REPLACE FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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
  -- "starting today" (or today's date): a start today that is not ahead means from now, which
  -- is no start at all. One on an earlier day is in the past.
  IF coalesce((p_moment->>'or_now')::boolean, false) AND v_at <= p_now
     AND (v_at AT TIME ZONE p_tz)::date >= v_today THEN
    RETURN NULL;
  END IF;
  -- "tomorrow at 9" on 9999-12-31: the words name a time no reminder can have.
  IF nudge.time_problem(v_at) IS NOT NULL THEN
    PERFORM nudge.reject('text', CASE WHEN v_at > nudge.latest_fire()
                                      THEN 'names a time after 9999-12-31T23:59:59Z, the last a '
                                           'reminder can fire at'
                                      ELSE 'names a time before 0001-01-01T00:00:00Z' END);
  END IF;
  RETURN v_at;
END $$;

COMMENT ON FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) IS 'The instant a parsed moment names in zone p_tz (kinds instant, after, days, local and next, as api/schedule_words.hpp writes them; "today" is p_now''s date there, and relative ones count from p_base), wall times resolved as cron resolves them (a gap to its end, a repeated time to its first instant); NULL for no moment, and for an or_now moment that is not after p_now and falls on p_now''s date or later; an instant before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z raises 22023 naming text (the words that named it).';
