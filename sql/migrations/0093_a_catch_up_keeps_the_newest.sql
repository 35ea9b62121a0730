-- 0093: a fire_all catch-up across a fall-back keeps the newest occurrences. A cron's catch-up
-- past fire_all_cap counted its occurrences on the zone's clock, where the hour a fall-back
-- repeats counts once though it fires twice: the kept stretch started an hour early, and the
-- newest hour was never fired nor recorded (explore11a: a minutely cron in Berlin through
-- 2026-10-25 fired 00:21Z..02:00Z and lost 02:01Z..03:00Z; its history said 141 dropped).
-- nudge.catch_up_kept now walks forward from the first kept occurrence and moves it on by the
-- surplus, with the dropped ones counted.

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
  v_d     date;       -- the day counted, from now back
  v_c     bigint;     -- occurrences on day v_d within the stretch
  v_kept  bigint := 0;
  v_day   date;       -- the day of the first kept occurrence,
  v_on    bigint;     -- its occurrences,
  v_rank  bigint;     -- its place among them counted back from the newest,
  v_prev  date;       -- and the matching day before it
  v_times timestamp[];
  v_walk  timestamptz[] := '{}';  -- from first_kept forward, as the claim fires them
  v_next  timestamptz;
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
  -- forward from the oldest costs one cron_next per missed occurrence (thousands). So count on
  -- the zone's clock instead, a day at a time back from now until the cap is reached: a whole
  -- day has hours x minutes occurrences, only the first and the last day of the stretch are
  -- counted time by time. Across a daylight-saving change the clock's count is off by the times
  -- a gap collapses or an overlap repeats, so the catch-up then keeps a few fewer than the cap
  -- (or the cap cuts off a few of the newest).
  v_lo := r.next_run_at AT TIME ZONE r.timezone;
  v_hi := p_through AT TIME ZONE r.timezone;
  v_hours := nudge.cron_bits((r.cron_schedule).hours, 24);
  v_mins := nudge.cron_bits((r.cron_schedule).minutes, 60);
  v_d := v_hi::date;
  WHILE v_d >= v_lo::date LOOP
    IF (r.cron_schedule).months & (1 << date_part('month', v_d)::integer) = 0 THEN
      v_d := date_trunc('month', v_d::timestamp)::date - 1;  -- skip the month
      CONTINUE;
    END IF;
    v_c := CASE WHEN nudge.cron_day_matches(r.cron_schedule, v_d)
                THEN nudge.cron_times_between(v_hours, v_mins, v_d, v_lo, v_hi) ELSE 0 END;
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
  -- The times of that day and the one before, newest first: the v_rank-th is the first kept.
  v_times := ARRAY(SELECT t FROM (SELECT dd + make_interval(hours => h, mins => m) AS t
                                    FROM unnest(ARRAY[v_day, v_prev]) dd, unnest(v_hours) h,
                                         unnest(v_mins) m) z
                    WHERE t BETWEEN v_lo AND v_hi ORDER BY t DESC);
  first_kept := (nudge.local_instants(v_times[v_rank], r.timezone))[1];
  IF first_kept <= r.next_run_at OR first_kept > p_through THEN  -- (a daylight-saving edge)
    first_kept := NULL;
    RETURN;
  END IF;
  last_dropped := (nudge.local_instants(v_times[v_rank + 1], r.timezone))[1];
  IF last_dropped IS NULL THEN  -- (v_rank + 1 is on v_prev, which has a time in the stretch)
    first_kept := NULL;
    RETURN;
  END IF;
  -- The dropped ones: the rest of that day, the first day's from next_run_at on, and every
  -- whole day between.
  dropped := v_on - v_rank;
  IF v_lo::date < v_day THEN
    dropped := dropped
               + CASE WHEN nudge.cron_day_matches(r.cron_schedule, v_lo::date)
                      THEN nudge.cron_times_between(v_hours, v_mins, v_lo::date, v_lo, v_hi)
                      ELSE 0 END
               + cardinality(v_hours)::bigint * cardinality(v_mins)
                 * nudge.cron_day_count(r.cron_schedule, v_lo::date + 1, v_day - 1);
  END IF;
  -- On the clock, an hour a fall-back repeats counts once, though it fires twice: the newest
  -- p_cap then start later than first_kept, and the cap would cut off the newest (a whole
  -- hour of a minutely cron). Walked forward from first_kept (about p_cap cron_next calls, on
  -- this rare path only), the surplus moves it on.
  v_next := first_kept;
  WHILE v_next IS NOT NULL AND v_next <= p_through AND cardinality(v_walk) <= p_cap + 1500 LOOP
    v_walk := v_walk || v_next;
    v_next := nudge.cron_next(r.cron_schedule, r.timezone, v_next);
  END LOOP;
  IF cardinality(v_walk) > p_cap THEN
    dropped := dropped + (cardinality(v_walk) - p_cap);
    last_dropped := v_walk[cardinality(v_walk) - p_cap];
    first_kept := v_walk[cardinality(v_walk) - p_cap + 1];
  END IF;
END $$;

COMMENT ON FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamp with time zone, OUT first_kept timestamp with time zone, OUT last_dropped timestamp with time zone, OUT dropped bigint) IS 'When a recurring or cron reminder has more than p_cap occurrences from its next_run_at through p_through, the first of the newest p_cap (first_kept), the one before it (last_dropped) and how many come before it (dropped); NULLs otherwise. Exact for an interval; a cron is counted on its zone''s clock and then walked forward from first_kept, so the newest p_cap are always kept (dropped stays counted on the clock where a daylight-saving change falls among the dropped ones, a few off; a spring-forward gap among the kept ones keeps a few fewer).';
