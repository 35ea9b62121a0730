-- 0158: under misfire_policy skip, every occurrence is fired or recorded skipped (explore31c F3).
-- A fire took every occurrence due by the time it ended with it, unrecorded: after a 150 s
-- outage of a 10 s reminder, the first occurrence within the 60 s threshold fired and the five
-- after it, also within it, were neither fired nor recorded; under load, an occurrence 2 s late
-- vanished the same way. The next occurrence after a fire is now the claim's to judge, as the
-- README's skip says: within the threshold it fires (lateness under load still fires), past it
-- it is recorded skipped. The preview lists those fires.

CREATE OR REPLACE FUNCTION nudge.next_run_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
  SELECT CASE WHEN nudge.attempt_is_retried(r, p_outcome, p_policy)
              THEN p_now + nudge.retry_delay(r.attempt, p_policy.retry_base_ms,
                                             p_policy.retry_max_ms,
                                             nudge.jitter(r.id, r.attempt, p_now))
              WHEN r.schedule_type = 'one_time' THEN coalesce(r.occurrence_at, r.next_run_at)
              WHEN nudge.attempt_catches_up(r, p_outcome, p_policy, p_now)
                THEN nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at))
              -- Each later occurrence is the claim's to judge: it fires, or is recorded skipped
              -- when missed by more than the threshold; none goes unrecorded (explore31c F3).
              WHEN r.misfire_policy = 'skip'
                THEN nudge.occurrence_after(r, coalesce(r.occurrence_at, r.next_run_at))
              ELSE nudge.occurrence_after(r, greatest(p_now, coalesce(r.occurrence_at, r.next_run_at)))
         END
$$;

COMMENT ON FUNCTION nudge.next_run_after_attempt(r nudge.reminders, p_outcome text, p_policy nudge.worker_policy, p_now timestamp with time zone) IS 'A reminder''s next_run_at once an attempt ended with p_outcome at p_now: a retry after a jittered backoff; a one_time reminder''s own occurrence; a catching-up fire_all reminder''s next occurrence, as a skip reminder''s (the claim fires it or records it skipped); else the first occurrence after both p_now and the one that ended (missed ones collapse into this fire).';

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
  -- p_from fires it once (fire_once), fires every occurrence due by then missed by no more than
  -- the threshold and skips the older ones (skip), or fires every occurrence due by then up to
  -- ends_at, the newest p_fire_all_cap (fire_all); these fires are listed at p_from, even past ends_at when their occurrences are
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
                -- Skipped, but for the occurrences missed by no more than the threshold: each
                -- of those fires.
                WHEN p_misfire_policy = 'skip'
                THEN (SELECT count(*)::integer
                        FROM nudge.preview_schedule(
                               p_schedule_type,
                               greatest(m.first_at - interval '1 microsecond',
                                        m.at - p_misfire_threshold_seconds * interval '1 second'),
                               p_count, m.run_at, p_interval_seconds, p_cron, p_timezone) p(t)
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

COMMENT ON FUNCTION nudge.preview_reminder(p_schedule_type text, p_from timestamp with time zone, p_count integer, p_run_at timestamp with time zone, p_interval_seconds integer, p_cron text, p_timezone text, p_max_fires integer, p_ends_at timestamp with time zone, p_misfire_policy text, p_misfire_threshold_seconds integer, p_fire_all_cap integer) IS 'The first p_count (1..100) fire times of a reminder created at p_from (default now) with this schedule and misfire policy, in order: a first fire already past fires at p_from once (fire_once), once per occurrence due by p_from and missed by no more than p_misfire_threshold_seconds, up to p_ends_at (skip: none when all are past it), or once per occurrence due by p_from up to p_ends_at, the newest p_fire_all_cap of them (fire_all), each listed at p_from even when that is past p_ends_at, the schedule going on strictly after p_from; otherwise every fire from p_from on, p_from included (an interval schedule without run_at starts at p_from); none past p_max_fires nor after p_ends_at; as RFC 3339 text in the schedule''s zone (UTC unless a cron zone is given); a policy other than fire_once for one_time, a threshold outside 1..86400 or a cap outside 1..10000 raises 22023 naming it, as do the errors of nudge.preview_schedule.';
