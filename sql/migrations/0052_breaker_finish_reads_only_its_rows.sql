-- 0052: finishing webhook attempts no longer reads every due reminder.
-- Found by measuring the webhook drain (pg_stat_statements, track = all): a worker's finish of
-- 16 answered webhooks took 82 ms, 60 of them in nudge.record_host_outcomes, whose statement
-- also moved the deliveries a changed breaker held (its `rehold` step). That step runs even
-- when no breaker changed, and PostgreSQL planned it as a walk of the whole due index (40,000
-- rows, 58 ms) joined to the empty set of changed breakers: every finish cost as much as the
-- backlog was long. Now the held deliveries are moved by their own statement, only when a
-- breaker that was not closed changed its probe time, one statement per such host that looks
-- them up by that time (reminders_due_in_order).

CREATE OR REPLACE FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy,
                                                      p_hosts text[], p_ids bigint[],
                                                      p_failed boolean[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET jit TO 'off'
AS $function$
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
           array_agg(o.id) FILTER (WHERE o.failed) AS failed_ids
      FROM unnest(p_hosts, p_ids, p_failed) AS o(host, id, failed)
     GROUP BY o.host
  ), decided AS (
    SELECT h.host, h.state AS from_state, h.next_probe_at AS held_until, o.answered, o.failures,
           t.to_state,
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
           open_seconds = CASE WHEN d.to_state = 'closed' THEN NULL ELSE d.open_seconds END,
           opened_at = CASE WHEN d.to_state = 'closed' THEN NULL
                            WHEN d.to_state = 'open' AND d.from_state <> 'open' THEN now()
                            ELSE h.opened_at END,
           next_probe_at = CASE WHEN d.to_state = 'closed' THEN NULL
                                WHEN d.to_state = 'open' AND d.from_state <> 'open'
                                  THEN now() + d.open_seconds * interval '1 second'
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

  -- The deliveries a breaker held wait for its new next probe, or are due now that it closed.
  -- (The breaker rows stay locked by this transaction, so no claim holds more meanwhile.) One
  -- statement per host, so each looks its deliveries up by their time in the due index: joined
  -- to an array, a generic plan would walk the whole index.
  FOR i IN 1 .. coalesce(cardinality(v_moved), 0) LOOP
    UPDATE nudge.reminders r
       SET next_run_at = coalesce(v_next[i], now()), updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held[i] AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = v_moved[i];
  END LOOP;
END $function$;

COMMENT ON FUNCTION nudge.record_host_outcomes(p_worker text, p_policy nudge.worker_policy, p_hosts text[], p_ids bigint[], p_failed boolean[]) IS 'Counts one finished batch''s webhook attempts per host (p_failed: the host failed to answer): an answer closes the host''s breaker and clears its failures, making the deliveries it held due at once; failures add up and open a closed breaker at the policy''s breaker_failures for breaker_open_seconds; the failure of the probe p_worker holds opens a probing breaker again for twice its last open time, up to breaker_max_open_seconds, its held deliveries waiting for the new probe time; each change of state is notified on nudge_breaker; a batch that changes no breaker reads no reminder.';
