-- 0150: a fire_all catch-up whose missed stretch holds a daylight-saving change keeps exactly the
-- newest fire_all_cap occurrences (explore29b HIGH-1, MEDIUM-1). nudge.catch_up_kept counted the
-- stretch on the zone's clock, where an hour a fall-back repeats counts once (a minutely cron's
-- 151 missed occurrences counted 91, under the cap of 100: the oldest 100 fired, and the 51
-- newest, the whole second pass of the hour among them, were lost with no record), and every
-- minute of a spring-forward gap counts though the gap fires once (76 missed, under the cap,
-- fired only 40, the other 36 recorded as "over fire_all_cap"). A day the zone's offset changes
-- is now counted by the occurrences nudge.cron_next walks, as the claim fires them; other days
-- are still counted on the clock, exact there.
--
-- Two new functions and one body.

CREATE FUNCTION nudge.is_clock_change_day(p_day date, p_tz text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT extract(epoch FROM ((p_day + 1)::timestamp AT TIME ZONE p_tz)
                            - (p_day::timestamp AT TIME ZONE p_tz)) <> 86400
$$;

COMMENT ON FUNCTION nudge.is_clock_change_day(p_day date, p_tz text) IS 'Whether local day p_day in zone p_tz is not 24 hours long (its UTC offset changes during it: a daylight-saving change, or a zone moving its clock).';

CREATE FUNCTION nudge.cron_day_instants(r nudge.reminders, p_day date, p_from timestamp with time zone, p_through timestamp with time zone) RETURNS timestamp with time zone[]
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_start timestamptz := p_day::timestamp AT TIME ZONE r.timezone;
  v_end   timestamptz := (p_day + 1)::timestamp AT TIME ZONE r.timezone;
  v_at    timestamptz;
  v_out   timestamptz[] := '{}';
BEGIN
  IF NOT nudge.cron_day_matches(r.cron_schedule, p_day) THEN RETURN v_out; END IF;
  IF NOT nudge.is_clock_change_day(p_day, r.timezone) THEN
    -- Each local time is one instant.
    RETURN ARRAY(SELECT i FROM (SELECT (p_day + make_interval(hours => h, mins => m)) AT TIME ZONE r.timezone AS i
                                  FROM unnest(nudge.cron_bits((r.cron_schedule).hours, 24)) h,
                                       unnest(nudge.cron_bits((r.cron_schedule).minutes, 60)) m) t
                  WHERE i BETWEEN p_from AND p_through ORDER BY i);
  END IF;
  -- As the claim fires them: a gap's times once, a repeated hour once or twice (nudge.cron_next).
  v_at := nudge.cron_next(r.cron_schedule, r.timezone, greatest(v_start, p_from) - interval '1 microsecond');
  WHILE v_at IS NOT NULL AND v_at < v_end AND v_at <= p_through LOOP
    v_out := v_out || v_at;
    v_at := nudge.cron_next(r.cron_schedule, r.timezone, v_at);
  END LOOP;
  RETURN v_out;
END $$;

COMMENT ON FUNCTION nudge.cron_day_instants(r nudge.reminders, p_day date, p_from timestamp with time zone, p_through timestamp with time zone) IS 'The occurrences of cron reminder r on local day p_day of its zone from p_from through p_through, earliest first, exactly as nudge.cron_next fires them (on a day whose offset changes, walked with it).';

CREATE OR REPLACE FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_n     bigint;
  v_lo    timestamp;  -- the missed stretch on the zone's clock
  v_hi    timestamp;
  v_hours integer[];
  v_mins  integer[];
  v_per_day bigint;   -- a whole day's occurrences on the clock
  v_d     date;       -- the day counted, from now back
  v_c     bigint;     -- occurrences on day v_d within the stretch
  v_kept  bigint := 0;
  v_day   date;       -- the day of the first kept occurrence,
  v_on    bigint;     -- its occurrences,
  v_rank  bigint;     -- its place among them counted back from the newest,
  v_prev  date;       -- and the matching day before it
  v_times timestamptz[];
BEGIN
  -- (a row written by hand at -infinity has nothing to catch up: nudge.occurrence_after)
  IF NOT isfinite(r.next_run_at) OR NOT isfinite(p_through) THEN RETURN; END IF;
  IF r.schedule_type = 'recurring' THEN
    v_n := floor(extract(epoch FROM p_through - r.next_run_at) / r.interval_seconds)::bigint + 1;
    IF v_n > p_cap THEN
      dropped := v_n - p_cap;
      first_kept := r.next_run_at + make_interval(secs => dropped::float8 * r.interval_seconds);
      last_dropped := first_kept - make_interval(secs => r.interval_seconds);
    END IF;
    RETURN;
  END IF;
  IF r.schedule_type <> 'cron' THEN RETURN; END IF;
  -- Walking back from now by occurrence has no helper (cron_next only walks forward) and walking
  -- forward from the oldest costs one cron_next per missed occurrence (thousands). So count a
  -- day at a time back from now until the cap is reached: a whole day has hours x minutes
  -- occurrences, the first and the last day of the stretch are counted time by time, and a day
  -- whose offset changes (a gap fires once, a repeated hour once or twice) by walking it.
  v_lo := r.next_run_at AT TIME ZONE r.timezone;
  v_hi := p_through AT TIME ZONE r.timezone;
  v_hours := nudge.cron_bits((r.cron_schedule).hours, 24);
  v_mins := nudge.cron_bits((r.cron_schedule).minutes, 60);
  v_per_day := cardinality(v_hours)::bigint * cardinality(v_mins);
  v_d := v_hi::date;
  WHILE v_d >= v_lo::date LOOP
    IF (r.cron_schedule).months & (1 << date_part('month', v_d)::integer) = 0 THEN
      v_d := date_trunc('month', v_d::timestamp)::date - 1;  -- skip the month
      CONTINUE;
    END IF;
    v_c := CASE WHEN NOT nudge.cron_day_matches(r.cron_schedule, v_d) THEN 0
                WHEN nudge.is_clock_change_day(v_d, r.timezone)
                THEN cardinality(nudge.cron_day_instants(r, v_d, r.next_run_at, p_through))
                ELSE nudge.cron_times_between(v_hours, v_mins, v_d, v_lo, v_hi) END;
    IF v_c > 0 THEN
      IF v_day IS NOT NULL THEN
        v_prev := v_d;
        EXIT;
      END IF;
      IF v_kept + v_c >= p_cap THEN
        v_day := v_d;
        v_on := v_c;
        v_rank := p_cap - v_kept;
      END IF;
      v_kept := v_kept + v_c;
    END IF;
    v_d := v_d - 1;
  END LOOP;
  IF v_day IS NULL OR (v_rank = v_on AND v_prev IS NULL) THEN RETURN; END IF;  -- none to drop
  -- The occurrences of that day and the one before, newest first: the v_rank-th is the first kept.
  v_times := ARRAY(SELECT t FROM unnest(nudge.cron_day_instants(r, v_day, r.next_run_at, p_through)
                                        || CASE WHEN v_prev IS NULL THEN '{}'::timestamptz[]
                                                ELSE nudge.cron_day_instants(r, v_prev, r.next_run_at, p_through) END) t
                    ORDER BY t DESC);
  first_kept := v_times[v_rank];
  last_dropped := v_times[v_rank + 1];
  -- The dropped ones: the rest of that day, the first day's from next_run_at on, and every
  -- whole day between, those whose offset changes as they fire.
  dropped := v_on - v_rank;
  IF v_lo::date < v_day THEN
    dropped := dropped
               + cardinality(nudge.cron_day_instants(r, v_lo::date, r.next_run_at, p_through))
               + v_per_day * nudge.cron_day_count(r.cron_schedule, v_lo::date + 1, v_day - 1)
               + coalesce((SELECT sum(cardinality(nudge.cron_day_instants(r, d::date, r.next_run_at, p_through)) - v_per_day)
                             FROM generate_series(v_lo::date + 1, v_day - 1, interval '1 day') d
                            WHERE nudge.is_clock_change_day(d::date, r.timezone)
                              AND nudge.cron_day_matches(r.cron_schedule, d::date)), 0);
  END IF;
END $$;

COMMENT ON FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint) IS 'When a recurring or cron reminder has more than p_cap occurrences from its next_run_at through p_through, the first of the newest p_cap (first_kept), the one before it (last_dropped) and how many come before it (dropped); NULLs otherwise. Exact, across daylight-saving changes too: a cron''s occurrences are counted as nudge.cron_next fires them (a gap''s times once, an hour a fall-back repeats once or twice).';
