-- 0129: nudge_breaker_open_seconds leaves out an open breaker whose probe time has passed with no
-- delivery to probe with: its series rose for good, and the README's "host down" alert fired for
-- a host that had nothing to send (explore23a #5). It comes back with the first delivery held.

CREATE OR REPLACE FUNCTION nudge.gauges(p_count_cap integer) RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $_$
  SELECT 'nudge_due_reminders',
         format('Due ACTIVE reminders no worker holds, counted up to %s.', greatest(p_count_cap, 1)),
         NULL, NULL,
         (SELECT count(*) FROM (
            SELECT 1 FROM nudge.reminders r
             WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
               AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
             LIMIT greatest(p_count_cap, 1)) w)::double precision
  UNION ALL
  SELECT 'nudge_oldest_due_seconds',
         'How long the earliest due reminder no worker holds has been due, in seconds (0: none).',
         NULL, NULL,
         -- Counted from year 1 at the earliest: -infinity (a row written by hand) cannot be
         -- subtracted, and jsonb (the overview) holds no infinite number.
         coalesce(extract(epoch FROM now() - (
           SELECT greatest(r.next_run_at, nudge.earliest_time()) FROM nudge.reminders r
            WHERE r.status = 'ACTIVE' AND r.next_run_at <= now()
              AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= now())
            ORDER BY r.next_run_at LIMIT 1)), 0)::double precision
  UNION ALL
  SELECT 'nudge_breaker_hosts',
         'Webhook target hosts that have failed, by circuit breaker state (closed, open, probing).',
         'state', s.state,
         (SELECT count(*) FROM nudge.target_hosts h WHERE h.state = s.state)::double precision
    FROM unnest(ARRAY['closed', 'open', 'probing']) AS s(state)
  UNION ALL
  SELECT 'nudge_held_deliveries',
         'Webhook deliveries that open or probing circuit breakers hold until their next probe.',
         NULL, NULL,
         (SELECT coalesce(sum(nudge.held_deliveries(h)), 0) FROM nudge.target_hosts h
           WHERE h.state <> 'closed')::double precision
  UNION ALL
  SELECT 'nudge_workers_connected',
         'nudge-worker processes with a claim loop connected to this database.',
         NULL, NULL,
         (SELECT count(DISTINCT split_part(a.application_name, '/', 1))
            FROM pg_stat_activity a
           WHERE a.datname = current_database()
             AND a.application_name ~ '^[^/]+:[0-9]+:[0-9a-f]{8}/[0-9]+$')::double precision
  UNION ALL
  SELECT 'nudge_breaker_open_seconds',
         'Seconds since each open or probing circuit breaker last opened (a failed probe opens it again), by host; not for an open one whose probe time has passed with no delivery to probe with.',
         'host', h.host, extract(epoch FROM now() - h.opened_at)::double precision
    FROM nudge.target_hosts h
   -- An open breaker past its probe time that holds nothing says nothing of its host now: its
   -- series rose for good, and an alert on it fired for a host with nothing to send
   -- (explore23a #5). It comes back with the first delivery the breaker holds.
   WHERE h.state = 'probing'
      OR (h.state = 'open' AND (h.next_probe_at > now() OR nudge.held_deliveries(h) > 0))
  UNION ALL
  SELECT 'nudge_rule_failures_total',
         'Rules that could not run for one of Nudge''s own events (each kept in that event''s effects).',
         NULL, NULL,
         -- No sample, not an error that loses every gauge, for a login not granted it yet.
         (SELECT CASE WHEN has_sequence_privilege(s.schemaname || '.' || s.sequencename, 'SELECT')
                      THEN coalesce(s.last_value, 0) END
            FROM pg_sequences s
           WHERE s.schemaname = 'nudge' AND s.sequencename = 'rule_failures')::double precision
$_$;

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (seconds since each breaker that is not closed last opened: a failed probe opens it again; no row while it is closed, nor while it is open past its probe time holding no delivery) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index, and the held deliveries of each breaker that is not closed.';
