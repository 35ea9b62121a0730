-- 0063: a one-off time said during the second pass of a repeated hour is the second, still
-- ahead. "today at 1:30" at 01:15 EST, after New York's clocks went back, was the first 01:30
-- (EDT, 45 minutes gone) and so refused as in the past; "at 1:30" was tomorrow's. A time that
-- happens twice still means its first instant whenever that one is ahead, as cron fires it.

CREATE FUNCTION nudge.instant_ahead(p_instants timestamptz[], p_after timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  SELECT CASE WHEN p_instants[1] <= p_after AND p_instants[2] > p_after THEN p_instants[2]
              ELSE p_instants[1] END
$$;

COMMENT ON FUNCTION nudge.instant_ahead(p_instants timestamptz[], p_after timestamptz) IS 'Of the instants of one local time (nudge.local_instants: one, or two in a fall-back overlap), the second when the first is not after p_after and the second is, else the first.';

CREATE OR REPLACE FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_today date := (p_now AT TIME ZONE p_tz)::date;
  v_at    timestamptz;
  v_cron  nudge.cron;
  v_twice timestamptz[];
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
      v_at := nudge.instant_ahead(nudge.local_instants(coalesce((p_moment->>'date')::date,
                                                                v_today + (p_moment->>'day')::integer)
                                                       + (p_moment->>'time')::time, p_tz),
                                  p_base);
    WHEN 'next' THEN     -- "at 9am", "next monday": the pattern's next occurrence after the base
                         -- (or after the start of today + day), plus seconds
      v_cron := nudge.cron_parse(p_moment->>'cron');
      v_at := nudge.cron_next(
                v_cron, p_tz,
                CASE WHEN p_moment ? 'day'
                     THEN (nudge.local_instants(v_today + (p_moment->>'day')::integer, p_tz))[1]
                          - interval '1 microsecond'
                     ELSE p_base END);
      -- Cron fires a repeated time at its first instant only; said as a one-off while the
      -- first has passed ("at 2:30" at 02:15 in the second pass), it is the second, still ahead.
      v_twice := nudge.local_instants((p_base AT TIME ZONE p_tz)::date + (v_at AT TIME ZONE p_tz)::time,
                                      p_tz);
      IF NOT p_moment ? 'day' AND cardinality(v_twice) = 2 AND v_twice[2] < v_at
         AND nudge.instant_ahead(v_twice, p_base) = v_twice[2]
         AND nudge.cron_next(v_cron, p_tz, v_twice[1] - interval '1 microsecond') = v_twice[1] THEN
        v_at := v_twice[2];
      END IF;
      v_at := v_at + make_interval(secs => coalesce((p_moment->>'seconds')::integer, 0));
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

COMMENT ON FUNCTION nudge.resolve_moment(p_moment jsonb, p_tz text, p_now timestamp with time zone, p_base timestamp with time zone) IS 'The instant a parsed moment names in zone p_tz (kinds instant, after, days, local and next, as api/schedule_words.hpp writes them; "today" is p_now''s date there, and relative ones count from p_base), wall times resolved as cron resolves them (a gap to its end, a repeated time to its first instant, or to its second when the first is not after p_base and the second is: "today at 2:30" said in the second pass); NULL for no moment, and for an or_now moment that is not after p_now and falls on p_now''s date or later; an instant before 0001-01-01T00:00:00Z or after 9999-12-31T23:59:59Z raises 22023 naming text (the words that named it).';
