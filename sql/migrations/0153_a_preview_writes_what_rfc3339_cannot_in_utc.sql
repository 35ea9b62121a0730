-- 0153: a preview writes an instant in UTC where its zone's offset cannot be written the RFC 3339
-- way (explore29b LOW-2): a local mean time offset with seconds (Berlin's +00:53:28 before 1893
-- was written +00:53, naming an instant 28 s off), or a local date past 9999 (Kiritimati's
-- 9999-12-31T10:00Z was written 10000-01-01T00:00:00+14:00). Only the previews use it: every
-- other instant Nudge writes is in UTC.

CREATE FUNCTION nudge.rfc3339_zone(p_at timestamptz, p_tz text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE WHEN extract(epoch FROM nudge.utc_offset(p_at, p_tz))::integer % 60 <> 0
                   OR p_at AT TIME ZONE p_tz >= timestamp '10000-01-01'
              THEN 'UTC' ELSE p_tz END
$$;

COMMENT ON FUNCTION nudge.rfc3339_zone(timestamptz, text) IS 'The zone instant p_at can be written in as RFC 3339 text: p_tz, or UTC where p_tz''s offset then has seconds (local mean time) or its local date is past 9999.';

CREATE OR REPLACE FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamp with time zone DEFAULT NULL::timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text, p_max_fires integer DEFAULT NULL::integer, p_ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_misfire_policy text DEFAULT 'fire_once'::text, p_misfire_threshold_seconds integer DEFAULT 60, p_fire_all_cap integer DEFAULT 100) RETURNS SETOF text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF p_misfire_policy IS NULL OR p_misfire_policy NOT IN ('fire_once', 'skip', 'fire_all') THEN
    PERFORM nudge.reject('misfire_policy', 'must be one of fire_once, skip, fire_all');
  END IF;
  IF p_misfire_policy <> 'fire_once' AND p_schedule_type = 'one_time' THEN
    PERFORM nudge.reject('misfire_policy', 'is only for recurring and cron reminders (one_time takes fire_once)');
  END IF;
  -- The ranges of [misfire] threshold_seconds and fire_all_cap.
  IF p_misfire_threshold_seconds IS NULL OR p_misfire_threshold_seconds NOT BETWEEN 1 AND 86400 THEN
    PERFORM nudge.reject('misfire_threshold_seconds', 'must be 1 to 86400');
  END IF;
  IF p_fire_all_cap IS NULL OR p_fire_all_cap NOT BETWEEN 1 AND 10000 THEN
    PERFORM nudge.reject('fire_all_cap', 'must be 1 to 10000');
  END IF;
  -- From p_from on (nudge.preview_schedule lists those strictly after its p_from: 1 us before,
  -- except at the earliest time), an interval schedule without run_at starting at p_from as its
  -- create does. A first fire already past is the reminder's first next_run_at: the claim at
  -- p_from fires it once (fire_once; skip within the threshold), skips it (skip, past the
  -- threshold: once at p_from when a later occurrence is within it), or fires every occurrence due by then up to ends_at, the newest p_fire_all_cap
  -- (fire_all); these fires are listed at p_from, even past ends_at when their occurrences are
  -- not. Then none past max_fires (counted from the first listed) nor after ends_at (a fire at
  -- it still happens).
  RETURN QUERY
  WITH s AS (
    SELECT f.at,
           CASE WHEN f.at > nudge.earliest_time() THEN f.at - interval '1 microsecond' ELSE f.at END
             AS after,
           coalesce(p_run_at, CASE WHEN p_schedule_type = 'recurring' THEN f.at END) AS run_at
      FROM (SELECT coalesce(p_from, now()) AS at) f
  ), m AS (
    SELECT s.*,
           CASE WHEN s.run_at < s.at
                THEN (SELECT p.t::timestamptz
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(s.run_at - interval '1 microsecond', nudge.earliest_time()),
                               1, s.run_at, p_interval_seconds, p_cron, p_timezone) p(t))
           END AS first_at
      FROM s
  ), c AS (
    SELECT m.*,
           CASE WHEN m.first_at IS NULL OR m.first_at >= m.at OR m.first_at > p_ends_at THEN 0
                -- Skipped, up to a later occurrence missed by no more than the threshold.
                WHEN p_misfire_policy = 'skip'
                     AND m.first_at < m.at - p_misfire_threshold_seconds * interval '1 second'
                THEN (SELECT count(*)::integer
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               m.at - p_misfire_threshold_seconds * interval '1 second', 1,
                               m.run_at, p_interval_seconds, p_cron, p_timezone) p(t)
                       WHERE p.t::timestamptz <= m.at
                         AND (p_ends_at IS NULL OR p.t::timestamptz <= p_ends_at))
                WHEN p_misfire_policy = 'fire_all'
                THEN (SELECT count(*)::integer
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(m.first_at - interval '1 microsecond', nudge.earliest_time()),
                               least(p_count, p_fire_all_cap), m.run_at, p_interval_seconds,
                               p_cron, p_timezone) p(t)
                       WHERE p.t::timestamptz <= m.at
                         AND (p_ends_at IS NULL OR p.t::timestamptz <= p_ends_at))
                ELSE 1 END AS caught_up,
           -- After a first fire already past, the claim at p_from has taken the occurrences
           -- due then, one at p_from too: the schedule goes on strictly after it.
           CASE WHEN m.first_at < m.at THEN m.at ELSE m.after END AS resume
      FROM m
  ), l AS (
    SELECT nudge.rfc3339_in_zone(c.at, nudge.rfc3339_zone(c.at, CASE WHEN p_schedule_type = 'cron'
                                            THEN nudge.checked_timezone(coalesce(p_timezone, 'UTC'))
                                            ELSE 'UTC' END)) AS t,
           0::bigint AS n, true AS caught_up
      FROM c, generate_series(1, c.caught_up)
    UNION ALL
    SELECT p.t, p.n, false
      FROM c, nudge.preview_schedule(p_schedule_type, c.resume, p_count, c.run_at,
                                     p_interval_seconds, p_cron, p_timezone)
                WITH ORDINALITY p(t, n)
  ), o AS (
    SELECT l.t, l.caught_up, row_number() OVER (ORDER BY l.n) AS n FROM l
  )
  SELECT o.t FROM o
   WHERE o.n <= p_count AND (p_max_fires IS NULL OR o.n <= p_max_fires)
     AND (o.caught_up OR p_ends_at IS NULL OR o.t::timestamptz <= p_ends_at)
   ORDER BY o.n;
