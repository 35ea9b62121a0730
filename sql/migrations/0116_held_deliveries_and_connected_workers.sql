-- 0116: what on-call cannot see while a circuit breaker holds deliveries or no worker runs
-- (explore18a #2, #3). While a breaker was open the due backlog read 0 and nothing said how many
-- deliveries it held; with every worker stopped the dashboard's overview said nothing of it.
-- nudge.gauges (the workers' /metrics, the overview) gains nudge_held_deliveries and
-- nudge_workers_connected; the overview gains held and workers; /v1/targets says each host's held
-- deliveries.

CREATE FUNCTION nudge.held_deliveries(h nudge.target_hosts) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET jit TO 'off'
    AS $$
  -- Held deliveries wait for the probe time (nudge.record_host_outcomes moves them by it): read
  -- by that time in the due index, as that function does.
  SELECT count(*) FROM nudge.reminders r
   WHERE h.state <> 'closed' AND r.status = 'ACTIVE' AND r.next_run_at = h.next_probe_at
     AND r.leased_by IS NULL AND r.channel = 'webhook'
     AND coalesce(nudge.target_host(r.target), nudge.webhook_host(r)) = h.host
$$;

COMMENT ON FUNCTION nudge.held_deliveries(h nudge.target_hosts) IS 'How many webhook deliveries breaker h holds: ACTIVE reminders to its host, not leased, waiting for its next probe; 0 when it is closed.';

CREATE OR REPLACE FUNCTION nudge.gauges(p_count_cap integer) RETURNS TABLE(name text, help text, label_name text, label_value text, value double precision)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
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
$$;

COMMENT ON FUNCTION nudge.gauges(p_count_cap integer) IS 'The database''s gauges for the workers'' GET /metrics, one row per sample (metric name, help, at most one label, value), grouped by name: nudge_due_reminders (due ACTIVE reminders without a live lease, counted up to p_count_cap), nudge_oldest_due_seconds (how long the earliest of them has been due, at most since 0001-01-01T00:00:00Z; 0 when none is) nudge_breaker_hosts by state (hosts with a circuit breaker row, closed, open or probing), nudge_held_deliveries (deliveries the open and probing breakers hold, nudge.held_deliveries) and nudge_workers_connected (nudge-worker processes with a claim loop session in this database, by their sessions'' application_name); reads at most p_count_cap + 1 entries of the due index, and the held deliveries of each breaker that is not closed.';

CREATE OR REPLACE FUNCTION nudge.target_host_json(h nudge.target_hosts) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  SELECT jsonb_build_object('host', h.host, 'state', h.state, 'failures', h.consecutive_failures,
                            'opened_at', h.opened_at, 'next_probe_at', h.next_probe_at,
                            'open_seconds', h.open_seconds, 'updated_at', h.updated_at,
                            'held', nudge.held_deliveries(h))
$$;

COMMENT ON FUNCTION nudge.target_host_json(h nudge.target_hosts) IS 'The public JSON form of a target host''s circuit breaker, with the deliveries it holds (held, nudge.held_deliveries).';

CREATE OR REPLACE FUNCTION nudge.overview(p_exact_below bigint DEFAULT 100000, p_due_cap integer DEFAULT 10000) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
  v_rows      double precision;
  v_counts    jsonb;
  v_estimated boolean;
  v_hour      jsonb;
  v_gauges    jsonb;
BEGIN
  -- The table's rows now, as the planner sizes it: rows per page at the last ANALYZE times the
  -- pages it has now (-1 or 0 pages: never analysed, so small or new; counted exactly).
  SELECT CASE WHEN c.reltuples < 0 OR c.relpages = 0 THEN -1
              ELSE c.reltuples / c.relpages
                   * (pg_relation_size(c.oid) / current_setting('block_size')::integer) END
    INTO v_rows
    FROM pg_class c WHERE c.oid = 'nudge.reminders'::regclass;
  v_estimated := v_rows >= p_exact_below;
  IF v_estimated THEN
    SELECT coalesce(jsonb_object_agg(m.status, round(m.freq * v_rows)::bigint), '{}')
      INTO v_counts
      FROM pg_stats s,
           LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(status, freq)
     WHERE s.schemaname = 'nudge' AND s.tablename = 'reminders' AND s.attname = 'status';
  ELSE
    SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}')
      INTO v_counts
      FROM (SELECT r.status, count(*) AS n FROM nudge.reminders r GROUP BY r.status) c;
  END IF;

  SELECT jsonb_build_object('delivered', count(*) FILTER (WHERE e.outcome = 'delivered'),
                            'failed', count(*) FILTER (WHERE e.outcome = 'failed'))
    INTO v_hour
    FROM nudge.executions e
   WHERE e.fired_at > now() - interval '1 hour';

  SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'name', g.name, 'label_name', g.label_name, 'label_value', g.label_value,
           'value', g.value))), '[]')
    INTO v_gauges
    FROM nudge.gauges(p_due_cap) g;

  RETURN jsonb_build_object(
    'counts', v_counts,
    'counts_estimated', v_estimated,
    'due_now', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                 WHERE g->>'name' = 'nudge_due_reminders'),
    'due_now_cap', p_due_cap,
    'oldest_due_seconds', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                            WHERE g->>'name' = 'nudge_oldest_due_seconds'),
    'held', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
              WHERE g->>'name' = 'nudge_held_deliveries'),
    'workers', (SELECT g->'value' FROM jsonb_array_elements(v_gauges) g
                 WHERE g->>'name' = 'nudge_workers_connected'),
    'last_hour', v_hour,
    'gauges', v_gauges,
    'as_of', now());
END $$;

COMMENT ON FUNCTION nudge.overview(p_exact_below bigint, p_due_cap integer) IS 'The dashboard''s overview as jsonb: reminders by status (exact below p_exact_below rows, else estimated from pg_stats and the table''s size, with counts_estimated saying which), due_now and oldest_due_seconds from nudge.gauges(p_due_cap), held (deliveries circuit breakers hold) and workers (nudge-worker processes connected) from the same, fires delivered and failed in the last hour (last_hour), and every row of nudge.gauges; past p_exact_below rows its cost grows only with the last hour''s fires, not with the tables.';
