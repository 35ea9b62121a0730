-- 0057: a fire_all catch-up with more missed occurrences than [misfire] fire_all_cap keeps the
-- newest fire_all_cap of them, as the README and config/nudge.toml say, and records the older
-- ones it drops. Until now it fired the oldest fire_all_cap and then jumped to the next future
-- occurrence, so the occurrences nearest to now (the ones that matter after an outage) were the
-- ones dropped, and nothing recorded them: a yearly reminder from year 1 fired for years 1 to 99.
--
-- The claim that takes such a reminder moves it to the first occurrence it keeps and records one
-- skipped attempt at the oldest missed occurrence ("missed: N occurrences from .. to .. dropped,
-- over fire_all_cap C"), as misfire_policy skip records its skipped occurrence; the catch-up then
-- fires the rest oldest first as before. The cost stays off the drain: the claim picks these rows
-- by a comparison (an interval's count is exact arithmetic; a cron needs at least cap minutes
-- of lateness), and only they pay for a count.

-- Whether local day p_day is one of p_cron's days: cron_next's rule (classic cron: with both
-- day fields restricted, either one matching is enough; L is the day before a 1st).
CREATE FUNCTION nudge.cron_day_matches(p_cron nudge.cron, p_day date) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
  -- (date_part, a double, costs a third of extract, a numeric, per day)
  SELECT p_cron.months & (1 << date_part('month', p_day)::integer) <> 0
         AND CASE WHEN p_cron.dom_star OR p_cron.dow_star
                  THEN (p_cron.days & (1::bigint << date_part('day', p_day)::integer) <> 0
                        OR (p_cron.days & 1 <> 0 AND date_part('day', p_day + 1) = 1))
                       AND p_cron.weekdays & (1 << date_part('dow', p_day)::integer) <> 0
                  ELSE p_cron.days & (1::bigint << date_part('day', p_day)::integer) <> 0
                       OR (p_cron.days & 1 <> 0 AND date_part('day', p_day + 1) = 1)
                       OR p_cron.weekdays & (1 << date_part('dow', p_day)::integer) <> 0 END
$$;
COMMENT ON FUNCTION nudge.cron_day_matches(p_cron nudge.cron, p_day date) IS 'Whether p_day is a day of p_cron: its month matches, and its day-of-month (L: the last day) and its day-of-week both do, or either one when both fields are restricted (classic cron).';

-- How many of the times (hours x minutes) of local day p_day fall within [p_lo, p_hi]: all of
-- them unless the day holds p_lo or p_hi.
CREATE FUNCTION nudge.cron_times_between(p_hours integer[], p_mins integer[], p_day date,
                                         p_lo timestamp, p_hi timestamp) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT CASE WHEN p_day > p_lo::date AND p_day < p_hi::date
              THEN cardinality(p_hours)::bigint * cardinality(p_mins)
              ELSE (SELECT count(*) FROM unnest(p_hours) h, unnest(p_mins) m
                     WHERE p_day + make_interval(hours => h, mins => m) BETWEEN p_lo AND p_hi) END
$$;
COMMENT ON FUNCTION nudge.cron_times_between(p_hours integer[], p_mins integer[], p_day date, p_lo timestamp, p_hi timestamp) IS 'How many of the local times p_hours x p_mins of day p_day fall from p_lo through p_hi.';

-- The days of p_cron from p_from through p_through, in no order: a month it skips costs one row.
CREATE FUNCTION nudge.cron_days(p_cron nudge.cron, p_from date, p_through date)
    RETURNS SETOF date
    LANGUAGE sql IMMUTABLE
    AS $$
  SELECT d.d
    FROM (SELECT mo.mo::date AS mo
            FROM generate_series(date_trunc('month', p_from::timestamp),
                                 date_trunc('month', p_through::timestamp), interval '1 month') mo(mo)
           WHERE p_cron.months & (1 << date_part('month', mo.mo)::integer) <> 0) m,
         LATERAL (SELECT m.mo + i AS d FROM generate_series(0, 30) i) d
   WHERE d.d BETWEEN p_from AND p_through
     AND date_part('month', d.d) = date_part('month', m.mo)
     AND nudge.cron_day_matches(p_cron, d.d)
$$;
COMMENT ON FUNCTION nudge.cron_days(p_cron nudge.cron, p_from date, p_through date) IS 'The days from p_from through p_through on which p_cron fires (nudge.cron_day_matches), in no particular order.';

-- How many days from p_from through p_through p_cron fires on. The Gregorian calendar repeats
-- every 400 years (146,097 days, 20,871 weeks), so a longer stretch counts one such cycle and
-- the remainder: a daily cron missed since the year 1 reads 2 x 146,097 days, not 740,000.
CREATE FUNCTION nudge.cron_day_count(p_cron nudge.cron, p_from date, p_through date)
    RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$
  WITH c AS (SELECT (p_through - p_from + 1) / 146097 AS cycles)
  SELECT CASE WHEN c.cycles > 0
              THEN c.cycles * (SELECT count(*) FROM nudge.cron_days(p_cron, p_from, p_from + 146096))
              ELSE 0 END
         + (SELECT count(*) FROM nudge.cron_days(p_cron, p_from + c.cycles * 146097, p_through))
    FROM c
$$;
COMMENT ON FUNCTION nudge.cron_day_count(p_cron nudge.cron, p_from date, p_through date) IS 'How many days from p_from through p_through p_cron fires on (nudge.cron_day_matches), counting whole 400-year Gregorian cycles once.';

CREATE FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamptz,
                                    OUT first_kept timestamptz, OUT last_dropped timestamptz,
                                    OUT dropped bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
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
END $$;
COMMENT ON FUNCTION nudge.catch_up_kept(r nudge.reminders, p_cap integer, p_through timestamptz) IS 'When a recurring or cron reminder has more than p_cap occurrences from its next_run_at through p_through, the first of the newest p_cap (first_kept), the one before it (last_dropped) and how many come before it (dropped); NULLs otherwise. Exact for an interval; a cron is counted on its zone''s clock, which a daylight-saving change within the stretch can make a few off.';

-- The claim: a fire_all catch-up starts at the first occurrence it keeps.
CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy) RETURNS SETOF nudge.claimed_fire
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
  -- Rows are found once through the due index and then revisited by ctid, which cannot change
  -- while this transaction holds their row locks.
  v_take      tid[];
  v_stop      tid[];
  v_exhausted tid[];
  v_missed    tid[];
  v_crowded   tid[];     -- fire_all rows with more missed occurrences than the cap
  v_rescued   bigint[];  -- ids taken over from a lease that expired
  v_ids       bigint[];
  v_at        timestamptz[];
  v_attempts  integer[];
  v_count     integer;
  v_blocked   tid[];     -- rows to take whose host's breaker is not closed,
  v_hosts     text[];    -- their hosts,
  v_blocked_ids bigint[];
  v_used      integer[];  -- their attempts used,
  v_probes    tid[];     -- and of those, the probes this claim sends
  v_changes   text[];
