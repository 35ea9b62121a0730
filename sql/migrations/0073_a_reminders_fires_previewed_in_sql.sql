-- 0073: what POST /v1/schedules/preview lists is a SQL function, nudge.preview_reminder: the fires
-- of a reminder created at a given instant (that instant included, a first fire already past
-- fired then, max_fires and ends_at applied). The API held it as a statement of its own, so SQL
-- callers had only nudge.preview_schedule, which pages through a schedule strictly after p_from
-- and knows nothing of a reminder's limits or of its creation.

CREATE FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamptz DEFAULT NULL,
                                       p_count integer DEFAULT 5,
                                       p_run_at timestamptz DEFAULT NULL,
                                       p_interval_seconds integer DEFAULT NULL,
                                       p_cron text DEFAULT NULL, p_timezone text DEFAULT NULL,
                                       p_max_fires integer DEFAULT NULL,
                                       p_ends_at timestamptz DEFAULT NULL)
RETURNS SETOF text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  -- From p_from on (nudge.preview_schedule lists those strictly after its p_from: 1 us before,
  -- except at the earliest time), an interval schedule without run_at starting at p_from as its
  -- create does, and a first fire already past fired at p_from (misfire_policy fire_once, the
  -- default); neither past max_fires (counted from the first listed) nor after ends_at (a fire
  -- at it still happens).
  WITH s AS (
    SELECT f.at,
           CASE WHEN f.at > nudge.earliest_time() THEN f.at - interval '1 microsecond' ELSE f.at END
             AS after,
           coalesce(p_run_at, CASE WHEN p_schedule_type = 'recurring' THEN f.at END) AS run_at
      FROM (SELECT coalesce(p_from, now()) AS at) f
  ), m AS (
    SELECT s.*,
           CASE WHEN s.run_at < s.at
                THEN (SELECT p.t::timestamptz < s.at
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(s.run_at - interval '1 microsecond', nudge.earliest_time()),
                               1, s.run_at, p_interval_seconds, p_cron, p_timezone) p(t))
                ELSE false END AS missed
      FROM s
  ), l AS (
    SELECT nudge.rfc3339_in_zone(m.at, CASE WHEN p_schedule_type = 'cron'
                                            THEN nudge.checked_timezone(coalesce(p_timezone, 'UTC'))
                                            ELSE 'UTC' END) AS t,
           0::bigint AS n
      FROM m WHERE m.missed
    UNION ALL
    SELECT p.t, p.n
      FROM m, nudge.preview_schedule(p_schedule_type, m.after, p_count, m.run_at,
                                     p_interval_seconds, p_cron, p_timezone)
                WITH ORDINALITY p(t, n)
  ), o AS (
    SELECT l.t, row_number() OVER (ORDER BY l.n) AS n FROM l
  )
  SELECT o.t FROM o
   WHERE o.n <= p_count AND (p_max_fires IS NULL OR o.n <= p_max_fires)
     AND (p_ends_at IS NULL OR o.t::timestamptz <= p_ends_at)
   ORDER BY o.n
$$;
COMMENT ON FUNCTION nudge.preview_reminder(text, timestamptz, integer, timestamptz, integer, text, text, integer, timestamptz) IS
  'The first p_count (1..100) fire times of a reminder created at p_from (default now) with this schedule, in order: p_from itself when a first fire is already past then (misfire_policy fire_once), then every fire from p_from on (an interval schedule without run_at starts at p_from), none past p_max_fires nor after p_ends_at, as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); the 22023 errors of nudge.preview_schedule, naming the field.';
