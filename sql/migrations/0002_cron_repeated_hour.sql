-- 0002: a cron schedule whose hour field begins with '*' fires through the whole first pass of a
-- fall-back overlap, then the whole second pass (issue 11).
--
-- nudge.cron_next walks local times in order and returned the first instant after p_after. In
-- an overlap the second instant of an early local time comes before the first instant of a later
-- one in local order but after it in real time, so from inside the first pass it jumped to the
-- second pass: */30 in Europe/Berlin fired 02:00 CEST, 02:00 CET, 02:30 CET and skipped
-- 02:30 CEST; */5 skipped eleven fires each fall-back night.
--
-- The walk stays as it was, and so does its cost. A local time's first (or only) instant rises
-- with local time, and every second-pass instant lies after the whole first pass and before
-- anything beyond the overlap. So the walk still stops at the first candidate whose first
-- instant is after p_after; a second-pass instant after p_after met on the way is kept, and
-- wins if that candidate lies beyond the overlap. The walk starts back by the length of the
-- overlap (30 minutes on Lord Howe Island), and only when p_after lies in its first pass, where
-- it used to start back by one hour within two hours of any change of offset. Where no offset
-- changes near p_after, it computes nothing more than before.
--
-- Only the body changes (CREATE OR REPLACE, same signature): older binaries work with it.

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
