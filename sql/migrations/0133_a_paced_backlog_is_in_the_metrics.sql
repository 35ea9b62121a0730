-- 0133: a paced backlog is in the metrics (explore24a #2, HIGH: 1,207 webhooks up to 16.5
-- minutes late waited for a paced host while nudge_due_reminders and nudge_oldest_due_seconds
-- read 0, so the README's "falling behind" alert stayed quiet). nudge.gauges gains
-- nudge_paced_hosts, nudge_paced_deliveries and nudge_oldest_paced_seconds.
--
-- Additive: a function is added and a body changes.

CREATE FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint,
                                    OUT oldest_seconds double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
  -- A paced host holds its deliveries 20 s at most (nudge.claim_due): they are among the
  -- reminders due in the next 20 s, read by time in the due index, and only while a host is
  -- paced.
  SELECT count(*),
         coalesce(extract(epoch FROM now() - min(greatest((w.r).occurrence_at,
                                                          nudge.earliest_time()))), 0)::float8
    FROM (SELECT r FROM nudge.reminders r
           WHERE EXISTS (SELECT 1 FROM nudge.target_hosts h WHERE h.paced_until > now())
             AND r.status = 'ACTIVE' AND r.next_run_at > now()
             AND r.next_run_at <= now() + interval '20 seconds'
           ORDER BY r.next_run_at
           LIMIT p_read_cap) w
   WHERE (w.r).leased_by IS NULL AND (w.r).channel = 'webhook' AND (w.r).occurrence_at IS NOT NULL
     AND EXISTS (SELECT 1 FROM nudge.target_hosts h
                  WHERE h.paced_until > now()
                    AND h.host = coalesce(nudge.target_host((w.r).target), nudge.webhook_host(w.r)))
$$;
COMMENT ON FUNCTION nudge.paced_backlog(p_read_cap integer, OUT deliveries bigint, OUT oldest_seconds double precision) IS
  'The webhook deliveries waiting for a host paced now (held until their send times, or retrying within 20 s: ACTIVE, not leased, an occurrence kept, due in the next 20 s), counted among the p_read_cap earliest reminders due then, and how long the oldest of their occurrences has been due (0: none); nothing is read while no host is paced.';

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
  SELECT 'nudge_paced_hosts',
         'Webhook target hosts paced now because they answered 429 (GET /v1/targets?paced=true).',
         NULL, NULL,
         (SELECT count(*) FROM nudge.target_hosts h WHERE h.paced_until > now())::double precision
  UNION ALL
  -- A paced host's deliveries wait for their send times, not due: without these, a backlog
  -- 16.5 minutes late read 0 in both backlog gauges (explore24a #2).
  SELECT g.name, g.help, NULL, NULL, g.value
    FROM nudge.paced_backlog(greatest(p_count_cap, 1)) b
   CROSS JOIN LATERAL (VALUES
     ('nudge_paced_deliveries',
      format('Webhook deliveries waiting for a paced host (held until their send times, or retrying within 20 s), counted among the %s earliest reminders due in the next 20 s.', greatest(p_count_cap, 1)),
      b.deliveries::double precision),
     ('nudge_oldest_paced_seconds',
      'How long the oldest occurrence waiting for a paced host has been due, in seconds (0: none).',
      b.oldest_seconds)) AS g(name, help, value)
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
COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS
  'The database''s gauges for GET /metrics of nudge-api and the workers, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_paced_hosts (hosts paced now: they answered 429), nudge_paced_deliveries and nudge_oldest_paced_seconds (nudge.paced_backlog: the deliveries waiting for a paced host, counted among the p_count_cap earliest due in the next 20 s, and how long the oldest has been due), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (seconds since each breaker that is not closed last opened: a failed probe opens it again; no row while it is closed, nor while it is open past its probe time holding no delivery) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index (and, while a host is paced, p_count_cap more), and the held deliveries of each breaker that is not closed.';