BEGIN
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed
                                       AND NOT d.crowded),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.crowded AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_id) FILTER (WHERE d.held AND NOT d.stop_now AND NOT d.exhausted
                                     AND NOT d.missed)
    INTO v_take, v_stop, v_exhausted, v_missed, v_crowded, v_rescued
    FROM (SELECT r.ctid AS row_ctid, r.id AS row_id,
                 -- Only an expired lease can still be set on a due row this claim may take.
                 r.leased_by IS NOT NULL AS held,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt >= coalesce(r.max_attempts, p_policy.max_attempts) AS exhausted,
                 r.misfire_policy = 'skip' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.next_run_at < now() - p_policy.misfire_threshold_seconds * interval '1 second'
                   AS missed,
                 -- A fire_all catch-up about to start with possibly more missed occurrences
                 -- than the cap: for an interval exactly, for a cron at least (its
                 -- occurrences are at least a minute apart). Only these pay for a count.
                 r.misfire_policy = 'fire_all' AND r.occurrence_at IS NULL AND r.attempt = 0
                   AND r.catch_up_fires = 0
                   AND CASE r.schedule_type
                         WHEN 'recurring' THEN extract(epoch FROM now() - r.next_run_at)
                                               >= p_policy.fire_all_cap::float8 * r.interval_seconds
                         WHEN 'cron' THEN r.next_run_at <= now() - p_policy.fire_all_cap * interval '1 minute'
                         ELSE false END
                   AS crowded
            FROM nudge.reminders r
           WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
             AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now()
       WHERE ctid = ANY (v_exhausted)
      RETURNING r.id, coalesce(r.occurrence_at, r.next_run_at) AS occurrence, r.attempt)
    SELECT array_agg(id), array_agg(occurrence), array_agg(attempt), count(*)
      INTO v_ids, v_at, v_attempts, v_count FROM taken;
    PERFORM nudge.finish_attempts(
      p_worker, p_policy, v_ids, v_at, v_attempts, array_fill('failed'::text, ARRAY[v_count]),
      array_fill('abandoned: claimed by workers that never finished it'::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]), array_fill(NULL::text, ARRAY[v_count]),
      array_fill(NULL::integer, ARRAY[v_count]));
  END IF;

  -- Missed under misfire_policy skip: no catch-up fire; the next future occurrence instead.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      SELECT r.id, r.next_run_at, nudge.occurrence_after(r, now()) AS next_at
        FROM nudge.reminders r WHERE r.ctid = ANY (v_missed)
    ), skipped AS (
      UPDATE nudge.reminders r
         SET next_run_at = m.next_at,
             status = CASE WHEN r.ends_at < m.next_at THEN 'COMPLETED' ELSE r.status END,
             completed_reason = CASE WHEN r.ends_at < m.next_at THEN 'ends_at' END,
             finished_at = CASE WHEN r.ends_at < m.next_at THEN now() END,
             catch_up_fires = 0, updated_at = now()
        FROM missed m
       WHERE r.id = m.id
      RETURNING r.id)
    INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
    SELECT m.id, m.next_run_at, 1, 'skipped',
           format('missed by more than %s s (misfire_policy skip)', p_policy.misfire_threshold_seconds),
           p_worker
      FROM missed m JOIN skipped s ON s.id = m.id
    ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING;
  END IF;

  -- A fire_all catch-up keeps the newest fire_all_cap missed occurrences, the ones nearest to
  -- now: the reminder moves to the first one it keeps, and the older ones it drops are recorded
  -- as one skipped attempt at the oldest, saying how many and up to when. The moved rows are
  -- due and taken by this claim: their new versions' ctids join the rest.
  IF v_crowded IS NOT NULL THEN
    WITH crowded AS (
      SELECT r.id, r.ctid AS row_ctid, r.next_run_at, k.first_kept, k.last_dropped, k.dropped
        FROM nudge.reminders r,
             LATERAL nudge.catch_up_kept(r, p_policy.fire_all_cap, least(now(), r.ends_at)) k
       WHERE r.ctid = ANY (v_crowded)
    ), moved AS (
      UPDATE nudge.reminders r SET next_run_at = c.first_kept, updated_at = now()
        FROM crowded c
       WHERE r.id = c.id AND c.first_kept IS NOT NULL
      RETURNING r.id, r.ctid AS row_ctid
    ), recorded AS (
      INSERT INTO nudge.delivery_attempts (reminder_id, scheduled_for, attempt, outcome, error, worker)
      SELECT c.id, c.next_run_at, 1, 'skipped',
             format('missed: %s occurrences from %s to %s dropped, over fire_all_cap %s '
                    '(misfire_policy fire_all keeps the newest)', c.dropped,
                    nudge.rfc3339_in_zone(c.next_run_at, 'UTC'),
                    nudge.rfc3339_in_zone(c.last_dropped, 'UTC'), p_policy.fire_all_cap),
             p_worker
        FROM crowded c JOIN moved m ON m.id = c.id
      ON CONFLICT ON CONSTRAINT one_row_per_attempt DO NOTHING
    )
    SELECT array_agg(coalesce(m.row_ctid, c.row_ctid)) INTO v_crowded
      FROM crowded c LEFT JOIN moved m ON m.id = c.id;
    v_take := coalesce(v_take, '{}') || v_crowded;
  END IF;

  -- Circuit breakers (0013), only while one is not closed: a row to take whose host's breaker
  -- is open waits for the breaker's next probe, like a retry (its occurrence and attempt kept,
  -- no attempt used), so it does not stay at the head of the due index; once the open time is
  -- over, one of them per host goes out as the probe.
  IF v_take IS NOT NULL
     AND EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.state IN ('open', 'probing')) THEN
    SELECT array_agg(b.row_ctid), array_agg(b.host), array_agg(b.id), array_agg(b.attempt)
      INTO v_blocked, v_hosts, v_blocked_ids, v_used
      FROM (SELECT r.ctid AS row_ctid, r.id, r.attempt,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook') b
     WHERE EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.host = b.host AND h.state <> 'closed');
  END IF;

  IF v_blocked IS NOT NULL THEN
    -- The probe: for each host whose open time (or whose prober's lease) is over, the row with
    -- the fewest attempts used (a probe is a real attempt: failed probes are spread, not spent
    -- on one reminder), taken with the breaker's row lock; a breaker another claim is changing
    -- right now is skipped, so exactly one probe goes out.
    WITH probe_due AS (
      SELECT h.host, h.state FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed' AND h.next_probe_at <= now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), chosen AS (
      SELECT DISTINCT ON (b.host) b.host, b.id, b.row_ctid, p.state AS from_state
        FROM unnest(v_hosts, v_blocked_ids, v_blocked, v_used) AS b(host, id, row_ctid, used)
        JOIN probe_due p ON p.host = b.host
       ORDER BY b.host, b.used, b.id
    ), probing AS (
      UPDATE nudge.target_hosts h
         SET state = 'probing', probe_worker = p_worker, probe_reminder_id = c.id,
             next_probe_at = now() + p_policy.lease_seconds * interval '1 second',
             updated_at = now()
        FROM chosen c
       WHERE h.host = c.host
      RETURNING c.row_ctid, nudge.breaker_change(h, c.from_state, p_worker) AS change)
    SELECT array_agg(p.row_ctid), array_agg(p.change) INTO v_probes, v_changes FROM probing p;
    PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

    -- The rest wait for their host's next probe. A breaker another transaction is changing
    -- (a finish closing it) is skipped: its rows are neither taken nor held, and the next
    -- claim sees what it became.
    WITH held_by AS (
      SELECT h.host, h.next_probe_at FROM nudge.target_hosts h
       WHERE h.host = ANY (v_hosts) AND h.state <> 'closed'
       ORDER BY h.host
         FOR SHARE SKIP LOCKED
    )
    UPDATE nudge.reminders r
       SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at), next_run_at = hb.next_probe_at,
           leased_by = NULL, lease_expires_at = NULL, updated_at = now()
      FROM unnest(v_blocked, v_hosts, v_blocked_ids) AS b(row_ctid, host, id)
      JOIN held_by hb ON hb.host = b.host
     WHERE r.id = b.id AND b.row_ctid <> ALL (coalesce(v_probes, '{}'));

    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_blocked))
              || coalesce(v_probes, '{}');
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE nudge.reminders r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM nudge.contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts), r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END,
                coalesce(r.id = ANY (v_rescued), false);
  END IF;
END $$;

COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy) IS 'Leases up to p_limit due ACTIVE reminders, earliest first, to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt; the reminder moves to its next future occurrence), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when.';

-- The history names the new kind of skipped attempt.
COMMENT ON FUNCTION nudge.reminder_executions(p_reminder_id bigint, p_before timestamp with time zone, p_limit integer) IS 'Up to p_limit occurrences of reminder p_reminder_id scheduled before p_before (all when NULL), newest first, each as its public JSON with its delivery attempts oldest first: an ended one as recorded in executions (delivered or failed, with fired_at), one with attempts but no ending as retrying (the live reminder''s current occurrence), skipped (missed under misfire_policy skip, or the oldest of the occurrences a fire_all catch-up dropped past its cap, its error saying how many up to when) or unfinished (its reminder was cancelled or completed first), without fired_at.';
