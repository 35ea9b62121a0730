-- 0142: a delivery taken over from an expired lease is still reported as taken over (the claim's
-- rescued, which workers log as "took over" and count in nudge_worker_leases_rescued_total) when
-- a breaker or a pace held it as it was taken over and it goes out later (explore25a #2: a
-- SIGKILLed worker's paced deliveries were repeated by another worker with no warning). Holding
-- a row clears its lease; nudge.reminders.lease_lost keeps the mark until a claim takes the row
-- or ends its occurrence.
--
-- Additive: a column with a default, and a body.

ALTER TABLE nudge.reminders ADD COLUMN lease_lost boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN nudge.reminders.lease_lost IS
  'Whether the occurrence''s last lease ran out (its worker died or stalled) and a breaker or pace has held it since, so that the claim taking it reports it as rescued; cleared when a claim takes it.';

CREATE OR REPLACE FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer DEFAULT NULL::integer, p_email_slots integer DEFAULT NULL::integer, p_pass_over text[] DEFAULT NULL::text[]) RETURNS SETOF nudge.claimed_fire
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
  v_paced     tid[];     -- rows to take whose host or URL is paced,
  v_pacers    text[];    -- what paces each (its host, else its URL),
  v_paced_ids bigint[];
  v_paced_due timestamptz[];
  v_sent      tid[];     -- and of those, the ones its pace lets go now
