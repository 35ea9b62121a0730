-- 0128: a breaker's next probe is due 0.8 to 1.2 times its open time after it opens, at random:
-- at exact doublings (60, 120, 240, 480 s), probes met a receiver that is down 30 s in every
-- minute in its down phase each time, and its deliveries stayed held for good (explore23a #2).
-- And the deliveries a breaker held are released in doubling waves when it closes, not all at
-- once: a receiver limited to 2 requests a second refused 294 of 296 every round, until their
-- attempts were used up (explore23a #1).

CREATE OR REPLACE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_failing   text[];         -- hosts that failed in this batch
  v_changes   text[];         -- notifications of the breakers that changed state
  v_moved     text[];         -- breakers that held deliveries and moved their probe time:
  v_held      timestamptz[];  -- the time their deliveries wait for,
  v_next      timestamptz[];  -- and the new one (NULL: closed, due now)
BEGIN
  v_failing := ARRAY(SELECT DISTINCT o.host FROM unnest(p_hosts, p_failed) AS o(host, failed)
                      WHERE o.failed ORDER BY o.host);
  -- A host gets its row with its first failure. Rows that may change are created and then
  -- locked in host order, so that two finishes sharing hosts never wait for each other in a
  -- circle; a host with a clean record that only answered is neither locked nor written.
  INSERT INTO nudge.target_hosts (host) SELECT unnest(v_failing) ON CONFLICT (host) DO NOTHING;
  PERFORM 1 FROM nudge.target_hosts h
   WHERE h.host = ANY (p_hosts)
     AND (h.state <> 'closed' OR h.consecutive_failures > 0 OR h.host = ANY (v_failing))
   ORDER BY h.host
     FOR UPDATE;

  -- Decided on the rows as they are now (locked above): any answer closes the breaker and
  -- clears the count; failures add to it, and open a closed breaker at the threshold; the
  -- probe's failure opens a probing one again for twice the time.
  WITH outcome AS (
    SELECT o.host, count(*) FILTER (WHERE o.failed) AS failures, bool_or(NOT o.failed) AS answered,
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids,
           -- What on-call reads first about a failing host: its batch's last failure.
           (array_agg(left(o.error, 500) ORDER BY o.n DESC) FILTER (WHERE o.failed))[1] AS error
      FROM unnest(p_hosts, p_ids, p_failed, p_errors) WITH ORDINALITY AS o(host, id, failed, error, n)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           o.error, t.to_state,
           CASE WHEN t.to_state <> 'open' OR h.state = 'open' THEN h.open_seconds
                WHEN h.state = 'probing'
                  THEN least(h.open_seconds * 2,
                             greatest(p_policy.breaker_max_open_seconds,
                                      p_policy.breaker_open_seconds))
                ELSE p_policy.breaker_open_seconds END AS open_seconds
      FROM nudge.target_hosts h
      JOIN outcome o ON o.host = h.host
     CROSS JOIN LATERAL (
           SELECT CASE WHEN o.answered THEN 'closed'
                       WHEN h.state = 'closed'
                            AND h.consecutive_failures + o.failures >= p_policy.breaker_failures
                         THEN 'open'
                       WHEN h.state = 'probing' AND h.probe_worker = p_worker
                            AND h.probe_reminder_id = ANY (o.failed_ids) THEN 'open'
                       ELSE h.state END AS to_state) t
     WHERE h.state <> 'closed' OR h.consecutive_failures > 0 OR o.failures > 0
  ), changed AS (
    UPDATE nudge.target_hosts h
       SET state = d.to_state,
           consecutive_failures = CASE WHEN d.answered THEN 0
                                       ELSE h.consecutive_failures + d.failures END,
           last_error = CASE WHEN d.answered THEN NULL
                             WHEN d.failures > 0 THEN coalesce(d.error, 'no error text')
                             ELSE h.last_error END,
           open_seconds = CASE WHEN d.to_state = 'closed' THEN NULL ELSE d.open_seconds END,
           opened_at = CASE WHEN d.to_state = 'closed' THEN NULL
                            WHEN d.to_state = 'open' AND d.from_state <> 'open' THEN now()
                            ELSE h.opened_at END,
           next_probe_at = CASE WHEN d.to_state = 'closed' THEN NULL
                                -- Jittered (0.8 to 1.2 times the open time): probes at
                                -- exact doublings met a receiver down 30 s in every minute
                                -- in its down phase each time, for ever (explore23a #2).
                                WHEN d.to_state = 'open' AND d.from_state <> 'open'
                                  THEN now() + d.open_seconds * (0.8 + 0.4 * random())
                                               * interval '1 second'
                                ELSE h.next_probe_at END,
           probe_worker = CASE WHEN d.to_state = 'probing' THEN h.probe_worker END,
           probe_reminder_id = CASE WHEN d.to_state = 'probing' THEN h.probe_reminder_id END,
           updated_at = now()
      FROM decided d
     WHERE h.host = d.host
    RETURNING h.host, h.state, h.next_probe_at, d.from_state, d.held_until,
              nudge.breaker_change(h, d.from_state, p_worker) AS change
  )
  SELECT array_agg(c.change) FILTER (WHERE c.from_state <> c.state),
         array_agg(c.host) FILTER (WHERE c.moves),
         array_agg(c.held_until) FILTER (WHERE c.moves),
         array_agg(c.next_probe_at) FILTER (WHERE c.moves)
    INTO v_changes, v_moved, v_held, v_next
    FROM (SELECT ch.*, ch.from_state <> 'closed' AND ch.held_until IS NOT NULL
                       AND ch.next_probe_at IS DISTINCT FROM ch.held_until AS moves
            FROM changed ch) c;
  PERFORM pg_notify('nudge_breaker', n) FROM unnest(v_changes) AS n;

  -- The deliveries a breaker held wait for its new next probe, or are due now that it closed:
  -- in doubling waves (one now, two a second later, four the second after: 1,000 in 10 s), as
  -- all at once a receiver that limits its rate refused all but two of 296 in every round until
  -- their attempts were used up (explore23a #1). (The breaker rows stay locked by this
  -- transaction, so no claim holds more meanwhile.) One statement per host, so each looks its
  -- deliveries up by their time in the due index: joined to an array, a generic plan would walk
  -- the whole index.
  FOR i IN 1 .. coalesce(cardinality(v_moved), 0) LOOP
    IF v_next[i] IS NOT NULL THEN
      UPDATE nudge.reminders r
         SET next_run_at = v_next[i], updated_at = now()
       WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held[i] AND r.leased_by IS NULL
         AND r.channel = 'webhook'
         AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_moved[i];
    ELSE
      UPDATE nudge.reminders r
         SET next_run_at = now() + floor(log(2, w.k)) * interval '1 second', updated_at = now()
        FROM (SELECT h.id, row_number() OVER (ORDER BY h.id)::numeric AS k
                FROM nudge.reminders h
               WHERE h.status = 'ACTIVE' AND h.next_run_at = v_held[i] AND h.leased_by IS NULL
                 AND h.channel = 'webhook'
                 AND coalesce(nudge.target_host(h.target), nudge.webhook_host(h)) = v_moved[i]) w
       WHERE r.id = w.id;
    END IF;
  END LOOP;
END $$;

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[], p_errors text[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer): an answer closes the host''s breaker and clears its failures, making the deliveries it held due in doubling waves (the first now, the next two a second later, then four, and so on, in id order); failures add up, keep the batch''s last failed attempt''s error (p_errors, cut at 500 characters) as the host''s last_error (an answer clears it), and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; the next probe is due between 0.8 and 1.2 times the open time after it opened (random, so that probes do not keep meeting a receiver that is down at regular times); each change of state is notified on nudge_breaker; a batch that changes no breaker reads no reminder.';
