-- 0075: nudge.preview_reminder follows the reminder's misfire policy for a first fire already
-- past when it is created. It listed one fire at p_from whatever the policy (fire_once's), while
-- a worker skips that occurrence under skip once it is later than the threshold, and fires each
-- missed occurrence under fire_all (the newest fire_all_cap of them). After such a fire it also
-- listed an occurrence at exactly p_from, which that claim takes too, and it left out the fire
-- of an occurrence before ends_at when p_from was past ends_at, which the claim still makes. The threshold and the cap
-- are the workers' configuration ([misfire]), which the API passes; SQL callers get their
-- defaults. A new signature: DROP + CREATE.

DROP FUNCTION nudge.preview_reminder(text, timestamptz, integer, timestamptz, integer, text, text,
                                     integer, timestamptz);

CREATE FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamptz DEFAULT NULL,
                                       p_count integer DEFAULT 5,
                                       p_run_at timestamptz DEFAULT NULL,
                                       p_interval_seconds integer DEFAULT NULL,
                                       p_cron text DEFAULT NULL, p_timezone text DEFAULT NULL,
                                       p_max_fires integer DEFAULT NULL,
                                       p_ends_at timestamptz DEFAULT NULL,
                                       p_misfire_policy text DEFAULT 'fire_once',
                                       p_misfire_threshold_seconds integer DEFAULT 60,
                                       p_fire_all_cap integer DEFAULT 100)
RETURNS SETOF text LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
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
  -- threshold), or fires every occurrence due by then up to ends_at, the newest p_fire_all_cap
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
                WHEN p_misfire_policy = 'skip'
                     AND m.first_at < m.at - p_misfire_threshold_seconds * interval '1 second' THEN 0
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
    SELECT nudge.rfc3339_in_zone(c.at, CASE WHEN p_schedule_type = 'cron'
                                            THEN nudge.checked_timezone(coalesce(p_timezone, 'UTC'))
                                            ELSE 'UTC' END) AS t,
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

COMMENT ON FUNCTION nudge.preview_reminder(text, timestamptz, integer, timestamptz, integer, text, text, integer, timestamptz, text, integer, integer) IS 'The first p_count (1..100) fire times of a reminder created at p_from (default now) with this schedule and misfire policy, in order: a first fire already past fires at p_from once (fire_once, and skip unless it is more than p_misfire_threshold_seconds past), not at all (skip past the threshold) or once per occurrence due by p_from up to p_ends_at, the newest p_fire_all_cap of them (fire_all), each listed at p_from even when that is past p_ends_at, the schedule going on strictly after p_from; otherwise every fire from p_from on, p_from included (an interval schedule without run_at starts at p_from); none past p_max_fires nor after p_ends_at; as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); a policy other than fire_once for one_time, a threshold outside 1..86400 or a cap outside 1..10000 raises 22023 naming it, as do the errors of nudge.preview_schedule.';