BEGIN
  -- A webhook or an email takes one of the worker's delivery slots, and an email one of its
  -- relay connections too: past p_slots of them, or p_email_slots emails, the rows are left as
  -- they are (locked until this claim commits, then due for any worker), so a crash charges an
  -- attempt only to deliveries under way, and a cancel reaches every email not yet sent. Log
  -- lines take no slot.
  SELECT array_agg(d.row_ctid) FILTER (WHERE NOT d.stop_now AND NOT d.exhausted AND NOT d.missed
                                       AND NOT d.crowded AND d.fits),
         array_agg(d.row_ctid) FILTER (WHERE d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.missed AND NOT d.exhausted AND NOT d.stop_now),
         array_agg(d.row_ctid) FILTER (WHERE d.crowded AND NOT d.exhausted AND NOT d.stop_now
                                       AND d.fits),
         array_agg(d.row_id) FILTER (WHERE d.held AND NOT d.stop_now AND NOT d.exhausted
                                     AND NOT d.missed AND d.fits)
    INTO v_take, v_stop, v_exhausted, v_missed, v_crowded, v_rescued
    FROM (SELECT m.*,
                 NOT m.takes_slot
                 OR (m.email_fits
                     AND (p_slots IS NULL
                          OR count(*) FILTER (WHERE m.takes_slot AND m.email_fits
                                                AND NOT (m.stop_now OR m.exhausted OR m.missed))
                               OVER (ORDER BY m.due ROWS UNBOUNDED PRECEDING) <= p_slots)) AS fits
            FROM (SELECT l.*,
                 l.channel <> 'email' OR p_email_slots IS NULL
                 OR count(*) FILTER (WHERE l.channel = 'email'
                                       AND NOT (l.stop_now OR l.exhausted OR l.missed))
                      OVER (ORDER BY l.due ROWS UNBOUNDED PRECEDING) <= p_email_slots AS email_fits
            FROM (SELECT r.ctid AS row_ctid, r.id AS row_id, r.next_run_at AS due,
                 r.channel, r.channel <> 'log' AS takes_slot,
                 -- Only an expired lease can still be set on a due row this claim may take;
                 -- lease_lost keeps that mark on a row a breaker or pace held since.
                 r.leased_by IS NOT NULL OR r.lease_lost AS held,
                 r.stop_condition_type = 'db_check' AND EXISTS (
                   SELECT 1 FROM nudge.status_flags f WHERE f.key = r.stop_condition_value AND f.value)
                   AS stop_now,
                 r.attempt - r.rate_limited >= coalesce(r.max_attempts, p_policy.max_attempts)
                   AS exhausted,
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
             -- Targets the worker passes over (a slow host's), read but neither locked nor taken.
             AND (p_pass_over IS NULL OR r.target IS NULL OR NOT r.target LIKE ANY (p_pass_over))
           ORDER BY r.next_run_at
           LIMIT p_limit
             FOR UPDATE OF r SKIP LOCKED) l) m) d;

  -- A flag can turn true in a transaction the stop trigger could not see (a reminder created
  -- concurrently); catching it here keeps "a true flag stops it" without exception.
  IF v_stop IS NOT NULL THEN
    UPDATE nudge.reminders
       SET status = 'COMPLETED', completed_reason = 'stop_condition', finished_at = now(),
           updated_at = now(), attempt = 0, occurrence_at = NULL, leased_by = NULL,
           lease_expires_at = NULL, lease_lost = false
     WHERE ctid = ANY (v_stop);
  END IF;

  -- Workers that claimed this occurrence as often as it may be attempted all died or timed
  -- out: record it as failed instead of letting it crash workers forever.
  IF v_exhausted IS NOT NULL THEN
    WITH taken AS (
      UPDATE nudge.reminders r SET leased_by = p_worker, lease_expires_at = now(), lease_lost = false
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

  -- Missed under misfire_policy skip: no catch-up fire. The reminder moves to its first
  -- occurrence missed by no more than the threshold (it fires at once: lateness, not an outage)
  -- or else its next future one; the skipped ones are one skipped attempt at the oldest.
  IF v_missed IS NOT NULL THEN
    -- Sub-statements share one snapshot: `missed` sees each row (locked by this claim) before
    -- `skipped` moves it.
    WITH missed AS (
      -- (A row at -infinity, written by hand, has no phase: counted on from now, as before.)
      SELECT r.id, r.next_run_at,
             nudge.occurrence_after(r, CASE WHEN isfinite(r.next_run_at)
                                            THEN now() - p_policy.misfire_threshold_seconds
                                                         * interval '1 second'
                                            ELSE now() END) AS next_at
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
           format('missed by more than %s s (misfire_policy skip), as was every later occurrence '
                  'before %s', p_policy.misfire_threshold_seconds,
                  nudge.rfc3339_in_zone(m.next_at, 'UTC')),
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
           leased_by = NULL, lease_expires_at = NULL,
           -- A rescued row held is still rescued when it goes (explore25a #2).
           lease_lost = coalesce(r.id = ANY (v_rescued), false), updated_at = now()
      FROM unnest(v_blocked, v_hosts, v_blocked_ids) AS b(row_ctid, host, id)
      JOIN held_by hb ON hb.host = b.host
     WHERE r.id = b.id AND b.row_ctid <> ALL (coalesce(v_probes, '{}'));

    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_blocked))
              || coalesce(v_probes, '{}');
  END IF;

  -- Paced hosts and URLs (0130, 0135), only while one is: a host or URL that answered 429 is
  -- sent at its pace (nudge.pace_at), no request before its next_send_at. A row is paced by its
  -- host when the whole host is paced, else by its URL (nudge.target_url) when that is. The
  -- rows of such a pacer are given send times a pace apart from then, in the order of their
  -- occurrences: a second's worth goes out, the others wait for theirs, or 20 s at most
  -- (occurrence and attempt kept, no attempt used), so its backlog goes out spread instead of
  -- meeting its limit all at once (explore23a #1). A pacer another claim is pacing right now is
  -- skipped: its rows are neither taken nor held.
  IF v_take IS NOT NULL
     AND (EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
          OR EXISTS (SELECT 1 FROM nudge.paced_targets t WHERE t.paced_until > now())) THEN
    -- In the order of their occurrences (held rows share their times: by those, a host's
    -- backlog went out by id, one tenant after another: explore24a #4).
    SELECT array_agg(p.row_ctid), array_agg(e.pacer), array_agg(p.id), array_agg(p.due)
      INTO v_paced, v_pacers, v_paced_ids, v_paced_due
      FROM (SELECT r.ctid AS row_ctid, r.id, coalesce(r.occurrence_at, r.next_run_at) AS due,
                   coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) AS host,
                   coalesce(nudge.target_url(r.target), nudge.webhook_url(r)) AS url
              FROM nudge.reminders r
             WHERE r.ctid = ANY (v_take) AND r.channel = 'webhook'
               AND r.ctid <> ALL (coalesce(v_probes, '{}'))) p
     CROSS JOIN LATERAL (
           SELECT CASE WHEN EXISTS (SELECT 1 FROM nudge.target_hosts h
                                     WHERE h.host = p.host AND h.paced_until > now())
                         THEN p.host
                       WHEN EXISTS (SELECT 1 FROM nudge.paced_targets t
                                     WHERE t.url = p.url AND t.paced_until > now())
                         THEN p.url END AS pacer) e
     WHERE e.pacer IS NOT NULL;
  END IF;

  IF v_paced IS NOT NULL THEN
    -- Placing rows is flow control, not a change of the reminders: not in nudge.changes (its
    -- trigger reads this), which logged 366,000 of them against 11,000 fires (explore24a #5).
    PERFORM set_config('nudge.placing', 'on', true);
    WITH paced_hosts AS (
      SELECT h.host AS pacer, greatest(h.next_send_at, now()) AS start,
             nudge.host_pace(h, now()) AS pace
        FROM nudge.target_hosts h
       WHERE h.host = ANY (v_pacers) AND h.paced_until > now()
       ORDER BY h.host
         FOR UPDATE SKIP LOCKED
    ), paced_urls AS (
      SELECT t.url AS pacer, greatest(t.next_send_at, now()) AS start,
             nudge.pace_at(t.pace, t.limited_at, t.paced_until, now()) AS pace
        FROM nudge.paced_targets t
       WHERE t.url = ANY (v_pacers) AND t.paced_until > now()
       ORDER BY t.url
         FOR UPDATE SKIP LOCKED
    ), pacing AS (
      SELECT * FROM paced_hosts UNION ALL SELECT * FROM paced_urls
    ), placed AS (
      SELECT s.*,
             -- A second's worth (whole deliveries, at least one) may go at once: the row goes if
             -- its place, counted from the pacer's next send time, is within it.
             s.k + extract(epoch FROM s.start - now()) * s.pace
               <= greatest(1, floor(s.pace)) - 1 + 1e-9 AS goes
        FROM (SELECT b.row_ctid, b.id, b.pacer, p.start, p.pace,
                     row_number() OVER (PARTITION BY b.pacer ORDER BY b.due, b.id) - 1 AS k
                FROM unnest(v_paced, v_pacers, v_paced_ids, v_paced_due)
                       AS b(row_ctid, pacer, id, due)
                JOIN pacing p ON p.pacer = b.pacer) s
    ), held AS (
      -- At its send time, a pace after the one before; but for 20 s at most (the time the pace
      -- takes to double), then placed again at the pace of then: a backlog placed at the pace of
      -- a 429 would keep it for good, and placed every 10 s, a waiting row was rewritten
      -- 66 to 1,014 times a second (explore24a #5).
      UPDATE nudge.reminders r
         SET occurrence_at = coalesce(r.occurrence_at, r.next_run_at),
             next_run_at = least(pl.start + pl.k / pl.pace * interval '1 second',
                                 now() + interval '20 seconds'),
             leased_by = NULL, lease_expires_at = NULL,
             lease_lost = coalesce(r.id = ANY (v_rescued), false), updated_at = now()
        FROM placed pl
       WHERE r.id = pl.id AND NOT pl.goes
    ), taken AS (
      SELECT pl.pacer, min(pl.start) + count(*) FILTER (WHERE pl.goes) / min(pl.pace)
                                       * interval '1 second' AS next_send_at
        FROM placed pl GROUP BY pl.pacer
    ), sent_hosts AS (
      UPDATE nudge.target_hosts h SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE h.host = tk.pacer
    ), sent_urls AS (
      UPDATE nudge.paced_targets t SET next_send_at = tk.next_send_at, updated_at = now()
        FROM taken tk
       WHERE t.url = tk.pacer
    )
    SELECT array_agg(pl.row_ctid) FILTER (WHERE pl.goes) INTO v_sent FROM placed pl;
    PERFORM set_config('nudge.placing', '', true);
    v_take := ARRAY(SELECT t FROM unnest(v_take) AS t WHERE t <> ALL (v_paced))
              || coalesce(v_sent, '{}');
  END IF;

  IF v_take IS NOT NULL THEN
    RETURN QUERY
      UPDATE nudge.reminders r
         SET leased_by = p_worker,
             lease_expires_at = now() + p_policy.lease_seconds * interval '1 second',
             attempt = r.attempt + 1, lease_lost = false
       WHERE r.ctid = ANY (v_take)
      RETURNING r.id, r.entity_type, r.entity_id, r.event_type, r.channel,
                coalesce(r.target,
                         CASE WHEN r.channel <> 'log' THEN
                           (SELECT c.address FROM nudge.contacts c
                             WHERE c.entity_type = r.entity_type AND c.entity_id = r.entity_id
                               AND c.channel = r.channel) END),
                r.payload, r.schedule_type, coalesce(r.occurrence_at, r.next_run_at),
                r.attempt, coalesce(r.max_attempts, p_policy.max_attempts) + r.rate_limited,
                r.fire_count,
                CASE WHEN r.request IS NOT NULL
                     THEN nudge.rendered_request(r, coalesce(r.occurrence_at, r.next_run_at),
                                                 r.attempt) END,
                coalesce(r.id = ANY (v_rescued), false),
                nudge.free_rate_limited_tries() - r.rate_limited;
  END IF;
END $$;

COMMENT ON FUNCTION nudge.claim_due(p_worker text, p_limit integer, p_policy nudge.worker_policy, p_slots integer, p_email_slots integer, p_pass_over text[]) IS 'Leases up to p_limit due ACTIVE reminders, earliest first, passing over (neither locking nor taking) those whose target is LIKE any of p_pass_over when given, of which at most p_slots webhooks and emails and at most p_email_slots emails (each when given; log lines take no slot, and the rows past them are left due), to p_worker for the policy''s lease_seconds (database clock), skipping rows other workers hold, each with its address (target, else contacts), its own request rendered for the attempt (nudge.rendered_request) and whether it was taken over from an expired lease (rescued, also when a breaker or pace held it since); never returns a reminder whose stop flag is true (it completes instead), an occurrence whose attempts (attempt - rate_limited) were all used by workers that never finished them (recorded as failed), one missed by more than the threshold under misfire_policy skip (recorded as a skipped attempt saying up to when; the reminder moves to its first occurrence missed by no more than the threshold, due at once, or else its next future one), nor a webhook to a host whose circuit breaker is not closed (held until the breaker''s next_probe_at, occurrence and attempt kept), except one probe per host whose next_probe_at has passed (the held one with the fewest attempts used), which marks the breaker probing for lease_seconds (notified on nudge_breaker); a fire_all reminder starting a catch-up of more than fire_all_cap missed occurrences (up to ends_at) is returned at the first of the newest fire_all_cap of them (nudge.catch_up_kept), the older ones recorded as one skipped attempt at the oldest saying how many were dropped and from when to when; a webhook to a paced host, else to a paced URL (it answered 429: nudge.record_host_outcomes), goes only at that pace (nudge.pace_at) and no sooner than its next_send_at, a second''s worth at once, the others held (in the order of their occurrences, not logged in nudge.changes) until their send times a pace apart, or for 20 s at most and then placed again (occurrence and attempt kept, no attempt used), and the rows of a paced host or URL another claim is pacing are neither taken nor held; each fire''s max_attempts is the attempt number at which a failure ends its occurrence (its attempts plus the 429s that used none) and rate_limits_left how many more 429s would use none.';