END $$;

COMMENT ON FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_max_fires integer, p_ends_at timestamp with time zone, p_misfire_policy text, p_misfire_threshold_seconds integer, p_fire_all_cap integer) IS 'The first p_count (1..100) fire times of a reminder created at p_from (default now) with this schedule and misfire policy, in order: a first fire already past fires at p_from once (fire_once, and skip unless it is more than p_misfire_threshold_seconds past), not at all (skip past the threshold, unless a later occurrence is missed by no more than it: then once) or once per occurrence due by p_from up to p_ends_at, the newest p_fire_all_cap of them (fire_all), each listed at p_from even when that is past p_ends_at, the schedule going on strictly after p_from; otherwise every fire from p_from on, p_from included (an interval schedule without run_at starts at p_from); none past p_max_fires nor after p_ends_at; as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); a policy other than fire_once for one_time, a threshold outside 1..86400 or a cap outside 1..10000 raises 22023 naming it, as do the errors of nudge.preview_schedule.';

CREATE OR REPLACE FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer DEFAULT 5, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_interval_seconds integer DEFAULT NULL::integer, p_cron text DEFAULT NULL::text, p_timezone text DEFAULT NULL::text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_at     timestamptz;
  v_zone   text;
  v_parsed nudge.cron;
BEGIN
  IF p_count IS NULL OR p_count NOT BETWEEN 1 AND 100 THEN
    PERFORM nudge.reject('count', 'must be 1 to 100');
  END IF;
  -- Given times out of range are refused; occurrences past the end are not listed (a reminder
  -- ends there), so a from at or past it lists none.
  IF p_from < nudge.earliest_time() THEN
    PERFORM nudge.reject('from', nudge.time_problem(p_from));
  END IF;
  IF nudge.time_problem(p_run_at) IS NOT NULL THEN
    PERFORM nudge.reject('run_at', nudge.time_problem(p_run_at));
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
      -- A reminder ends at the end of time (nudge.end_after_attempt): so does its preview.
      EXIT WHEN v_at >= nudge.latest_fire();
      v_at := nudge.cron_next(v_parsed, v_zone, v_at);
      EXIT WHEN v_at IS NULL OR v_at > nudge.latest_fire();
      RETURN NEXT nudge.rfc3339_in_zone(v_at, nudge.rfc3339_zone(v_at, v_zone));
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
  IF p_interval_seconds IS NULL THEN
    PERFORM nudge.reject('interval_seconds', 'is required for recurring');
  END IF;
  IF p_interval_seconds NOT BETWEEN 1 AND 31622400 THEN
    PERFORM nudge.reject('interval_seconds', 'must be 1 to 31622400 (366 days)');
  END IF;
  v_at := coalesce(p_run_at, p_from);
  IF v_at <= p_from THEN
    v_at := nudge.next_interval_occurrence(v_at, p_interval_seconds, p_from);
  END IF;
  FOR i IN 1..p_count LOOP
    EXIT WHEN v_at > nudge.latest_fire();
    RETURN NEXT nudge.rfc3339_in_zone(v_at, 'UTC');
    v_at := v_at + p_interval_seconds * interval '1 second';
  END LOOP;
END $$;

COMMENT ON FUNCTION nudge.preview_schedule(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text) IS 'The next p_count (1..100) fire times strictly after p_from of a schedule as a create would take it (one_time: run_at; recurring: every interval from run_at, or from p_from; cron: the expression''s occurrences at or after run_at in its zone, under the cron daylight-saving rules), as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given), none after 9999-12-31T23:59:59Z (where a reminder ends: a from at or past it lists none); the 22023 errors a create would give for the schedule itself, and for a run_at, or a from, before 0001-01-01T00:00:00Z (a run_at after 9999-12-31T23:59:59Z too), naming it.';

