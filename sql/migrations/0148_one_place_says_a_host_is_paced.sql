-- 0148: one place says whether a host is paced now, whole or some of its URLs (nudge.is_paced),
-- for GET /v1/targets?paced=, the nudge_paced_hosts gauge and nudge.close_breaker, which each
-- spelled it out.
--
-- A new function and two bodies.

CREATE FUNCTION nudge.is_paced(h nudge.target_hosts) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  SELECT coalesce(h.paced_until > now(), false)
         OR EXISTS (SELECT 1 FROM nudge.paced_targets t
                     WHERE t.host = h.host AND t.paced_until > now())
$$;

COMMENT ON FUNCTION nudge.is_paced(h nudge.target_hosts) IS 'Whether the host is paced now, whole (nudge.target_hosts.paced_until) or some of its URLs (nudge.paced_targets): what GET /v1/targets?paced=, the nudge_paced_hosts gauge and nudge.close_breaker count as a paced host.';

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
         'Webhook target hosts paced now, whole or some of their URLs, because they answered 429 (GET /v1/targets?paced=true).',
         NULL, NULL,
         (SELECT count(*) FROM nudge.target_hosts h WHERE nudge.is_paced(h))::double precision
  UNION ALL
  -- A paced host's deliveries wait for their send times, not due: without these, a backlog
  -- 16.5 minutes late read 0 in both backlog gauges (explore24a #2).
  SELECT g.name, g.help, NULL, NULL, g.value
    FROM nudge.paced_backlog(greatest(p_count_cap, 1)) b
   CROSS JOIN LATERAL (VALUES
     ('nudge_paced_deliveries',
      format('Webhook deliveries waiting for a paced host or URL (held until their send times, or retrying within 20 s), counted among the %s earliest reminders due in the next 20 s.', greatest(p_count_cap, 1)),
      b.deliveries::double precision),
     ('nudge_oldest_paced_seconds',
      'How long the oldest occurrence waiting for a paced host or URL has been due, in seconds (0: none).',
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

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for GET /metrics of nudge-api and the workers, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is), nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries), nudge_paced_hosts (hosts paced now, whole or some of their URLs: they answered 429), nudge_paced_deliveries and nudge_oldest_paced_seconds (nudge.paced_backlog: the deliveries waiting for a paced host, counted among the p_count_cap earliest due in the next 20 s, and how long the oldest has been due), nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name), nudge_breaker_open_seconds by host (seconds since each breaker that is not closed last opened: a failed probe opens it again; no row while it is closed, nor while it is open past its probe time holding no delivery) and nudge_rule_failures_total (rules that could not run for Nudge''s own events, the sequence nudge.rule_failures: a counter, as its _total says; no value for a login without SELECT on it); reads at most p_count_cap + 1 entries of the due index (and, while a host is paced, p_count_cap more), and the held deliveries of each breaker that is not closed.';

CREATE OR REPLACE FUNCTION nudge.close_breaker(p_host text) RETURNS nudge.target_hosts
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
DECLARE
  v_row  nudge.target_hosts;
  v_from text;
  v_held timestamptz;
BEGIN
  IF p_host IS NULL OR length(p_host) NOT BETWEEN 1 AND 2048 THEN
    PERFORM nudge.reject('host', 'must be a host as GET /v1/targets lists it (https://hooks.example.com:443)');
  END IF;
  -- Locked as a finish locks it, so no finish or claim changes it meanwhile.
  SELECT * INTO v_row FROM nudge.target_hosts h WHERE h.host = p_host FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no circuit breaker for host %: a host has one once a delivery to it failed or was answered 429 (GET /v1/targets)',
      p_host USING ERRCODE = 'NU404';
  END IF;
  IF v_row.state = 'closed' AND v_row.consecutive_failures = 0 AND NOT nudge.is_paced(v_row) THEN
    RETURN v_row;
  END IF;
  v_from := v_row.state;
  v_held := v_row.next_probe_at;
  UPDATE nudge.target_hosts h
     SET state = 'closed', consecutive_failures = 0, last_error = NULL, open_seconds = NULL,
         opened_at = NULL,
         next_probe_at = NULL, probe_worker = NULL, probe_reminder_id = NULL,
         pace = NULL, limited_at = NULL, paced_until = NULL, next_send_at = NULL,
         updated_at = now()
   WHERE h.host = p_host
  RETURNING * INTO v_row;
  DELETE FROM nudge.paced_targets t WHERE t.host = p_host;
  -- What its pace held waits 20 s at most (nudge.claim_due): due now instead, with the retries
  -- due to it meanwhile.
  UPDATE nudge.reminders r
     SET next_run_at = now(), updated_at = now()
   WHERE r.status = 'ACTIVE' AND r.next_run_at > now()
     AND r.next_run_at <= now() + interval '20 seconds'
     AND r.leased_by IS NULL AND r.channel = 'webhook'
     AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
  -- What it held waits for its probe time (nudge.record_host_outcomes): due now instead.
  IF v_held IS NOT NULL THEN
    UPDATE nudge.reminders r
       SET next_run_at = now(), updated_at = now()
     WHERE r.status = 'ACTIVE' AND r.next_run_at = v_held AND r.leased_by IS NULL
       AND r.channel = 'webhook'
       AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = p_host;
  END IF;
  IF v_from <> 'closed' THEN
    PERFORM pg_notify('nudge_breaker', nudge.breaker_change(v_row, v_from, NULL));
  END IF;
  IF current_setting('nudge.audit', true) IS DISTINCT FROM 'off' THEN
    INSERT INTO nudge.audit (token, route, subject_type, subject, change)
    VALUES (nullif(current_setting('nudge.actor', true), ''),
            nullif(current_setting('nudge.route', true), ''), 'target', p_host, 'update');
  END IF;
  RETURN v_row;
END $$;

COMMENT ON FUNCTION nudge.close_breaker(p_host text) IS 'Closes the circuit breaker of p_host (a host as nudge.target_hosts keys it) by hand and ends its pacing and its URLs'': state closed, failures and last error cleared, the deliveries it held (waiting for its next probe) due at once, as a probe''s success would, and so are those due to it within the next 20 s (held by its pace, or retries), the host and its URLs no longer paced; the change is notified on nudge_breaker (worker null) and audited (subject_type target) unless the session has nudge.audit = off; a closed breaker without failures of a host not paced, whole or by URL, is returned unchanged; no such host raises NU404, a host empty or over 2048 characters 22023 naming host.';
